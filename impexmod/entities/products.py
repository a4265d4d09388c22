"""Products, carrying their combinations, stock, specific prices, categories, tags and images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.engine import Connection, Row

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
)
from impexmod.entities.combinations import CombinationRecord, load_combinations, render_combination
from impexmod.entities.flatvocab import KEY, MATCHED_BY, FlatColumn, langs, values
from impexmod.entities.shape import Shape
from impexmod.entities.xmltext import XmlText, key_attributes
from impexmod.models import (
    CategoryProduct,
    Combination,
    Image,
    ImageLang,
    Product,
    ProductLang,
    ProductSupplier,
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


def render_specific_price(ctx: ExportContext, row: Row, out: XmlText, nested: bool = False) -> None:
    """A ``<specificPrice>``; its product (unless nested in it) and combination linked by key."""
    keyed(out, "specificPrice", ctx.keys.key("specific_price", row.id))
    if not nested:
        link(out, "id_product", "product", ctx.keys.key("product", row.id_product))
    if row.id_product_attribute:
        link(
            out,
            "id_product_attribute",
            "combination",
            ctx.keys.key("combination", row.id_product_attribute),
        )
    fields(out, row, SPECIFIC_PRICE_FIELDS)
    fields(out, row, ("from", "to"))
    out.close()


def _categories(conn: Connection, ids: list[int]) -> dict[int, list[Row]]:
    """The category rows of each product, in position order."""
    stmt = select(CategoryProduct.__table__).order_by(
        CategoryProduct.id_product, CategoryProduct.position, CategoryProduct.id_category
    )
    return group_by(rows_in(conn, stmt, CategoryProduct.id_product, ids), "id_product")


def _tags(conn: Connection, ids: list[int]) -> dict[int, list[Row]]:
    """The tags of each product, by language then name."""
    stmt = select(ProductTag.id_product, Tag.id_lang, Tag.name).join(
        Tag, Tag.id == ProductTag.id_tag
    )
    # Sorted here, not in SQL: collations differ (MariaDB puts "é" with "e"), and a feed
    # must list the same tags in the same order whatever database the shop runs on.
    rows = rows_in(conn, stmt, ProductTag.id_product, ids)
    return group_by(sorted(rows, key=lambda r: (r.id_lang, r.name)), "id_product")


def _quantities(conn: Connection, ids: list[int]) -> dict[int, int]:
    """The stock of each product itself (not of its combinations)."""
    stmt = select(StockAvailable.id_product, StockAvailable.quantity).where(
        StockAvailable.id_product_attribute == 0
    )
    return {r.id_product: r.quantity for r in rows_in(conn, stmt, StockAvailable.id_product, ids)}


def _images(conn: Connection, ids: list[int]) -> dict[int, list[tuple[Row, list[Row]]]]:
    """The images of each product in position order, each with its legends."""
    stmt = select(Image.__table__).order_by(Image.position, Image.id)
    image_rows = rows_in(conn, stmt, Image.id_product, ids)
    legends = group_by(
        rows_in(conn, select(ImageLang.__table__), ImageLang.id_image, [i.id for i in image_rows]),
        "id_image",
    )
    return {
        product: [(i, legends.get(i.id, [])) for i in images]
        for product, images in group_by(image_rows, "id_product").items()
    }


def _load_keys(ctx: ExportContext, rows: list[Row], cats, prices, combos) -> None:
    """The keys of the products and of what they link to or carry, in one query per kind."""
    keys = ctx.keys
    keys.load("product", [r.id for r in rows])
    keys.load("combination", [c.row.id for cs in combos.values() for c in cs])
    keys.load("specific_price", [p.id for ps in prices.values() for p in ps])
    keys.load(
        "category",
        [c.id_category for cs in cats.values() for c in cs] + [r.id_category_default for r in rows],
    )
    keys.load("manufacturer", [r.id_manufacturer for r in rows])


class ProductDescriptor(Descriptor):
    name = "products"
    element = "product"
    kind = "product"
    table = Product.__table__
    label = N_("Products")
    tables = (Product.__table__, ProductLang.__table__)
    # A product's element carries its names, links, images, suppliers, combinations, stock
    # and prices: a write to any of them changes it.
    changed_by = {
        table: "id_product"
        for table in (
            ProductLang.__table__,
            CategoryProduct.__table__,
            ProductTag.__table__,
            Image.__table__,
            ProductSupplier.__table__,
            Combination.__table__,
            StockAvailable.__table__,
            SpecificPrice.__table__,
        )
    }
    flat_columns = (
        KEY
        + values(*IDENTIFIERS)
        + langs(*LANG_FIELDS)
        + values(*NUMBERS)
        + (
            FlatColumn("manufacturer", "link", "manufacturer"),
            FlatColumn("manufacturer_name", "link", "manufacturer"),
            FlatColumn("category_default", "link", "category"),
            FlatColumn("categories", "list", "category"),
            FlatColumn("categorypath", "list", "categorypath"),
            FlatColumn("tags", "list", "tag"),
            FlatColumn("images", "list", "image"),
            FlatColumn("quantity", "quantity"),
            FlatColumn("tax", "option"),
        )
    )
    identifiers = MATCHED_BY
    flat_row = "impexmod.export.flatten:product_row"
    object_tables = {
        "product": (Product.__table__, ProductLang.__table__),
        "image": (Image.__table__, ImageLang.__table__),
    }
    object_lists = {
        "product": {
            "category": "categories",
            "image": "images",
            "specificPrice": "specific_prices",
            "combination": "combinations",
        }
    }
    filter_fields = "impexmod.export.filter_fields:product_fields"
    shape = Shape(
        "product",
        Product.__table__,
        ProductLang.__table__,
        {"id_manufacturer": "manufacturer", "id_category_default": "category"},
        ("category", "categorypath", "tag", "stock", "image", "specificPrice", "combination"),
    )
    loader = "impexmod.importing.loaders.products"
    parents = ("categories", "tags")
    disableable = True

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
        cats = _categories(conn, ids)
        tags = _tags(conn, ids)
        stock = _quantities(conn, ids)
        images = _images(conn, ids)
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
        _load_keys(ctx, rows, cats, prices, combos)
        return [
            ProductRecord(
                row=r,
                langs=langs.get(r.id, []),
                categories=[c.id_category for c in cats.get(r.id, [])],
                tags=tags.get(r.id, []),
                quantity=stock.get(r.id),
                images=images.get(r.id, []),
                specific_prices=prices.get(r.id, []),
                combinations=combos.get(r.id, []),
            )
            for r in rows
        ]

    def render(self, ctx: ExportContext, rec: ProductRecord, out: XmlText) -> None:
        """The ``<product>`` element with its nested entities."""
        row, keys = rec.row, ctx.keys
        keyed(out, "product", keys.key("product", row.id))
        fields(out, row, IDENTIFIERS)
        lang_fields(out, ctx, rec.langs, LANG_FIELDS)
        fields(out, row, NUMBERS)
        if row.id_manufacturer:
            link(
                out,
                "id_manufacturer",
                "manufacturer",
                keys.key("manufacturer", row.id_manufacturer),
            )
        if row.id_category_default:
            link(
                out,
                "id_category_default",
                "category",
                keys.key("category", row.id_category_default),
            )
        fields(out, row, ("date_add", "date_upd"))
        for category_id in rec.categories:
            out.empty("category", key_attributes(keys.key("category", category_id)))
        for tag in rec.tags:
            out.field("tag", tag.name, ctx.lang_attrs(tag.id_lang))
        if rec.quantity is not None:
            out.open("stock")
            out.field("quantity", str(rec.quantity))
            out.close()
        for image, legend_rows in rec.images:
            out.open("image")
            out.field("url", image.url)
            lang_fields(out, ctx, legend_rows, ("legend",))
            fields(out, image, ("position", "cover"))
            out.close()
        for sp in rec.specific_prices:
            render_specific_price(ctx, sp, out, nested=True)
        for combo in rec.combinations:
            render_combination(
                ctx, combo, keys.key("combination", combo.row.id), out, product_price=row.price
            )
        out.close()
