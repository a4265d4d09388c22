"""JSON feeds, streamed: ``json`` is one document ``{"feed": {...}, "<entity>": [...]}``
written opening first, then object by object, then the closing (the list is never built);
``jsonl`` is one object per line. Objects are :mod:`objects`' (nested relations), or the
rows of a field template when the exporter has one."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any, BinaryIO

from impexmod.entities import ExportContext
from impexmod.export import flatten
from impexmod.export.formats.base import WriterSetup
from impexmod.export.formats.common import boolean, product_suppliers, supplier_cells
from impexmod.export.formats.objects import deletion_object, element_object


def _default(value: Any) -> Any:
    # Decimals stay exact as strings; a float would round prices.
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class _JsonObjects:
    """What the two JSON writers share: building each entity's object."""

    def __init__(self, fh: BinaryIO, setup: WriterSetup):
        self._fh = fh
        self.setup = setup
        self.mapping = setup.mapping
        self._suppliers: dict[int, list] = {}

    def prepare(self, descriptor, ctx: ExportContext, records) -> None:
        """Load the chunk's product supplier references (one query per chunk)."""
        if descriptor.name == "products" and self.mapping is None:
            self._suppliers = product_suppliers(ctx, [r.row.id for r in records])

    def objects(self, descriptor, ctx: ExportContext, record) -> list[dict[str, Any]]:
        """The JSON objects of one loaded entity (one, or a template's rows)."""
        if self.mapping is not None:
            headers = self.mapping.headers()
            return [
                dict(zip(headers, self.mapping.apply(row), strict=True))
                for row in flatten.flat_rows(descriptor, ctx, record)
            ]
        obj = element_object(descriptor.build(ctx, record))
        if descriptor.name == "products":
            self._product(ctx, record, obj)
        return [obj]

    def _product(self, ctx: ExportContext, record, obj: dict[str, Any]) -> None:
        if obj.get("manufacturer") and record.row.id_manufacturer:
            obj["manufacturer"]["name"] = flatten.manufacturer_name(ctx, record.row.id_manufacturer)
        suppliers = []
        for row in self._suppliers.get(record.row.id, []):
            _, _, combo, combo_source, supplier, reference, price = supplier_cells(ctx, row)
            suppliers.append(
                {
                    "supplier": supplier,
                    "reference": reference,
                    "wholesale_price": None if price is None else format(price, "f"),
                    "combination": {"supplier_reference": combo, "source": combo_source}
                    if combo
                    else None,
                }
            )
        obj["suppliers"] = suppliers

    def dumps(self, obj: Any, indent: int | None = None) -> str:
        """One object as JSON text (UTF-8 as is, decimals as strings)."""
        if indent is None:
            return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_default)
        return json.dumps(obj, ensure_ascii=False, indent=indent, default=_default)

    def deletion(self, key: tuple[str, str]) -> dict[str, Any]:
        """The object of a deleted entity."""
        return deletion_object(key)


class JsonWriter(_JsonObjects):
    """One JSON document: the feed's attributes, then the list of entities."""

    ext = "json"
    OPTIONS = {"pretty": "false (default: compact) or true: indent the document"}

    @classmethod
    def check_options(cls, entity: str, options: dict[str, str]) -> dict[str, str]:
        """Validate and normalise the options of a JSON feed."""
        boolean(options, "pretty", False)
        return options

    def __init__(self, fh: BinaryIO, setup: WriterSetup):
        super().__init__(fh, setup)
        self.pretty = boolean(dict(setup.options), "pretty", False)
        self._count = 0

    def _write(self, text: str) -> None:
        self._fh.write(text.encode("utf-8"))

    def __enter__(self) -> JsonWriter:
        feed = {k: v for k, v in self.setup.root.items() if v is not None}
        entity = json.dumps(self.setup.entity)
        if self.pretty:
            feed_text = self.dumps(feed, 2).replace("\n", "\n  ")
            self._write(f'{{\n  "feed": {feed_text},\n  {entity}: [')
        else:
            self._write(f'{{"feed":{self.dumps(feed)},{entity}:[')
        return self

    def _item(self, obj: dict[str, Any]) -> None:
        sep = "," if self._count else ""
        if self.pretty:
            text = self.dumps(obj, 2).replace("\n", "\n    ")
            self._write(f"{sep}\n    {text}")
        else:
            self._write(sep + self.dumps(obj))
        self._count += 1

    def write_record(self, descriptor, ctx, record) -> None:
        """Write one entity's object."""
        for obj in self.objects(descriptor, ctx, record):
            self._item(obj)

    def write_delete(self, descriptor, key: tuple[str, str]) -> None:
        """Write ``{"deleted": true, "supplier_reference": .., "source": ..}``."""
        self._item(self.deletion(key))

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            if self.pretty:
                self._write("\n  ]\n}\n" if self._count else "]\n}\n")
            else:
                self._write("]}\n")


class JsonLinesWriter(_JsonObjects):
    """One compact JSON object per line."""

    ext = "jsonl"
    OPTIONS: dict[str, str] = {}
    # Parts of a feed join byte for byte: lines follow lines (impexmod.export.parts).
    SPLITTABLE = True

    def __enter__(self) -> JsonLinesWriter:
        return self

    def write_record(self, descriptor, ctx, record) -> None:
        """Write one entity's object on its line."""
        for obj in self.objects(descriptor, ctx, record):
            self._fh.write((self.dumps(obj) + "\n").encode("utf-8"))

    def write_delete(self, descriptor, key: tuple[str, str]) -> None:
        """Write a deletion's line."""
        self._fh.write((self.dumps(self.deletion(key)) + "\n").encode("utf-8"))

    def __exit__(self, *exc) -> None:
        return None
