"""What the flat writers share: their options, the header and values of each row, deletions,
and the product supplier references that some of them load per chunk."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row

from impexmod.entities import ExportContext
from impexmod.entities.base import group_by, rows_in
from impexmod.export import flatten, transforms
from impexmod.export.formats.base import InvalidOption, WriterSetup
from impexmod.messages import msg
from impexmod.models import ProductSupplier, Supplier

TRUE = ("true", "1", "yes", "on")
FALSE = ("false", "0", "no", "off")
DELETED = "deleted"

FLAT_OPTIONS = {
    "rows": "products (one row per product, default) or combinations (one per combination)",
    "fields": "the columns to write, in order, comma-separated (default: every column)",
}


def boolean(options: dict[str, str], key: str, default: bool) -> bool:
    """A true/false option, normalised in place to ``true`` or ``false``."""
    value = options.get(key)
    if value is None:
        return default
    text = str(value).strip().lower()
    if text not in TRUE + FALSE:
        raise InvalidOption(key, msg("write true or false, not %(value)s", value=repr(value)))
    options[key] = "true" if text in TRUE else "false"
    return text in TRUE


def field_list(text: str) -> list[str]:
    """``a, b,c`` -> ``["a", "b", "c"]``."""
    return [f.strip() for f in text.split(",") if f.strip()]


def check_flat_options(entity: str, options: dict[str, str]) -> dict[str, str]:
    """Check ``rows`` and ``fields`` (names only: the languages are the shop's at run time)."""
    rows = options.get("rows", "products").strip().lower()
    if entity not in flatten.FLAT_ENTITIES:
        raise InvalidOption("rows", msg("%(entity)s has no flat columns", entity=entity))
    try:
        flatten.available_columns(entity, [], rows)
    except ValueError as exc:
        raise InvalidOption("rows", exc.args[0]) from None  # a Message
    if "rows" in options:
        options["rows"] = rows
    if "fields" in options:
        fields = field_list(options["fields"])
        if not fields:
            raise InvalidOption("fields", msg("name at least one column"))
        try:
            flatten.select_columns(entity, None, rows, fields)
        except flatten.UnknownColumns as exc:
            known = ", ".join(flatten.available_columns(entity, [], rows))
            raise InvalidOption(
                "fields",
                msg("unknown column %(names)s (known: %(known)s)", names=str(exc), known=known),
            ) from None
        options["fields"] = ",".join(fields)
    return options


# One rendering of a flat value for every flat writer and for field mappings.
cell_text = transforms.text


class FlatLayout:
    """The header of a flat feed and the values of each of its rows.

    A field template decides both when there is one; else the canonical columns, or those
    of option ``fields``. Incremental feeds end with a ``deleted`` column: ``1`` on the rows of
    deleted entities, which carry nothing but their key.
    """

    def __init__(self, setup: WriterSetup):
        self.entity = setup.entity
        self.rows = setup.options.get("rows", "products")
        self.mapping = setup.mapping
        self.incremental = setup.incremental
        self.columns: list[str] | None = None
        if self.mapping is not None:
            self.header = list(self.mapping.headers())
        else:
            languages = list(setup.languages)
            if "fields" in setup.options:
                try:
                    self.columns = flatten.select_columns(
                        self.entity, languages, self.rows, field_list(setup.options["fields"])
                    )
                except flatten.UnknownColumns as exc:
                    said = dict(names=str(exc), languages=", ".join(languages))
                    raise InvalidOption(
                        "fields",
                        msg(
                            "no column %(names)s in this shop (its languages: %(languages)s)",
                            **said,
                        )
                        if languages
                        else msg("no column %(names)s in this shop (its languages: none)", **said),
                    ) from None
            else:
                self.columns = flatten.available_columns(self.entity, languages, self.rows)
            self.header = list(self.columns)
        if self.incremental:
            self.header.append(DELETED)

    def kinds(self) -> list[str | None]:
        """Each output column's kind (int, decimal, text), or None where a template decides."""
        if self.columns is None:
            kinds: list[str | None] = [None] * len(self.mapping.headers())
        else:
            kinds = [flatten.column_kind(self.entity, c) for c in self.columns]
        return kinds + (["int"] if self.incremental else [])

    def values(self, row: dict[str, Any]) -> list[Any]:
        """The cells of one flat row."""
        if self.mapping is not None:
            out = list(self.mapping.apply(row))
        else:
            out = [row.get(c) for c in self.columns]
        return out + ([None] if self.incremental else [])

    def deletion(self, key: tuple[str, str]) -> list[Any]:
        """The cells of a deletion row: the key, and ``deleted`` = 1."""
        row = flatten.key_row(key)
        if self.mapping is not None:
            cells = list(self.mapping.apply(row))
        else:
            cells = [row.get(c) for c in self.columns]
        return cells + [1]

    def records(self, descriptor, ctx: ExportContext, record: Any) -> list[list[Any]]:
        """The rows of one loaded entity, as cells."""
        return [self.values(r) for r in flatten.flat_rows(descriptor, ctx, record, self.rows)]


def product_suppliers(ctx: ExportContext, product_ids: Sequence[int]) -> dict[int, list[Row]]:
    """The supplier references of these products (and their combinations), by product id.

    One query per chunk; each row has ``id_product``, ``id_product_attribute``, ``supplier``
    (the supplier's name), ``reference`` and ``wholesale_price``.
    """
    stmt = (
        select(
            ProductSupplier.id_product,
            ProductSupplier.id_product_attribute,
            Supplier.name.label("supplier"),
            ProductSupplier.product_supplier_reference.label("reference"),
            ProductSupplier.product_supplier_price_te.label("wholesale_price"),
        )
        .join(Supplier, Supplier.id == ProductSupplier.id_supplier)
        .order_by(ProductSupplier.id_product, ProductSupplier.id_product_attribute, Supplier.name)
    )
    return group_by(rows_in(ctx.conn, stmt, ProductSupplier.id_product, product_ids), "id_product")


SUPPLIER_COLUMNS = [
    "product",
    "product_source",
    "combination",
    "combination_source",
    "supplier",
    "product_supplier_reference",
    "wholesale_price",
]
SUPPLIER_KINDS = ["text"] * 6 + ["decimal"]


def supplier_cells(ctx: ExportContext, row: Row) -> list[Any]:
    """One product supplier reference as the cells of the suppliers sheet."""
    product = ctx.keys.key("product", row.id_product)
    combination = (
        ctx.keys.key("combination", row.id_product_attribute)
        if row.id_product_attribute
        else (None, None)
    )
    price = flatten.plain_decimal(row.wholesale_price) if row.wholesale_price is not None else None
    return [*product, *combination, row.supplier, row.reference, price]
