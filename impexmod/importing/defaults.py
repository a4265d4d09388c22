"""Importer limits and defaults; each may be overridden by ``IMPEXMOD_<NAME>`` (app config)."""

from __future__ import annotations

from flask import current_app, has_app_context

IMPORT_MAX_BYTES = 512 * 1024 * 1024
"""A file (or download) larger than this is refused before it is read."""

IMPORT_MAX_EXPANDED_BYTES = 2 * 1024 * 1024 * 1024
"""A ZIP whose entries add up to more than this, uncompressed, is refused (zip bombs)."""

IMPORT_MAX_ZIP_ENTRIES = 1000
"""A ZIP with more entries than this is refused."""

IMPORT_MAX_RATIO = 200
"""A ZIP entry over 1 MiB, or a whole ZIP over 1 MiB expanded, that expands more than this many
times its compressed size is refused (many small entries add up: 1,000 of 1 MiB in 1 MB)."""

IMPORT_MAX_CELL_BYTES = 1024 * 1024
"""A CSV or XLSX cell larger than this (UTF-8) is a row error; a CSV cell is read no further."""

IMPORT_MAX_SHARED_STRINGS = 500_000
"""An XLSX with more shared strings is refused (openpyxl reads 500,000 in about 6 s)."""

IMPORT_MAX_XLSX_PART_BYTES = 64 * 1024 * 1024
"""An XLSX part that openpyxl reads whole (the shared strings, styles, workbook...) expanding
past this is refused (about four times as much memory once read)."""

IMPORT_HTTP_TIMEOUT = 30.0
"""Seconds to connect and between two received bytes of a download."""

IMPORT_ALLOWED_NETWORKS = ""
"""Networks downloads may reach although internal (comma-separated CIDRs, e.g. a partner's
``10.20.0.0/16``); by default only public addresses are (impexmod.importing.netguard)."""

IMPORT_CHUNK = 20_000
"""Entries written per transaction; a product counts with everything nested in it."""

IMPORT_PARALLEL_BYTES = 32 * 1024 * 1024
"""A native feed at least this large is parsed by a second process while this one writes
(starting it costs about half a second); 0 parses every feed in-process."""

IMPORT_MAX_ERRORS_KEPT = 10_000
"""Row errors kept per run; the count goes on, the list stops."""

IMPORT_MAX_DIFFS = 1000
"""Per-entity diffs kept by a dry run (counts are always complete)."""

IMPORT_DEFAULT_SOURCE = "supplier:default"
"""Whose key a reference is when neither the element, the feed nor the importer says."""

IMPORT_TAX_RATES = {1: "20", 2: "10", 3: "5.5", 4: "2.1"}
"""Rates (percent) of PrestaShop's default tax rules groups, for ``tax="include"`` prices."""

IMPORT_MAX_CATCH_UP = 200
"""Deltas one importer run may fetch in a row when catching up on an impexmod feed."""


def setting(name: str):
    """A limit from the app config, or its default here."""
    default = globals()[name]
    if has_app_context():
        value = current_app.config.get(name)
        if value is not None:
            return type(default)(value) if isinstance(default, int | float | str) else value
    return default
