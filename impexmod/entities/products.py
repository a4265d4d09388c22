"""Products, carrying their combinations, stock, specific prices, categories, tags and images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from lxml import etree
from sqlalchemy import select
from sqlalchemy.engine import Row

from impexmod.entities.base import (
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
from impexmod.entities.combinations import CombinationRecord, build_combination, load_combinations
from impexmod.models import (
    CategoryProduct,
    Image,
    ImageLang,
    Product,
    ProductLang,
    ProductTag,
    SpecificPrice,
    StockAvailable,
    Tag,
)

IDENTIFIERS = ("reference", "ean13", "upc", "isbn", "mpn")
LANG_FIELDS = ("name", "description", "description_short", "link_rewrite")
NUMBERS = (
    "price",
    "wholesale_price",
    "ecotax",
    "weight",
    "width",
    "height",
    "depth",
    "active",
    "condition",
    "visibility",
    "id_tax_rules_group",
)
SPECIFIC_PRICE_FIELDS = (
    "id_shop",
    "id_currency",
    "id_country",
    "id_group",
    "id_customer",
    "price",
    "from_quantity",
    "reduction",
    "reduction_tax",
    "reduction_type",
)


@dataclass
class ProductRecord:
    row: Row
    langs: list[Row] = field(default_factory=list)
    categories: list[int] = field(default_factory=list)
    tags: list[Row] = field(default_factory=list)
    quantity: int | None = None
    images: list[tuple[Row, list[Row]]] = field(default_factory=list)
    specific_prices: list[Row] = field(default_factory=list)
    combinations: list[CombinationRecord] = field(default_factory=list)


def specific_price_element(
    ctx: ExportContext, row: Row, parent: etree._Element | None = None
) -> etree._Element:
    """A ``<specificPrice>``; its combination, if any, is linked by key."""
    el = keyed("specificPrice", ctx.keys.key("specific_price", row.id), parent)
    if parent is None:
        link(el, "id_product", "product", ctx.keys.key("product", row.id_product))
    if row.id_product_attribute:
        link(
            el,
            "id_product_attribute",
            "combination",
            ctx.keys.key("combination", row.id_product_attribute),
        )
    fields(el, row, SPECIFIC_PRICE_FIELDS)
    etree.SubElement(el, "from").text = text(row._mapping["from"])
    etree.SubElement(el, "to").text = text(row._mapping["to"])
    return el


class ProductDescriptor(Descriptor):
    name = "products"
    element = "product"
    kind = "product"
    table = Product.__table__

    def load(self, ctx: ExportContext, ids: Sequence[int]) -> list[ProductRecord]:
        """Products by id with everything that hangs on them, in a fixed number of queries."""
        conn = ctx.conn
        rows = rows_in(conn, select(Product.__table__).order_by(Product.id), Product.id, ids)
        if not rows:
            return []
        ids = [r.id for r in rows]
        langs = group_by(
            rows_in(conn, select(ProductLang.__table__), ProductLang.id_product, ids), "id_product"
        )
        cats = group_by(
            rows_in(
                conn,
                select(CategoryProduct.__table__).order_by(
                    CategoryProduct.id_product,
                    CategoryProduct.position,
                    CategoryProduct.id_category,
                ),
                CategoryProduct.id_product,
                ids,
            ),
            "id_product",
        )
        # Sorted here, not in SQL: collations differ (MariaDB puts "é" with "e"), and a feed
        # must list the same tags in the same order whatever database the shop runs on.
        tags = group_by(
            sorted(
                rows_in(
                    conn,
                    select(ProductTag.id_product, Tag.id_lang, Tag.name).join(
                        Tag, Tag.id == ProductTag.id_tag
                    ),
                    ProductTag.id_product,
                    ids,
                ),
                key=lambda r: (r.id_lang, r.name),
            ),
            "id_product",
        )
        stock = {
            r.id_product: r.quantity
            for r in rows_in(
                conn,
                select(StockAvailable.id_product, StockAvailable.quantity).where(
                    StockAvailable.id_product_attribute == 0
                ),
                StockAvailable.id_product,
                ids,
            )
        }
        image_rows = rows_in(
            conn, select(Image.__table__).order_by(Image.position, Image.id), Image.id_product, ids
        )
        legends = group_by(
            rows_in(
                conn, select(ImageLang.__table__), ImageLang.id_image, [i.id for i in image_rows]
            ),
            "id_image",
        )
        images = group_by(image_rows, "id_product")
        prices = group_by(
            rows_in(
                conn,
                select(SpecificPrice.__table__).order_by(SpecificPrice.id),
                SpecificPrice.id_product,
                ids,
            ),
            "id_product",
        )
        combos: dict[int, list[CombinationRecord]] = {}
        for rec in load_combinations(ctx, ids, by_product=True):
            combos.setdefault(rec.row.id_product, []).append(rec)

        keys = ctx.keys
        keys.load("product", ids)
        keys.load("combination", [c.row.id for cs in combos.values() for c in cs])
        keys.load("specific_price", [p.id for ps in prices.values() for p in ps])
        keys.load(
            "category",
            [c.id_category for cs in cats.values() for c in cs]
            + [r.id_category_default for r in rows],
        )
        keys.load("manufacturer", [r.id_manufacturer for r in rows])
        return [
            ProductRecord(
                row=r,
                langs=langs.get(r.id, []),
                categories=[c.id_category for c in cats.get(r.id, [])],
                tags=tags.get(r.id, []),
                quantity=stock.get(r.id),
                images=[(i, legends.get(i.id, [])) for i in images.get(r.id, [])],
                specific_prices=prices.get(r.id, []),
                combinations=combos.get(r.id, []),
            )
            for r in rows
        ]

    def build(self, ctx: ExportContext, rec: ProductRecord) -> etree._Element:
        """The ``<product>`` element with its nested entities."""
        row, keys = rec.row, ctx.keys
        el = keyed("product", keys.key("product", row.id))
        fields(el, row, IDENTIFIERS)
        lang_fields(el, ctx, rec.langs, LANG_FIELDS)
        fields(el, row, NUMBERS)
        if row.id_manufacturer:
            link(
                el, "id_manufacturer", "manufacturer", keys.key("manufacturer", row.id_manufacturer)
            )
        if row.id_category_default:
            link(
                el, "id_category_default", "category", keys.key("category", row.id_category_default)
            )
        fields(el, row, ("date_add", "date_upd"))
        for category_id in rec.categories:
            keyed("category", keys.key("category", category_id), el)
        languages = ctx.languages
        for tag in rec.tags:
            etree.SubElement(el, "tag", lang=languages.get(tag.id_lang, "")).text = tag.name
        if rec.quantity is not None:
            etree.SubElement(etree.SubElement(el, "stock"), "quantity").text = str(rec.quantity)
        for image, legend_rows in rec.images:
            iel = etree.SubElement(el, "image")
            etree.SubElement(iel, "url").text = image.url
            lang_fields(iel, ctx, legend_rows, ("legend",))
            fields(iel, image, ("position", "cover"))
        for sp in rec.specific_prices:
            specific_price_element(ctx, sp, el)
        for combo in rec.combinations:
            build_combination(
                ctx, combo, keys.key("combination", combo.row.id), el, product_price=row.price
            )
        return el
