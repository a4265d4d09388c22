"""Importing into the shop: native Advanced Importer feeds, CSV/XLSX files and ZIP data groups.

``import_file(path, Options(...))`` is the whole service; ``sources`` fetches what it reads
(paths, uploads, URLs), ``runs`` makes recurring importers out of it. See docs/importing.md.
"""

from __future__ import annotations

from impexmod.importing.context import Options
from impexmod.importing.errors import ImportRefused, RowError, errors_csv
from impexmod.importing.report import Report
from impexmod.importing.service import FORMATS, import_file

__all__ = ["FORMATS", "ImportRefused", "Options", "Report", "RowError", "errors_csv", "import_file"]
