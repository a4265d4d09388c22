"""XLSX feeds through xlsxwriter in constant-memory mode: each row goes to disk as it is
written, so memory stays flat whatever the catalog's size.

A bold, frozen header row; column widths set up front from each column's name and kind (rows
cannot be revisited); numbers as numbers where the column is numeric, text otherwise, and
text is never a formula. A sheet that reaches Excel's row limit goes on in ``products (2)``.
A products export may add sheets (``sheets=combinations,categories,suppliers``): their rows
are spooled to temporary files during the one pass over the products and copied into
their sheets at the end, since constant-memory mode fills one sheet after the other.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from dataclasses import replace
from typing import Any, BinaryIO, ClassVar

import xlsxwriter

from impexmod import entities
from impexmod.catalog.identity import KeyResolver
from impexmod.export import flatten
from impexmod.export.formats.base import InvalidOption, WriterSetup
from impexmod.export.formats.common import (
    FLAT_OPTIONS,
    SUPPLIER_COLUMNS,
    SUPPLIER_KINDS,
    FlatLayout,
    cell_text,
    field_list,
    product_suppliers,
    supplier_cells,
)
from impexmod.export.formats.common import check_flat_options as _check_flat
from impexmod.messages import msg

SHEETS = ("products", "combinations", "categories", "suppliers")
WIDE = ("description", "description_short")
MEDIUM = ("name", "link_rewrite", "manufacturer_name", "images", "categories", "tags")
MEDIUM += ("attributes", "lines", "email", "address1", "address2", "combination_attributes")


def column_width(header: str, kind: str | None) -> int:
    """A sensible width (in characters) for a column, from its name and kind."""
    base = header.split("[", 1)[0]
    if kind in ("int", "decimal"):
        return max(len(header) + 2, 10)
    if base in WIDE:
        return 60
    if base in MEDIUM:
        return 32
    return min(max(len(header) + 2, 16), 60)


class _Sheet:
    """One logical sheet: its header, kinds and widths, continued on ``name (2)`` when full."""

    def __init__(self, writer: XlsxFeedWriter, name: str, header: list[str], kinds: list):
        self.writer = writer
        self.name = name
        self.header = header
        self.kinds = kinds
        self.part = 0
        self.ws: Any = None
        self.row = 0
        self._next_part()

    def _next_part(self) -> None:
        self.part += 1
        title = self.name if self.part == 1 else f"{self.name} ({self.part})"
        ws = self.writer.book.add_worksheet(title[:31])
        for col, (header, kind) in enumerate(zip(self.header, self.kinds, strict=True)):
            ws.set_column(col, col, column_width(header, kind))
        ws.freeze_panes(1, 0)
        for col, header in enumerate(self.header):
            ws.write_string(0, col, header, self.writer.bold)
        self.ws, self.row = ws, 1

    def write(self, cells: list[Any]) -> None:
        """Append one row (on a new sheet when this one is full)."""
        if self.row >= self.writer.MAX_ROWS:
            self._next_part()
        ws, row = self.ws, self.row
        for col, (value, kind) in enumerate(zip(cells, self.kinds, strict=False)):
            if value is None or value == "":
                continue
            if isinstance(value, str) and kind in ("int", "decimal"):
                try:
                    value = float(value)  # a spooled number, back from its text
                except ValueError:
                    pass
            if isinstance(value, bool):
                ws.write_number(row, col, int(value))
            elif isinstance(value, int | float):
                ws.write_number(row, col, value)
            elif hasattr(value, "as_tuple"):  # Decimal
                ws.write_number(row, col, float(value))
            elif ws.write_string(row, col, cell_text(value)) == -2:
                self.writer.truncated += 1
        self.row += 1


class _Spool:
    """Rows of an extra sheet, kept in a temporary file (a JSON array per line, so that any
    text fits and empty stays empty) until the main sheet is done."""

    def __init__(self, name: str, header: list[str], kinds: list):
        self.name, self.header, self.kinds = name, header, kinds
        self.file = tempfile.TemporaryFile("w+", encoding="utf-8")

    def add(self, cells: list[Any]) -> None:
        """Keep one row (decimals as their text: the sheet makes numbers of them again)."""
        self.file.write(json.dumps([c if c is None else _spooled(c) for c in cells]) + "\n")

    def rows(self):
        """The kept rows, in order."""
        self.file.seek(0)
        for line in self.file:
            yield json.loads(line)

    def close(self) -> None:
        self.file.close()


def _spooled(value: Any) -> Any:
    return value if isinstance(value, int | float | str) else cell_text(value)


class XlsxFeedWriter:
    """Writes the entity's sheet row by row, and the extra sheets of a products export."""

    ext = "xlsx"
    MAX_ROWS: ClassVar[int] = 1_048_576  # Excel's rows per sheet, header included
    OPTIONS = {
        "sheets": "for products: the sheets to write, among products (always first), "
        "combinations, categories and suppliers (default: products)",
        **FLAT_OPTIONS,
    }

    @classmethod
    def check_options(cls, entity: str, options: dict[str, str]) -> dict[str, str]:
        """Validate and normalise the options of an XLSX feed."""
        if "sheets" in options:
            sheets = [s.lower() for s in field_list(options["sheets"])]
            for sheet in sheets:
                if sheet not in SHEETS:
                    raise InvalidOption(
                        "sheets",
                        msg(
                            "no sheet %(sheet)s: choose %(choices)s",
                            sheet=repr(sheet),
                            choices=", ".join(SHEETS),
                        ),
                    )
            if entity != "products" and set(sheets) != {entity}:
                raise InvalidOption("sheets", msg("several sheets are for products exports"))
            options["sheets"] = ",".join(dict.fromkeys([entity, *sheets]))
        return _check_flat(entity, options)

    def __init__(self, fh: BinaryIO, setup: WriterSetup):
        self._fh = fh
        self.setup = setup
        self.layout = FlatLayout(setup)
        sheets = field_list(setup.options.get("sheets", setup.entity))
        self.extras = [s for s in sheets if s != setup.entity]
        self.book: Any = None
        self.bold: Any = None
        self.main: _Sheet | None = None
        self.spools: dict[str, _Spool] = {}
        self.truncated = 0
        self._seen_categories: set[int] = set()
        self._ctx = None

    def __enter__(self) -> XlsxFeedWriter:
        self.book = xlsxwriter.Workbook(
            self._fh,
            {
                "constant_memory": True,
                "strings_to_formulas": False,  # a cell starting with = is text, never run
                "strings_to_urls": False,  # image URLs are text (and sheets cap hyperlinks)
                "strings_to_numbers": False,
                "use_zip64": True,  # a sheet of a million wide rows may pass 4 GiB unpacked
            },
        )
        self.bold = self.book.add_format({"bold": True})
        self.main = _Sheet(self, self.setup.entity, self.layout.header, self.layout.kinds())
        languages = list(self.setup.languages)
        for name in self.extras:
            if name == "suppliers":
                header, kinds = list(SUPPLIER_COLUMNS), list(SUPPLIER_KINDS)
            else:
                header = flatten.available_columns(name, languages)
                kinds = [flatten.column_kind(name, c) for c in header]
            self.spools[name] = _Spool(name, header, kinds)
        return self

    def prepare(self, descriptor, ctx, records) -> None:
        """Spool the chunk's rows of the extra sheets (a fixed number of queries per chunk)."""
        self._ctx = ctx
        if "combinations" in self.spools:
            combos = entities.resolve("combinations")
            spool = self.spools["combinations"]
            for record in records:
                for combo in record.combinations:
                    for row in flatten.flat_rows(combos, ctx, combo):
                        spool.add([row.get(c) for c in spool.header])
        if "categories" in self.spools:
            self._spool_categories(ctx, records)
        if "suppliers" in self.spools:
            spool = self.spools["suppliers"]
            found = product_suppliers(ctx, [r.row.id for r in records])
            for record in records:
                for row in found.get(record.row.id, []):
                    spool.add(supplier_cells(ctx, row))

    def _spool_categories(self, ctx, records) -> None:
        new = sorted({c for r in records for c in r.categories} - self._seen_categories)
        if not new:
            return
        self._seen_categories.update(new)
        # Own keys: loading categories here must not replace the chunk's category keys.
        own = replace(ctx, keys=KeyResolver(ctx.conn, ctx.shop))
        descriptor = entities.resolve("categories")
        spool = self.spools["categories"]
        for record in descriptor.load(own, new):
            for row in flatten.flat_rows(descriptor, own, record):
                spool.add([row.get(c) for c in spool.header])

    def write_record(self, descriptor, ctx, record) -> None:
        """Write one entity's rows."""
        self._ctx = ctx
        for cells in self.layout.records(descriptor, ctx, record):
            self.main.write(cells)

    def write_delete(self, descriptor, key: tuple[str, str]) -> None:
        """Write a deletion row: the key and ``deleted`` = 1."""
        self.main.write(self.layout.deletion(key))

    def __exit__(self, exc_type, *exc) -> None:
        try:
            if exc_type is None:
                for spool in self.spools.values():
                    sheet = _Sheet(self, spool.name, spool.header, spool.kinds)
                    for cells in spool.rows():
                        sheet.write(cells)
                if self.truncated and self._ctx is not None:
                    self._ctx.warnings.append(
                        f"{self.truncated} cell(s) longer than 32,767 characters were cut "
                        "to Excel's limit"
                    )
                self.book.close()
            elif self.book is not None:
                # Close to remove the sheets' temporary files; the first error is the one to tell.
                with contextlib.suppress(Exception):
                    self.book.close()
        finally:
            for spool in self.spools.values():
                spool.close()
