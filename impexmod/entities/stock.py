"""Stock rows: the quantity of a product, or of one of its combinations.

The feed lists no deletions (``emits_deletes = False``): a stock row lives and dies with its
product or combination, and those deletions are in the product and combination feeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Row

from impexmod.entities.base import N_, ExportContext, ProductPart, keyed, link, rows_in, text
from impexmod.entities.flatvocab import KEY, MATCHED_BY, PRODUCT_LINKS, FlatColumn
from impexmod.entities.shape import Shape
from impexmod.entities.xmltext import XmlText
from impexmod.models import StockAvailable


@dataclass
class StockRecord:
    row: Row


class StockDescriptor(ProductPart):
    name = "stock"
    element = "stock"
    kind = "stock"
    table = StockAvailable.__table__
    emits_deletes = False
    label = N_("Stock")
    tables = (StockAvailable.__table__,)
    flat_columns = (
        KEY
        + PRODUCT_LINKS
        + (
            FlatColumn("reference", "value"),
            FlatColumn("ean13", "value"),
            FlatColumn("upc", "value"),
            FlatColumn("quantity", "value"),
            FlatColumn("mode", "option"),
            FlatColumn("out_of_stock", "value"),
        )
    )
    identifiers = MATCHED_BY
    flat_row = "impexmod.export.flatten:stock_row"
    filter_fields = "impexmod.export.filter_fields:stock_fields"
    shape = Shape(
        "stock",
        StockAvailable.__table__,
        links={"product": "product", "combination": "combination"},
        skip=frozenset({"id_product", "id_product_attribute"}),
    )
    loader = "impexmod.importing.loaders.stock"

    def load(self, ctx: ExportContext, ids: Sequence[int]) -> list[StockRecord]:
        """Stock rows by id, with the keys of what they count."""
        rows = rows_in(
            ctx.conn,
            select(StockAvailable.__table__).order_by(StockAvailable.id),
            StockAvailable.id,
            ids,
        )
        ctx.keys.load("stock", [r.id for r in rows])
        ctx.keys.load("product", [r.id_product for r in rows if not r.id_product_attribute])
        ctx.keys.load("combination", [r.id_product_attribute for r in rows])
        return [StockRecord(row=r) for r in rows]

    def render(self, ctx: ExportContext, rec: StockRecord, out: XmlText) -> None:
        """``<stock mode="set">`` with the quantity and a product or combination link."""
        row = rec.row
        keyed(out, "stock", ctx.keys.key("stock", row.id), mode="set")
        out.field("quantity", text(row.quantity))
        if row.id_product_attribute:
            key = ctx.keys.key("combination", row.id_product_attribute)
            link(out, "combination", "combination", key)
        else:
            link(out, "product", "product", ctx.keys.key("product", row.id_product))
        out.close()
