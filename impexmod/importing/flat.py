"""CSV and XLSX files: one entity per file, a header row, the canonical columns of
the entity specs (``flat_columns``) or a column mapping onto them.

CSV: ``;`` ``,`` tab or ``|``, quoted fields, UTF-8 with or without BOM, UTF-16 with a BOM;
a file that is not valid UTF-8 is read as Latin-1 (cp1252), which every byte is. The file is
decoded once in full before anything is written, so a bad byte late in it writes nothing.
Rows are read by :mod:`impexmod.importing.csvrows`, which rejects (as row errors) what an
unbalanced quote would otherwise swallow silently, and cells over ``IMPORT_MAX_CELL_BYTES``.
XLSX: the first sheet (openpyxl, read-only), after the checks of
:mod:`impexmod.importing.xlsxguard` (the ZIP checks of a data group, and bounded shared strings).
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

from impexmod.entities.derived import FLAT_ELEMENTS as ELEMENT
from impexmod.entities.derived import IDENTIFIERS
from impexmod.entities.flatvocab import LINK_FIELDS, SEPARATOR
from impexmod.importing.columns import check_header, column, entity_from_name
from impexmod.importing.csvrows import Row, oversized_problem, read_rows
from impexmod.importing.defaults import setting
from impexmod.importing.entry import KINDS, Entry, Ref, convert
from impexmod.importing.errors import EntryError, ImportRefused, Origin, RowError
from impexmod.importing.native import SHAPES, SHAPES_SKIP, normalise_source


def sniff_encoding(path: Path, label: str) -> str:
    """The encoding of a CSV file, or ImportRefused."""
    with open(path, "rb") as fh:
        head = fh.read(65536)
    if head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif head[1::2].count(0) > len(head) // 4 or head[0::2].count(0) > len(head) // 4:
        raise ImportRefused(
            f"{label}: looks like UTF-16 without a byte order mark; save it as UTF-8"
        )
    else:
        encoding = "utf-8"
    try:
        with open(path, encoding=encoding, newline="") as fh:
            while fh.read(1024 * 1024):
                pass
    except UnicodeDecodeError:
        if encoding != "utf-8":
            raise ImportRefused(f"{label}: not valid {encoding.upper()} text") from None
        encoding = "cp1252"
        try:
            with open(path, encoding=encoding, newline="") as fh:
                while fh.read(1024 * 1024):
                    pass
        except UnicodeDecodeError:
            encoding = "latin-1"
    return encoding


def csv_rows(path: Path, label: str) -> Iterator[Row]:
    """The rows of a CSV file, header first, each with its first line and any problem."""
    encoding = sniff_encoding(path, label)
    limit = int(setting("IMPORT_MAX_CELL_BYTES"))
    with open(path, encoding=encoding, newline="") as fh:
        sample = fh.read(65536)
        fh.seek(0)
        first = sample.splitlines()[0] if sample else ""
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=";,\t|")
            delimiter = dialect.delimiter
        except csv.Error:
            delimiter = max(";,\t|", key=first.count)
        yield from read_rows(fh, label, delimiter, limit)


def xlsx_rows(path: Path, label: str) -> Iterator[Row]:
    """The rows of the first sheet of an XLSX file, cells as text, with any problem."""
    from openpyxl import load_workbook

    from impexmod.importing.xlsxguard import check_xlsx

    check_xlsx(path, label)
    limit = int(setting("IMPORT_MAX_CELL_BYTES"))
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise ImportRefused(f"{label}: not a readable XLSX file: {exc}") from None
    try:
        sheet = book.worksheets[0]
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [_cell(v) for v in values]
            yield Row(number, cells, oversized_problem(cells, number, limit))
    finally:
        book.close()


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class FlatParser:
    """Rows of one flat file -> entries of one entity."""

    def __init__(self, entity: str, label: str, source: str, mapping: dict[str, str], warn):
        if entity not in ELEMENT:
            raise ImportRefused(f"{label}: say which entity the file holds (--entity)")
        self.entity = entity
        self.element = ELEMENT[entity]
        self.shape = SHAPES[self.element]
        self.label = label
        self.source = source
        self.mapping = mapping
        self.warn = warn
        self.columns = self.shape.columns()
        for name in SHAPES_SKIP.get(self.element, ()):
            self.columns.pop(name, None)
        self.lang_columns = self.shape.lang_columns()
        self.header: list = []

    def read_header(self, cells: list[str]) -> None:
        """Map the header row to columns; unknown headers are ignored with a warning (a header
        with no known column is refused without quoting it: see columns.check_header)."""
        self.header = []
        unknown = []
        for cell in cells:
            name = self.mapping.get(cell, cell)
            found = column(self.entity, name) if name else None
            if found is None and name:
                unknown.append(cell)
            self.header.append((name, found))
        known = sum(1 for _, found in self.header if found)
        for warning in check_header(self.entity, self.label, unknown, known):
            self.warn(warning)

    def rejected(self, line: int, problem: tuple[int | None, str]) -> Entry:
        """A row the reader rejected, as an entry carrying its row error (nothing of it is
        imported)."""
        index, reason = problem
        field = ""
        if index is not None and index < len(self.header):
            field = self.header[index][0] or ""
        origin = Origin(self.label, line, f"row {line}")
        entry = Entry(KINDS[self.element], None, origin)
        entry.errors.append(RowError.at(origin, field, reason))
        return entry

    def parse(self, line: int, cells: list[str]) -> Entry | None:
        """One data row as an entry (None for an empty row)."""
        if not any(c.strip() for c in cells):
            return None
        origin = Origin(self.label, line, f"row {line}")
        row, langs, sources = {}, {}, {}
        for (name, found), cell in zip(self.header, cells, strict=False):
            if found is None:
                continue
            col, lang = found
            if name.endswith("_source"):
                sources[col.name] = normalise_source(cell)
            elif col.role == "lang":
                langs.setdefault(col.name, {})[lang] = cell
            else:
                row[col.name if lang is None else f"{col.name}[{lang}]"] = cell
        kind = KINDS[self.element]
        source = normalise_source(row.pop("source", None)) or self.source
        reference = (row.pop("supplier_reference", "") or "").strip()
        entry = Entry(kind, Ref(kind, reference, source) if reference else None, origin)
        try:
            self._fill(entry, row, langs, sources, source)
        except EntryError as exc:
            entry.errors.append(RowError.at(origin, exc.field, exc.reason))
        return entry

    def _fill(self, entry: Entry, row: dict, langs: dict, sources: dict, source: str) -> None:
        for name, per_lang in langs.items():
            col = self.lang_columns.get(name)
            for lang, text in per_lang.items():
                value = convert(col, text, name) if col is not None else text.strip()
                if value not in (None, ""):
                    entry.langs.setdefault(name, {})[lang] = value
        for name, text in row.items():
            base = name.split("[")[0]
            if text is None or (text.strip() == "" and base not in self.columns):
                continue
            if base in LINK_FIELDS and column(self.entity, base)[0].role == "link":
                self._link(entry, base, text.strip(), sources.get(base) or source)
            elif base in ("categories", "tags", "images", "categorypath", "attributes"):
                self._list(entry, base, name, text, sources.get(base))
            elif base == "quantity" and self.element != "stock":
                stock = Entry("stock", None, entry.origin, parent=entry)
                stock.values["quantity"] = convert(self._stock_col(), text, "quantity")
                stock.flags["stock_mode"] = "set"
                entry.add("stock", stock)
            elif base == "tax":
                entry.flags["tax_include"] = text.strip().lower() in ("include", "incl", "ttc")
            elif base == "mode":
                entry.flags["stock_mode"] = "delta" if text.strip() == "delta" else "set"
            elif base == "lang":
                entry.flags["lang"] = text.strip() or None
            elif self.element == "stock" and base in ("reference", "ean13", "upc"):
                entry.values[base] = text.strip()
            elif base in self.columns:
                entry.values[base] = convert(self.columns[base], text, base)
        if self.element == "tag" and "lang" in entry.flags and "name" in entry.langs:
            entry.langs["name"] = {entry.flags["lang"]: entry.langs["name"].get(None)}
        if self.element == "stock":
            entry.flags.setdefault("stock_mode", "set")
            self._stock_targets(entry)
        elif entry.ref is None:
            for name in IDENTIFIERS.get(self.entity, ()):
                if entry.values.get(name):
                    entry.flags["identifier"] = name
                    break

    def _stock_col(self):
        return SHAPES["stock"].columns()["quantity"]

    def _link(self, entry: Entry, base: str, text: str, source: str) -> None:
        if not text:
            return
        target = column(self.entity, base)[0].target
        if base == "manufacturer_name":
            ref = Ref("manufacturer", field="name", value=text)
        else:
            ref = Ref(target, text, source)
        field = LINK_FIELDS[base]
        if self.element == "stock":
            field = base
        entry.links[field] = ref

    def _list(
        self, entry: Entry, base: str, name: str, text: str, source: str | None = None
    ) -> None:
        items = [t.strip() for t in text.split(SEPARATOR) if t.strip()]
        lang = name[len(base) + 1 : -1] if "[" in name else None
        for item in items:
            if base == "categories":
                entry.add(
                    "category",
                    Entry(
                        "category",
                        Ref(
                            "category",
                            item,
                            source or (entry.ref.source if entry.ref else self.source),
                        ),
                        entry.origin,
                        parent=entry,
                    ),
                )
            elif base == "tags":
                entry.add("tag", (lang, item[:32]))
            elif base == "images":
                entry.add("image", {"url": item, "legend": {}, "position": None, "cover": None})
            elif base == "categorypath":
                entry.add("categorypath", [p.strip() for p in item.split(">") if p.strip()])
            elif base == "attributes":
                group, _, value = item.partition(":")
                if not value:
                    raise EntryError("attributes", f"{item!r}: write Group:Value")
                g = Entry(
                    "attribute_group",
                    None,
                    entry.origin,
                    parent=entry,
                    langs={"name": {None: group.strip()}},
                )
                g.add(
                    "attribute",
                    Entry(
                        "attribute",
                        None,
                        entry.origin,
                        parent=g,
                        langs={"name": {None: value.strip()}},
                    ),
                )
                entry.add("attributeGroup", g)

    def _stock_targets(self, entry: Entry) -> None:
        if entry.links:
            return
        if entry.ref is not None:
            entry.links["combination"] = Ref("combination", entry.ref.reference, entry.ref.source)
            entry.links["product"] = Ref("product", entry.ref.reference, entry.ref.source)
            entry.ref = None
            return
        for name in ("reference", "ean13", "upc"):
            value = entry.values.pop(name, None)
            if value:
                entry.links["combination"] = Ref("combination", field=name, value=str(value))
                entry.links["product"] = Ref("product", field=name, value=str(value))
                return
        raise EntryError("product", "a stock row needs supplier_reference, reference, ean13 or upc")


def flat_rows(path: Path, label: str, fmt: str) -> Iterator[Row]:
    """The rows of a CSV or XLSX file."""
    return xlsx_rows(path, label) if fmt == "xlsx" else csv_rows(path, label)


def count_rows(path: Path, label: str, fmt: str) -> int:
    """Rows of a flat file (a first pass: also proves the whole file decodes)."""
    return sum(1 for _ in flat_rows(path, label, fmt))


def import_flat(importer, path: Path, label: str, fmt: str, progress=None) -> None:
    """Import one CSV or XLSX file with an open importer."""
    options = importer.options
    entity = options.entity or entity_from_name(label)
    mapping = dict(options.mapping)
    if options.mapping_name:
        mapping.update(load_mapping(options.mapping_name, label))
    source = options.source or setting("IMPORT_DEFAULT_SOURCE")
    parser = FlatParser(entity or "", label, source, mapping, importer.report.add_error)
    total = count_rows(path, label, fmt)
    rows = flat_rows(path, label, fmt)
    first = next(rows, None)
    if first is None:
        raise ImportRefused(f"{label}: empty file")
    parser.read_header(first.cells)
    if progress:
        importer.progress = lambda done: progress(done, total - 1)
    importer.feed(
        parser.rejected(line, problem) if problem else parser.parse(line, cells)
        for line, cells, problem in rows
    )


def load_mapping(name: str, label: str) -> dict[str, str]:
    """A saved mapping's columns."""
    from impexmod.extensions import db
    from impexmod.models import ImportMapping

    mapping = db.session.query(ImportMapping).filter_by(name=name).one_or_none()
    if mapping is None:
        raise ImportRefused(f"{label}: no saved mapping named {name!r}")
    return dict(mapping.columns or {})


__all__ = ["FlatParser", "import_flat", "entity_from_name", "csv_rows", "xlsx_rows"]
