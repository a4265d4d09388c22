"""Combinations (product variants) with their attribute groups, attributes, stock and images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.engine import Row

from impexmod.entities.base import (
    N_,
    Descriptor,
    ExportContext,
    fields,
    group_by,
    keyed,
    lang_fields,
    link,
    rows_in,
    text,
)
from impexmod.entities.flatvocab import KEY, MATCHED_BY, FlatColumn, values
from impexmod.entities.shape import Shape
from impexmod.entities.xmltext import XmlText
from impexmod.models import (
    Attribute,
    AttributeGroup,
    AttributeGroupLang,
    AttributeLang,
    Combination,
    CombinationAttribute,
    CombinationImage,
    Image,
    StockAvailable,
)

COMBINATION_FIELDS = ("reference", "ean13", "upc", "isbn", "mpn")
COMBINATION_TAIL = ("wholesale_price", "ecotax", "weight", "default_on")


@dataclass
class CombinationRecord:
    row: Row
    attributes: list[int] = field(default_factory=list)
    quantity: int | None = None
    image_urls: list[str] = field(default_factory=list)


def _attribute_catalog(ctx: ExportContext, needed: Sequence[int] = ()) -> dict:
    """Attribute groups and attributes: small tables, loaded once per feed.

    Loaded again if a combination uses an attribute created since (during a long export).
    """
    cached = ctx.cache.get("attributes")
    if cached is None or any(a not in cached[3] for a in needed):
        conn = ctx.conn
        groups = {r.id: r for r in conn.execute(select(AttributeGroup.__table__))}
        group_langs = group_by(
            conn.execute(select(AttributeGroupLang.__table__)), "id_attribute_group"
        )
        attrs = {r.id: r for r in conn.execute(select(Attribute.__table__))}
        attr_langs = group_by(conn.execute(select(AttributeLang.__table__)), "id_attribute")
        ctx.keys.load("attribute_group", groups)
        group_keys = {i: ctx.keys.key("attribute_group", i) for i in groups}
        ctx.keys.load("attribute", attrs)
        attr_keys = {i: ctx.keys.key("attribute", i) for i in attrs}
        ctx.cache["attributes"] = (groups, group_langs, group_keys, attrs, attr_langs, attr_keys)
    return ctx.cache["attributes"]


def load_combinations(
    ctx: ExportContext, ids: Sequence[int], by_product: bool
) -> list[CombinationRecord]:
    """Combinations by their ids, or (``by_product``) all combinations of these products."""
    conn = ctx.conn
    table = Combination.__table__
    column = table.c.id_product if by_product else table.c.id
    rows = sorted(rows_in(conn, select(table), column, ids), key=lambda r: r.id)
    if not rows:
        return []
    combo_ids = [r.id for r in rows]
    attrs = group_by(
        rows_in(
            conn,
            select(CombinationAttribute.__table__),
            CombinationAttribute.id_product_attribute,
            combo_ids,
        ),
        "id_product_attribute",
    )
    stock = {
        r.id_product_attribute: r.quantity
        for r in rows_in(
            conn,
            select(StockAvailable.id_product_attribute, StockAvailable.quantity),
            StockAvailable.id_product_attribute,
            combo_ids,
        )
    }
    images = group_by(
        rows_in(
            conn,
            select(CombinationImage.id_product_attribute, Image.url, Image.position)
            .join(Image, Image.id == CombinationImage.id_image)
            .order_by(Image.position),
            CombinationImage.id_product_attribute,
            combo_ids,
        ),
        "id_product_attribute",
    )
    return [
        CombinationRecord(
            row=r,
            attributes=sorted(a.id_attribute for a in attrs.get(r.id, [])),
            quantity=stock.get(r.id),
            image_urls=[i.url for i in images.get(r.id, [])],
        )
        for r in rows
    ]


def render_combination(
    ctx: ExportContext,
    rec: CombinationRecord,
    key: tuple[str, str],
    out: XmlText,
    product_price=None,
    product_key: tuple[str, str] | None = None,
) -> None:
    """A ``<combination>``: nested in its product (final price) or standalone (price impact)."""
    row = rec.row
    keyed(out, "combination", key)
    fields(out, row, COMBINATION_FIELDS)
    price = row.price if product_price is None else product_price + row.price
    out.field("price", text(price))
    fields(out, row, COMBINATION_TAIL)
    if product_key is not None:
        link(out, "id_product", "product", product_key)
    groups, group_langs, group_keys, attrs, attr_langs, attr_keys = _attribute_catalog(
        ctx, rec.attributes
    )
    by_group: dict[int, list[int]] = {}
    for attr_id in rec.attributes:
        by_group.setdefault(attrs[attr_id].id_attribute_group, []).append(attr_id)
    for group_id in sorted(by_group, key=lambda g: (groups[g].position, g)):
        group = groups[group_id]
        keyed(out, "attributeGroup", group_keys[group_id])
        fields(out, group, ("is_color_group", "group_type", "position"))
        lang_fields(out, ctx, group_langs.get(group_id, []), ("name", "public_name"))
        for attr_id in by_group[group_id]:
            attr = attrs[attr_id]
            keyed(out, "attribute", attr_keys[attr_id])
            lang_fields(out, ctx, attr_langs.get(attr_id, []), ("name",))
            fields(out, attr, ("position", "color"))
            out.close()
        out.close()
    if rec.quantity is not None:
        out.open("stock")
        out.field("quantity", str(rec.quantity))
        out.close()
    for url in rec.image_urls:
        out.open("image")
        out.field("url", url)
        out.close()
    out.close()


class CombinationDescriptor(Descriptor):
    name = "combinations"
    element = "combination"
    kind = "combination"
    table = Combination.__table__
    label = N_("Combinations")
    tables = (Combination.__table__,)
    changed_by = {
        CombinationAttribute.__table__: "id_product_attribute",
        CombinationImage.__table__: "id_product_attribute",
        StockAvailable.__table__: "id_product_attribute",  # a combination's own stock
    }
    flat_columns = (
        KEY
        + (FlatColumn("product", "link", "product"),)
        + values(*COMBINATION_FIELDS, "price", *COMBINATION_TAIL)
        + (
            FlatColumn("attributes", "list", "attribute"),
            FlatColumn("images", "list", "image"),
            FlatColumn("quantity", "quantity"),
        )
    )
    identifiers = MATCHED_BY
    flat_row = "impexmod.export.flatten:combination_row"
    object_tables = {
        "combination": (Combination.__table__,),
        "attributeGroup": (AttributeGroup.__table__, AttributeGroupLang.__table__),
        "attribute": (Attribute.__table__, AttributeLang.__table__),
    }
    object_lists = {
        "combination": {"attributeGroup": "attribute_groups", "image": "images"},
        "attributeGroup": {"attribute": "attributes"},
    }
    filter_fields = "impexmod.export.filter_fields:combination_fields"
    shape = Shape(
        "combination",
        Combination.__table__,
        links={"id_product": "product"},
        nested=("attributeGroup", "stock", "image"),
    )
    nested_shapes = {
        "attributeGroup": Shape(
            "attribute_group",
            AttributeGroup.__table__,
            AttributeGroupLang.__table__,
            nested=("attribute",),
        ),
        "attribute": Shape(
            "attribute",
            Attribute.__table__,
            AttributeLang.__table__,
            skip=frozenset({"id_attribute_group"}),
        ),
    }
    key_tables = {"attribute_group": AttributeGroup.__table__, "attribute": Attribute.__table__}
    deletable_nested = ("attribute", "attribute_group")
    loader = "impexmod.importing.loaders.combinations"
    parents = ("products",)
    deleted_with = ("products", "id_product")

    def load(self, ctx: ExportContext, ids: Sequence[int]) -> list[CombinationRecord]:
        """Combinations by id, with attributes, stock and images, and their products' keys."""
        records = load_combinations(ctx, ids, by_product=False)
        ctx.keys.load("combination", [r.row.id for r in records])
        ctx.keys.load("product", [r.row.id_product for r in records])
        return records

    def render(self, ctx: ExportContext, rec: CombinationRecord, out: XmlText) -> None:
        """A standalone combination, linked to its product, with its price impact."""
        product_key = ctx.keys.key("product", rec.row.id_product)
        render_combination(
            ctx, rec, ctx.keys.key("combination", rec.row.id), out, product_key=product_key
        )
