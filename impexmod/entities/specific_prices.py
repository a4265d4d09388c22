"""Specific prices on their own, each linked to its product (and combination, if any)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Row

from impexmod.entities.base import N_, ExportContext, ProductPart, rows_in
from impexmod.entities.flatvocab import KEY, PRODUCT_LINKS, values
from impexmod.entities.products import SPECIFIC_PRICE_FIELDS, render_specific_price
from impexmod.entities.shape import Shape
from impexmod.entities.xmltext import XmlText
from impexmod.models import SpecificPrice


@dataclass
class SpecificPriceRecord:
    row: Row


class SpecificPriceDescriptor(ProductPart):
    name = "specific_prices"
    element = "specificPrice"
    kind = "specific_price"
    table = SpecificPrice.__table__
    label = N_("Specific prices")
    tables = (SpecificPrice.__table__,)
    flat_columns = KEY + PRODUCT_LINKS + values(*SPECIFIC_PRICE_FIELDS, "from", "to")
    flat_row = "impexmod.export.flatten:plain_row"
    filter_fields = "impexmod.export.filter_fields:specific_price_fields"
    shape = Shape(
        "specific_price",
        SpecificPrice.__table__,
        links={"id_product": "product", "id_product_attribute": "combination"},
    )
    loader = "impexmod.importing.loaders.prices"

    def load(self, ctx: ExportContext, ids: Sequence[int]) -> list[SpecificPriceRecord]:
        """Specific prices by id, with the keys of their products and combinations."""
        rows = rows_in(
            ctx.conn,
            select(SpecificPrice.__table__).order_by(SpecificPrice.id),
            SpecificPrice.id,
            ids,
        )
        ctx.keys.load("specific_price", [r.id for r in rows])
        ctx.keys.load("product", [r.id_product for r in rows])
        ctx.keys.load("combination", [r.id_product_attribute for r in rows])
        return [SpecificPriceRecord(row=r) for r in rows]

    def render(self, ctx: ExportContext, rec: SpecificPriceRecord, out: XmlText) -> None:
        """A standalone ``<specificPrice>`` with its ``id_product`` link."""
        render_specific_price(ctx, rec.row, out)
