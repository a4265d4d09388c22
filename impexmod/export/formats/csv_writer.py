"""CSV feeds: UTF-8 (with a BOM by default, so that Excel reads it right), ``;`` by default,
standard quoting, one row per entity (or per combination), formula cells neutralised."""

from __future__ import annotations

import csv
import io
import re
from typing import Any, BinaryIO

from impexmod.export.formats.base import InvalidOption, WriterSetup
from impexmod.export.formats.common import FLAT_OPTIONS, FlatLayout, boolean, cell_text
from impexmod.export.formats.common import check_flat_options as _check_flat
from impexmod.messages import msg

SEPARATORS = {";": ";", ",": ",", "tab": "\t", "\t": "\t", "|": "|"}
# A cell starting with one of these is run as a formula by spreadsheets (OWASP "CSV
# injection"); it is written with a leading apostrophe, which shows the text as it is.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# ... except a plain number such as -5 or -1.50, which is no formula and must stay a number.
PLAIN_NUMBER = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)\Z")


def neutralise(text: str) -> str:
    """The text of a cell, with a leading ``'`` if a spreadsheet would run it as a formula."""
    if text.startswith(FORMULA_START) and not PLAIN_NUMBER.match(text):
        return "'" + text
    return text


class CsvWriter:
    """Writes a header, then each entity's rows as they come."""

    ext = "csv"
    # Parts of a feed join byte for byte: the header once, then their rows (export.parts).
    SPLITTABLE = True
    OPTIONS = {
        "bom": "true (default) or false: start the file with a UTF-8 byte order mark",
        "separator": "; (default), comma (,), tab or |",
        **FLAT_OPTIONS,
    }

    @classmethod
    def check_options(cls, entity: str, options: dict[str, str]) -> dict[str, str]:
        """Validate and normalise the options of a CSV feed."""
        boolean(options, "bom", True)
        if "separator" in options:
            value = options["separator"]
            key = value.strip().lower() if value.strip() else value
            if key not in SEPARATORS:
                raise InvalidOption(
                    "separator", msg("choose ;  ,  tab or |, not %(value)s", value=repr(value))
                )
            options["separator"] = "tab" if SEPARATORS[key] == "\t" else key
        return _check_flat(entity, options)

    def __init__(self, fh: BinaryIO, setup: WriterSetup):
        options = setup.options
        self._fh = fh
        self._bom = boolean(dict(options), "bom", True)
        self._delimiter = SEPARATORS[options.get("separator", ";")]
        self.layout = FlatLayout(setup)
        self._text: io.TextIOWrapper | None = None
        self._csv: Any = None

    def __enter__(self) -> CsvWriter:
        self._text = io.TextIOWrapper(self._fh, encoding="utf-8", newline="")
        if self._bom:
            self._text.write("\ufeff")
        self._csv = csv.writer(self._text, delimiter=self._delimiter)
        self._row(self.layout.header)
        return self

    def _row(self, cells: list[Any]) -> None:
        self._csv.writerow([neutralise(cell_text(c)) for c in cells])

    def write_record(self, descriptor, ctx, record) -> None:
        """Write one entity's rows."""
        for cells in self.layout.records(descriptor, ctx, record):
            self._row(cells)

    def write_delete(self, descriptor, key: tuple[str, str]) -> None:
        """Write a deletion row: the key and ``deleted`` = 1."""
        self._row(self.layout.deletion(key))

    def flush(self) -> None:
        """Pass what the text layer holds to the file (so its offset is where the rows end)."""
        if self._text is not None:
            self._text.flush()

    def __exit__(self, *exc) -> None:
        if self._text is not None:
            self._text.flush()
            self._text.detach()  # the feed store closes the file, not this wrapper
            self._text = None
