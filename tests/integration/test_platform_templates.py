"""The predefined platform templates, checked column by column against the reference notes
(../shared/reference/formats/): a seeded catalog plus hand-made edge cases, exported through
real runs and read back over the feed URL with csv and lxml."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from lxml import etree
from sqlalchemy import delete, select

from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.export.platforms.base import feed_language
from impexmod.export.platforms.gtin import gs1_check_digit, gtin_problem, isbn13, valid_gtin
from impexmod.export.platforms.values import plain_text
from impexmod.extensions import db
from impexmod.factories.orm import (
    CombinationFactory,
    ProductFactory,
    SpecificPriceFactory,
    StockAvailableFactory,
    ensure_languages,
)
from impexmod.factories.seed import seed_catalog
from impexmod.models import (
    Attribute,
    AttributeGroup,
    AttributeLang,
    Combination,
    CombinationImage,
    Image,
    Manufacturer,
    Product,
    ProductLang,
    now,
)
from impexmod.runs import tasks

SHOP_URL = "https://shop.example.com"
G = "{http://base.google.com/ns/1.0}"

# The headers as the reference notes give them, copied from the notes.
SHOPIFY_HEADER = (
    "Title,URL handle,Description,Vendor,Product category,Type,Tags,Published on online store,"
    "Status,SKU,Barcode,Option1 name,Option1 value,Option1 Linked To,Option2 name,"
    "Option2 value,Option2 Linked To,Option3 name,Option3 value,Option3 Linked To,Price,"
    "Compare-at price,Cost per item,Charge tax,Tax code,Unit price total measure,"
    "Unit price total measure unit,Unit price base measure,Unit price base measure unit,"
    "Inventory tracker,Inventory quantity,Continue selling when out of stock,"
    "Weight value (grams),Weight unit for display,Requires shipping,Fulfillment service,"
    "Product image URL,Image position,Image alt text,Variant image URL,Gift card,SEO title,"
    "SEO description,Color (product.metafields.shopify.color-pattern),"
    "Google Shopping / Google product category,Google Shopping / Gender,"
    "Google Shopping / Age group,Google Shopping / Manufacturer part number (MPN),"
    "Google Shopping / Ad group name,Google Shopping / Ads labels,Google Shopping / Condition,"
    "Google Shopping / Custom product,Google Shopping / Custom label 0,"
    "Google Shopping / Custom label 1,Google Shopping / Custom label 2,"
    "Google Shopping / Custom label 3,Google Shopping / Custom label 4"
).split(",")
# WooCommerce: the exporter's default order (the note's column table), store units kg and cm.
WOO_FIXED = [
    "ID",
    "Type",
    "SKU",
    "GTIN, UPC, EAN, or ISBN",
    "Name",
    "Published",
    "Is featured?",
    "Visibility in catalog",
    "Short description",
    "Description",
    "Date sale price starts",
    "Date sale price ends",
    "Tax status",
    "Tax class",
    "In stock?",
    "Stock",
    "Low stock amount",
    "Backorders allowed?",
    "Sold individually?",
    "Weight (kg)",
    "Length (cm)",
    "Width (cm)",
    "Height (cm)",
    "Allow customer reviews?",
    "Purchase note",
    "Sale price",
    "Regular price",
    "Categories",
    "Tags",
    "Shipping class",
    "Images",
    "Download limit",
    "Download expiry days",
    "Parent",
    "Grouped products",
    "Upsells",
    "Cross-sells",
    "External URL",
    "Button text",
    "Position",
]
# PrestaShop 8.x field lists (the note's tables), in auto-mapping order.
PRESTASHOP_PRODUCT = (
    "ID|Active (0/1)|Name|Categories (x,y,z...)|Price tax excluded|Tax rule ID|Cost price|"
    "On sale (0/1)|Discount amount|Discount percent|Discount from (yyyy-mm-dd)|"
    "Discount to (yyyy-mm-dd)|Reference #|Supplier reference #|Supplier|Brand|EAN-13|UPC|MPN|"
    "Ecotax|Width|Height|Depth|Weight|Delivery time of in-stock products|"
    "Delivery time of out-of-stock products with allowed orders|Quantity|Minimal quantity|"
    "Low stock level|Receive a low stock alert by email|Visibility|Additional shipping cost|"
    "Unit for the price per unit|Price per unit|Summary|Description|Tags (x,y,z...)|Meta title|"
    "Meta keywords|Meta description|Rewritten URL|Label when in stock|"
    "Label when backorder allowed|Available for order (0 = No, 1 = Yes)|"
    "Product availability date|Product creation date|Show price (0 = No, 1 = Yes)|"
    "Image URLs (x,y,z...)|Image alt texts (x,y,z...)|Delete existing images (0 = No, 1 = Yes)|"
    "Feature (Name:Value:Position:Customized)|Available online only (0 = No, 1 = Yes)|"
    "Condition|Customizable (0 = No, 1 = Yes)|Uploadable files (0 = No, 1 = Yes)|"
    "Text fields (0 = No, 1 = Yes)|Action when out of stock|Virtual product (0 = No, 1 = Yes)|"
    "File URL|Number of allowed downloads|Expiration date|Number of days|"
    "ID / Name of the store|Advanced Stock Management|Depends on stock|Warehouse|"
    "Accessories (x,y,z...)"
).split("|")
PRESTASHOP_COMBINATION = (
    "Product ID|Product Reference|Attribute (Name:Type:Position)*|Value (Value:Position)*|"
    "Supplier reference|Reference|EAN-13|UPC|MPN|Cost price|Impact on price|Ecotax|Quantity|"
    "Minimal quantity|Low stock level|Receive a low stock alert by email|Impact on weight|"
    "Default (0 = No, 1 = Yes)|Combination availability date|"
    "Choose among product images by position (1,2,3...)|Image URLs (x,y,z...)|"
    "Image alt texts (x,y,z...)|ID / Name of the store|Advanced Stock Management|"
    "Depends on stock|Warehouse"
).split("|")
AMAZON_PRICE_QUANTITY = (
    "sku\tprice\tminimum-seller-allowed-price\tmaximum-seller-allowed-price\tquantity\t"
    "handling-time\tfulfillment-channel"
).split("\t")
AMAZON_INVENTORY_LOADER = (
    "sku\tproduct-id\tproduct-id-type\tprice\tminimum-seller-allowed-price\t"
    "maximum-seller-allowed-price\titem-condition\tquantity\tadd-delete\t"
    "will-ship-internationally\texpedited-shipping\tstandard-plus\titem-note\t"
    "fulfillment-center-id\tproduct-tax-code\tleadtime-to-ship\tmerchant_shipping_group_name"
).split("\t")
GOOGLE_REQUIRED = (
    "id",
    "title",
    "description",
    "link",
    "image_link",
    "availability",
    "price",
    "condition",
)
AVAILABILITY = {"in_stock", "out_of_stock", "preorder", "backorder"}
PRICE = re.compile(r"^\d+\.\d{2}$")


# ------------------------------------------------------------------------------- the catalog


def _image(product: Product, position: int) -> Image:
    image = Image(
        id_product=product.id,
        url=f"https://cdn.example.com/edge/{product.reference}-{position}.jpg",
        position=position,
        cover=position == 1,
    )
    db.session.add(image)
    db.session.flush()
    return image


def _attribute(group_color: bool, name: str) -> Attribute:
    return db.session.scalars(
        select(Attribute)
        .join(AttributeGroup, AttributeGroup.id == Attribute.id_attribute_group)
        .join(AttributeLang, AttributeLang.id_attribute == Attribute.id)
        .where(AttributeGroup.is_color_group == group_color, AttributeLang.name == name)
    ).first()


@pytest.fixture
def catalog(app):
    """A seeded catalog of 40 products and the hand-made edge cases, by reference."""
    app.config.update(SHOP_URL=SHOP_URL, CURRENCY="EUR")
    seed_catalog(db.engine, 40, seed=3)
    brand = db.session.scalars(select(Manufacturer).order_by(Manufacturer.id)).first()

    def product(reference: str, **kw) -> Product:
        kw.setdefault("mpn", f"MPN-{reference}")
        return ProductFactory(
            reference=reference,
            name=f"Edge {reference.lower()}",
            price=Decimal("20.00"),
            id_manufacturer=brand.id,
            active=True,
            condition="new",
            **kw,
        )

    simple = product("EDGE-SIMPLE", ean13="4006381333931", stock=7)
    for position in (1, 2, 3):
        _image(simple, position)
    SpecificPriceFactory(
        product=simple,
        reduction_type="percentage",
        reduction=Decimal("0.25"),
        from_quantity=1,
        date_from=now() - timedelta(days=1),
        date_to=now() + timedelta(days=10),
    )
    no_image = product("EDGE-NOIMG", stock=3)
    bad_gtin = product("EDGE-BADGTIN", ean13="4006381333932", stock=2)
    _image(bad_gtin, 1)
    no_title = product("EDGE-NOTITLE", stock=1)
    _image(no_title, 1)
    variants = product("EDGE-VARIANTS", ean13=None, stock=None)
    covers = [_image(variants, 1), _image(variants, 2)]
    for index, (size, color) in enumerate((("S", "Blue"), ("M", "Blue"), ("L", "Red"))):
        combo = CombinationFactory(
            product=variants,
            reference=f"EDGE-VARIANTS-{size}",
            price=Decimal(index),
            ean13=None,
            mpn=f"MPN-V-{size}",
            default_on=index == 0,
            attributes=[_attribute(False, size), _attribute(True, color)],
        )
        StockAvailableFactory(combination=combo, quantity=index * 4)
        db.session.add(CombinationImage(id_product_attribute=combo.id, id_image=covers[1].id))
    db.session.flush()
    # A product with no English name at all: a title-less item for every template.
    db.session.execute(
        delete(ProductLang).where(ProductLang.id_product == no_title.id, ProductLang.id_lang == 1)
    )
    db.session.commit()
    return {p.reference: p for p in (simple, no_image, bad_gtin, no_title, variants)}


def export(client, template: str, entity: str = "products", **options):
    """Run an exporter of ``template`` and return (run, feed bytes, content type) via its URL."""
    task = exporters.create_exporter(
        f"{template} {entity}", entity, template=template, options=options
    )
    run = jobs.start_run(task, inline=True)
    assert run.status == "succeeded", run.error
    url = tasks.describe(task)["feed_url"]
    status, data, content_type = fetch(client, url)
    assert status == 200
    return run, data, content_type, url


def fetch(client, url: str) -> tuple[int, bytes, str]:
    """GET a feed URL through the test client: status, body, content type."""
    with client.get(urlsplit(url).path) as response:
        return response.status_code, response.data, response.headers["Content-Type"]


def read_rows(data: bytes, delimiter: str = ",") -> tuple[list[str], list[dict[str, str]]]:
    """A CSV/TSV file as its header and its rows (dicts), checking every row's width."""
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""), delimiter=delimiter))
    header, body = rows[0], rows[1:]
    assert all(len(r) == len(header) for r in body), "a row is not as wide as the header"
    return header, [dict(zip(header, r, strict=True)) for r in body]


def catalog_products() -> list[Product]:
    return list(db.session.scalars(select(Product).order_by(Product.id)))


def combinations_of(product_id: int) -> list[Combination]:
    return list(
        db.session.scalars(
            select(Combination).where(Combination.id_product == product_id).order_by(Combination.id)
        )
    )


def left_out(run, template: str, reference: str) -> list[str]:
    """The run's warnings that leave out an item of product ``reference``."""
    return [
        w for w in run.warnings if f"product {reference} (" in w and f"left out of {template}" in w
    ]


# ------------------------------------------------------------------------------ unit checks


@pytest.mark.parametrize(
    "code, valid",
    [
        ("4006381333931", True),  # EAN-13
        ("4006381333932", False),  # wrong check digit
        ("036000291452", True),  # UPC-A
        ("036000291453", False),
        ("96385074", True),  # EAN-8
        ("10012345678902", True),  # GTIN-14
        ("978-0-306-40615-7", True),  # ISBN-13, dashes ignored
        ("2000000000008", False),  # restricted circulation (prefix 2)
        ("9912345678909", False),  # coupon range (99)
        ("512345678900", False),  # UPC coupon (number system 5: 05 as a GTIN-13)
        ("412345678903", False),  # UPC in-store (number system 4)
        ("0000000000000", False),
        ("40063813339", False),  # 11 digits
        ("40063813339X1", False),
        ("", False),
        (None, False),
    ],
)
def test_gtin_check(code, valid):
    assert valid_gtin(code) is valid


def test_isbn10_becomes_its_gtin():
    assert isbn13("0-306-40615-2") == "9780306406157"
    assert isbn13("080442957X") == "9780804429573"
    assert isbn13("0306406153") == "0306406153"  # a bad ISBN-10 is left to the GTIN check
    assert not valid_gtin(isbn13("0306406153"))


def test_gs1_check_digit():
    assert gs1_check_digit("400638133393") == 1
    assert gs1_check_digit("03600029145") == 2
    assert gs1_check_digit("9638507") == 4
    assert gtin_problem("4006381333932") == "bad check digit"
    for restricted in ("2000000000008", "9912345678909", "512345678900", "412345678903"):
        assert gtin_problem(restricted).startswith("restricted or coupon range"), restricted
    with pytest.raises(ValueError):
        gs1_check_digit("12a")


def test_plain_text_strips_html_with_lxml():
    html = "<p>Tea &amp; <b>cups</b></p><p>two<br>lines</p><script>alert(1)</script>"
    assert plain_text(html) == "Tea & cups\ntwo\nlines"
    assert plain_text("") == ""
    assert plain_text("no tags") == "no tags"


def test_feed_language_choice():
    assert feed_language(["fr", "en"], None, None) == "en"
    assert feed_language(["fr", "de"], None, None) == "fr"  # no English: the first
    assert feed_language(["fr", "en"], None, "FR") == "fr"  # FEED_LANGUAGE
    assert feed_language(["fr", "en"], "en", "fr") == "en"  # the option wins
    with pytest.raises(LookupError, match="option lang 'de' is not a language of the shop"):
        feed_language(["fr", "en"], "de", None)
    with pytest.raises(LookupError, match="no language"):
        feed_language([], None, None)


def test_a_bad_feed_language_fails_the_run_clearly(app, catalog):
    app.config["FEED_LANGUAGE"] = "de"
    task = exporters.create_exporter("g", "products", template="google-shopping")
    run = jobs.start_run(task, inline=True)
    assert run.status == "failed"
    assert "FEED_LANGUAGE 'de' is not a language of the shop (it has: en, fr)" in run.error
    with pytest.raises(tasks.InvalidTask, match="two-letter"):
        exporters.create_exporter("g", "products", template="shopify", options={"lang": "english"})


def test_an_empty_catalog_gives_valid_empty_files(client, app):
    ensure_languages(db.session)
    db.session.commit()
    app.config["SHOP_URL"] = SHOP_URL
    _run, data, _type, _url = export(client, "google-shopping")
    assert google_items(data) == []
    _run, data, _type, _url = export(client, "shopify")
    assert read_rows(data) == (SHOPIFY_HEADER, [])


# ---------------------------------------------------------------------------------- Shopify


def test_shopify_product_csv(client, catalog):
    run, data, content_type, url = export(client, "shopify")
    assert url.endswith("/products.csv") and content_type.startswith("text/csv")
    header, rows = read_rows(data)
    assert header == SHOPIFY_HEADER
    by_handle: dict[str, list[dict]] = {}
    for row in rows:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", row["URL handle"]), row["URL handle"]
        by_handle.setdefault(row["URL handle"], []).append(row)
    # Every product with an English name is there once; the title-less one is left out.
    listed = [p for p in catalog_products() if p.reference != "EDGE-NOTITLE"]
    assert len(by_handle) == len(listed)
    assert left_out(run, "shopify", "EDGE-NOTITLE")
    assert any("no title in en" in w for w in left_out(run, "shopify", "EDGE-NOTITLE"))
    for handle, group in by_handle.items():
        first, rest = group[0], group[1:]
        assert first["Title"] and first["Status"] in ("active", "draft"), handle
        assert first["Published on online store"] in ("TRUE", "FALSE")
        assert first["Option1 name"]
        assert all(not r["Title"] and not r["Option1 name"] for r in rest)
        variants = [r for r in group if r["Option1 value"]]
        images = [r for r in group if not r["Option1 value"]]
        for r in variants:
            assert PRICE.match(r["Price"]), r["Price"]
            assert r["Continue selling when out of stock"] in ("DENY", "CONTINUE")
            assert r["Requires shipping"] == "TRUE"
        # An image row carries only the handle and the image columns.
        image_cells = {"URL handle", "Product image URL", "Image position", "Image alt text"}
        for r in images:
            assert {k for k, v in r.items() if v} <= image_cells
            assert r["Product image URL"].startswith("https://")
        positions = [int(r["Image position"]) for r in group if r["Image position"]]
        assert positions == list(range(1, len(positions) + 1))

    simple = next(g for g in by_handle.values() if g[0]["SKU"] == "EDGE-SIMPLE")
    assert simple[0]["Option1 name"] == "Title" and simple[0]["Option1 value"] == "Default Title"
    assert [r["Image position"] for r in simple] == ["1", "2", "3"]
    # The running 25% discount: price is what the customer pays, compare-at the regular one.
    assert (simple[0]["Price"], simple[0]["Compare-at price"]) == ("15.00", "20.00")
    assert simple[0]["Barcode"] == "4006381333931"
    assert simple[0]["Inventory quantity"] == "7" and simple[0]["Inventory tracker"] == "shopify"

    group = next(g for g in by_handle.values() if g[0]["Title"] == "Edge edge-variants")
    variants = [r for r in group if r["Option1 value"]]
    assert (group[0]["Option1 name"], group[0]["Option2 name"]) == ("Size", "Color")
    assert [(r["Option1 value"], r["Option2 value"]) for r in variants] == [
        ("S", "Blue"),
        ("M", "Blue"),
        ("L", "Red"),
    ]
    assert [r["SKU"] for r in variants] == [f"EDGE-VARIANTS-{s}" for s in "SML"]
    assert [r["Price"] for r in variants] == ["20.00", "21.00", "22.00"]
    assert [r["Inventory quantity"] for r in variants] == ["0", "4", "8"]
    assert all(r["Variant image URL"].endswith("EDGE-VARIANTS-2.jpg") for r in variants)
    assert len(group) == 3 + 1  # three variants, the first with image 1, and image 2's row

    # Seeded products with combinations have their variants as rows sharing their handle.
    seeded = [p for p in listed if combinations_of(p.id) and not p.reference.startswith("EDGE")]
    assert seeded, "the seed gives some products combinations"
    for p in seeded:
        combos = combinations_of(p.id)
        group = next(g for g in by_handle.values() if g[0]["SKU"] == combos[0].reference)
        assert [r["SKU"] for r in group if r["Option1 value"]] == [c.reference for c in combos]


def test_shopify_handles_stay_unique(client, catalog):
    twin = ProductFactory(reference="EDGE-TWIN", name="Edge edge-simple", price=Decimal(5))
    db.session.commit()
    _run, data, _type, _url = export(client, "shopify")
    _header, rows = read_rows(data)
    handles = {r["SKU"]: r["URL handle"] for r in rows if r["SKU"] in ("EDGE-SIMPLE", "EDGE-TWIN")}
    # Two products share the URL rewrite edge-edge-simple: each handle gets its product id.
    assert handles == {
        "EDGE-SIMPLE": f"edge-edge-simple-{catalog['EDGE-SIMPLE'].id}",
        "EDGE-TWIN": f"edge-edge-simple-{twin.id}",
    }
    first_rows = [r for r in rows if r["Title"]]
    assert len({r["URL handle"] for r in first_rows}) == len(first_rows)


# ------------------------------------------------------------------------------ WooCommerce


def test_woocommerce_product_csv(client, catalog):
    run, data, content_type, url = export(client, "woocommerce")
    assert url.endswith("/products.csv")
    header, rows = read_rows(data)
    attribute_columns = [
        f"Attribute {n} {c}"
        for n in (1, 2)
        for c in ("name", "value(s)", "visible", "global", "default")
    ]
    assert header == WOO_FIXED + attribute_columns  # the shop has two attribute groups
    assert {r["Type"] for r in rows} <= {"simple", "variable", "variation"}
    parents: dict[str, dict] = {}
    for row in rows:
        assert row["Name"], row
        if row["Type"] == "variable":
            parents[row["SKU"]] = row
            assert row["Regular price"] == "" and row["Sale price"] == ""
            assert row["Attribute 1 name"] and row["Attribute 1 global"] == "1"
        else:
            assert PRICE.match(row["Regular price"]), row
            assert row["In stock?"] in ("", "1", "0", "backorder")
        if row["Type"] == "variation":
            parent = parents[row["Parent"]]  # parents come before their variations
            for n in (1, 2):
                if row[f"Attribute {n} value(s)"]:
                    assert row[f"Attribute {n} name"] == parent[f"Attribute {n} name"]
                    assert row[f"Attribute {n} value(s)"] in parent[f"Attribute {n} value(s)"]
        if row["Type"] == "simple":
            assert row["Parent"] == ""
    products = [p for p in catalog_products() if p.reference != "EDGE-NOTITLE"]
    with_variants = [p for p in products if combinations_of(p.id)]
    assert set(parents) == {p.reference for p in with_variants}
    assert sum(r["Type"] == "simple" for r in rows) == len(products) - len(with_variants)
    assert sum(r["Type"] == "variation" for r in rows) == sum(
        len(combinations_of(p.id)) for p in with_variants
    )
    assert left_out(run, "woocommerce", "EDGE-NOTITLE")

    parent = parents["EDGE-VARIANTS"]
    assert (parent["Attribute 1 name"], parent["Attribute 1 value(s)"]) == ("Size", "S, M, L")
    assert (parent["Attribute 2 name"], parent["Attribute 2 value(s)"]) == ("Color", "Blue, Red")
    assert (parent["Attribute 1 default"], parent["Attribute 2 default"]) == ("S", "Blue")
    variations = [r for r in rows if r["Parent"] == "EDGE-VARIANTS"]
    assert [(r["SKU"], r["Regular price"], r["Stock"]) for r in variations] == [
        ("EDGE-VARIANTS-S", "20.00", "0"),
        ("EDGE-VARIANTS-M", "21.00", "4"),
        ("EDGE-VARIANTS-L", "22.00", "8"),
    ]
    simple = next(r for r in rows if r["SKU"] == "EDGE-SIMPLE")
    assert simple["Images"].count(", ") == 2 and simple["Sale price"] == "15.00"
    assert simple["Date sale price starts"] and simple["Date sale price ends"]
    assert simple["GTIN, UPC, EAN, or ISBN"] == "4006381333931"


# ------------------------------------------------------------------------------- PrestaShop


def test_prestashop_products_and_combinations_csv(client, catalog):
    run, data, _type, url = export(client, "prestashop")
    assert url.endswith("/products.csv")
    header, rows = read_rows(data, delimiter=";")
    assert header == PRESTASHOP_PRODUCT and len(header) == 67
    assert len(rows) == len(catalog_products()) - 1  # all but the nameless one
    for row in rows:
        assert row["Name"] and row["Active (0/1)"] in ("0", "1")
        assert re.fullmatch(r"\d+(\.\d+)?", row["Price tax excluded"]), row
        assert row["Visibility"] in ("both", "catalog", "search", "none")
        assert row["Condition"] in ("new", "used", "refurbished")
        assert row["Action when out of stock"] in ("0", "1", "2")
        urls = [u for u in row["Image URLs (x,y,z...)"].split(",") if u]
        assert all(u.startswith("https://") for u in urls)
    seeded = [r for r in rows if not r["Reference #"].startswith("EDGE")]
    assert all(r["Categories (x,y,z...)"] for r in seeded)
    simple = next(r for r in rows if r["Reference #"] == "EDGE-SIMPLE")
    assert simple["Discount percent"] == "25" and simple["Discount amount"] == ""
    assert simple["Discount from (yyyy-mm-dd)"] and simple["Discount to (yyyy-mm-dd)"]
    assert len(simple["Image URLs (x,y,z...)"].split(",")) == 3
    assert left_out(run, "prestashop", "EDGE-NOTITLE")

    run, data, _type, url = export(client, "prestashop", "combinations")
    assert url.endswith("/combinations.csv")
    header, rows = read_rows(data, delimiter=";")
    assert header == PRESTASHOP_COMBINATION
    total = db.session.query(Combination).count()
    assert len(rows) == total
    for row in rows:
        groups = row["Attribute (Name:Type:Position)*"].split(",")
        values = row["Value (Value:Position)*"].split(",")
        assert len(groups) == len(values) >= 1
        assert all(re.fullmatch(r"[^:]+:(select|radio|color):\d+", g) for g in groups), groups
        assert all(re.fullmatch(r"[^:]+:\d+", v) for v in values), values
    mine = [r for r in rows if r["Product Reference"] == "EDGE-VARIANTS"]
    assert [r["Reference"] for r in mine] == [f"EDGE-VARIANTS-{s}" for s in "SML"]
    assert [r["Impact on price"] for r in mine] == ["0", "1", "2"]
    assert mine[0]["Attribute (Name:Type:Position)*"] == "Size:select:0,Color:color:1"
    assert mine[2]["Value (Value:Position)*"].startswith("L:")
    assert [r["Default (0 = No, 1 = Yes)"] for r in mine] == ["1", "0", "0"]
    # Combination images point at the product's images by position (image 2 here).
    assert {r["Choose among product images by position (1,2,3...)"] for r in mine} == {"2"}

    run, data, _type, _url = export(
        client, "prestashop", separator="tab", multi_separator="|", categories="ids"
    )
    header, rows = read_rows(data, delimiter="\t")
    assert header == PRESTASHOP_PRODUCT
    simple = next(r for r in rows if r["Reference #"] == "EDGE-SIMPLE")
    assert len(simple["Image URLs (x,y,z...)"].split("|")) == 3
    assert all(
        re.fullmatch(r"\d+(\|\d+)*", r["Categories (x,y,z...)"])
        for r in rows
        if not r["Reference #"].startswith("EDGE")
    )


# --------------------------------------------------------------------------- Google Shopping


def google_items(data: bytes) -> list[dict[str, list[str]]]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    root = etree.fromstring(data, parser)
    assert root.tag == "rss" and root.get("version") == "2.0"
    assert root.nsmap.get("g") == "http://base.google.com/ns/1.0"
    channel = root.find("channel")
    assert channel.findtext("title") and channel.findtext("link") == SHOP_URL
    assert channel.findtext("description")
    items = []
    for item in channel.findall("item"):
        attrs: dict[str, list[str]] = {}
        for child in item:
            assert child.tag.startswith(G), child.tag  # every attribute in the g: namespace
            attrs.setdefault(child.tag[len(G) :], []).append(child.text or "")
        items.append(attrs)
    return items


def check_google_item(attrs: dict[str, list[str]], currency: str) -> None:
    """One item against the note's rules."""
    for name in GOOGLE_REQUIRED:
        assert attrs.get(name) and attrs[name][0].strip(), f"{name} missing in {attrs}"
    assert attrs.get("brand") or attrs.get("gtin") or attrs.get("mpn")
    assert len(attrs["id"][0]) <= 50 and len(attrs["title"][0]) <= 150
    assert len(attrs["description"][0]) <= 5000 and "<" not in attrs["description"][0]
    assert attrs["availability"][0] in AVAILABILITY
    assert attrs["condition"][0] in ("new", "refurbished", "used")
    assert re.fullmatch(rf"\d+\.\d{{2}} {currency}", attrs["price"][0]), attrs["price"]
    for sale in attrs.get("sale_price", []):
        assert re.fullmatch(rf"\d+\.\d{{2}} {currency}", sale)
    assert attrs["link"][0].startswith(SHOP_URL + "/")
    assert attrs["image_link"][0].startswith("https://")
    assert len(attrs.get("additional_image_link", [])) <= 10
    for gtin in attrs.get("gtin", []):
        assert valid_gtin(gtin), gtin
    if "gtin" not in attrs and not (attrs.get("brand") and attrs.get("mpn")):
        assert attrs.get("identifier_exists") == ["no"]


def test_google_shopping_rss(app, client, catalog):
    app.config["CURRENCY"] = "USD"
    run, data, content_type, url = export(client, "google-shopping")
    assert url.endswith("/products.xml") and "xml" in content_type
    items = google_items(data)
    for attrs in items:
        check_google_item(attrs, "USD")
    ids = [a["id"][0] for a in items]
    assert len(ids) == len(set(ids))

    # Left out, each named in a warning: no image, no title; kept without its GTIN: bad GTIN.
    assert not [a for a in items if a["id"][0] in ("EDGE-NOIMG", "EDGE-NOTITLE")]
    assert any("no image" in w for w in left_out(run, "google-shopping", "EDGE-NOIMG"))
    assert any("no title" in w for w in left_out(run, "google-shopping", "EDGE-NOTITLE"))
    bad = next(a for a in items if a["id"] == ["EDGE-BADGTIN"])
    assert "gtin" not in bad and bad["mpn"] == ["MPN-EDGE-BADGTIN"]
    assert any(
        "EDGE-BADGTIN" in w and "GTIN 4006381333932 dropped from google-shopping" in w
        for w in run.warnings
    )
    assert not left_out(run, "google-shopping", "EDGE-BADGTIN")

    simple = next(a for a in items if a["id"] == ["EDGE-SIMPLE"])
    assert simple["gtin"] == ["4006381333931"] and "item_group_id" not in simple
    assert simple["price"] == ["20.00 USD"] and simple["sale_price"] == ["15.00 USD"]
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d\+0000/\d{4}-\d\d-\d\dT\d\d:\d\d\+0000",
        simple["sale_price_effective_date"][0],
    )
    assert len(simple["additional_image_link"]) == 2
    assert simple["availability"] == ["in_stock"]
    assert simple["link"][0] == f"{SHOP_URL}/{catalog['EDGE-SIMPLE'].id}-edge-edge-simple.html"

    group = [a for a in items if a.get("item_group_id") == ["EDGE-VARIANTS"]]
    assert [a["id"][0] for a in group] == [f"EDGE-VARIANTS-{s}" for s in "SML"]
    assert [a["size"][0] for a in group] == ["S", "M", "L"]
    assert [a["color"][0] for a in group] == ["Blue", "Blue", "Red"]
    assert [a["availability"][0] for a in group] == ["out_of_stock", "in_stock", "in_stock"]
    assert [a["price"][0] for a in group] == ["20.00 USD", "21.00 USD", "22.00 USD"]
    assert all(
        "S" in group[0]["title"][0] and "id_product_attribute=" in a["link"][0] for a in group
    )
    assert all(a["image_link"][0].endswith("EDGE-VARIANTS-2.jpg") for a in group)

    # Every seeded product gives one item, or one per combination sharing item_group_id;
    # those without a brand are left out, each named in a warning, inactive ones counted.
    seeded = [p for p in catalog_products() if not p.reference.startswith("EDGE")]
    branded = [p for p in seeded if p.active and p.id_manufacturer]
    unbranded = [p for p in seeded if p.active and p.id_manufacturer is None]
    assert branded and unbranded, "the seed leaves some products without a manufacturer"
    for p in branded:
        combos = combinations_of(p.id)
        if combos:
            mine = [a["id"][0] for a in items if a.get("item_group_id") == [p.reference]]
            assert mine == [c.reference for c in combos]
        else:
            assert [a for a in items if a["id"] == [p.reference]]
    listed = {a["id"][0] for a in items} | {a.get("item_group_id", [""])[0] for a in items}
    for p in unbranded:
        assert p.reference not in listed
        assert any("no brand" in w for w in left_out(run, "google-shopping", p.reference))
    inactive = sum(not p.active for p in seeded)
    summary = next(w for w in run.warnings if "item(s) left out" in w)
    assert (f"inactive: {inactive}" in summary) == bool(inactive)


def test_google_shopping_options_and_language(app, client, catalog):
    app.config["FEED_LANGUAGE"] = "fr"
    run, data, _type, _url = export(
        client, "google-shopping", brand="Edge Shop", tax_rate="20", link="{shop}/{lang}/{rewrite}"
    )
    items = google_items(data)
    for attrs in items:
        check_google_item(attrs, "EUR")
    # The French feed: the product without an English name is there now.
    notitle = next(a for a in items if a["id"] == ["EDGE-NOTITLE"])
    assert notitle["link"] == [f"{SHOP_URL}/fr/edge-edge-notitle"]
    simple = next(a for a in items if a["id"] == ["EDGE-SIMPLE"])
    assert simple["price"] == ["24.00 EUR"] and simple["sale_price"] == ["18.00 EUR"]
    # With a default brand nothing seeded is left out for want of a brand.
    assert not any("no brand" in w for w in run.warnings)
    seeded_fr = db.session.scalar(
        select(ProductLang.name).where(ProductLang.id_lang == 2).order_by(ProductLang.id_product)
    )
    assert any(a["title"][0].startswith(seeded_fr) for a in items)

    # The option wins over FEED_LANGUAGE; an unknown language is refused when saving.
    _run, data, _type, _url = export(client, "google-shopping", lang="en", brand="Edge Shop")
    assert not [a for a in google_items(data) if a["id"] == ["EDGE-NOTITLE"]]
    with pytest.raises(tasks.InvalidTask, match="no language 'de'"):
        exporters.create_exporter(
            "g", "products", template="google-shopping", options={"lang": "de"}
        )
    with pytest.raises(tasks.InvalidTask, match="placeholder"):
        exporters.create_exporter(
            "g", "products", template="google-shopping", options={"link": "{x}"}
        )
    with pytest.raises(tasks.InvalidTask, match="takes no option"):
        exporters.create_exporter("g", "products", template="shopify", options={"pretty": "true"})
    with pytest.raises(tasks.InvalidTask, match="exports products"):
        exporters.create_exporter("g", "stock", template="google-shopping")


def test_google_shopping_tsv(client, catalog):
    run, data, content_type, url = export(client, "google-shopping-tsv")
    assert url.endswith("/products.txt") and content_type.startswith("text/plain")
    header, rows = read_rows(data, delimiter="\t")
    assert header[:7] == [
        "id",
        "title",
        "description",
        "link",
        "image_link",
        "additional_image_link",
        "availability",
    ]
    assert {"price", "brand", "gtin", "mpn", "condition", "item_group_id"} <= set(header)
    _run, xml, _t, _u = export(client, "google-shopping")
    items = {a["id"][0]: a for a in google_items(xml)}
    assert [r["id"] for r in rows] == list(items)  # the same items as the RSS feed
    for row in rows:
        attrs = {
            k: v.split(",") if k == "additional_image_link" else [v] for k, v in row.items() if v
        }
        check_google_item(attrs, "EUR")
        assert attrs == items[row["id"]]  # the same attributes, one column each
    simple = next(r for r in rows if r["id"] == "EDGE-SIMPLE")
    assert len(simple["additional_image_link"].split(",")) == 2
    assert left_out(run, "google-shopping-tsv", "EDGE-NOIMG")


# ------------------------------------------------------------------------------------ Amazon


def test_amazon_flat_files(client, catalog):
    run, data, content_type, url = export(client, "amazon")
    assert url.endswith("/products.txt") and content_type.startswith("text/plain")
    header, rows = read_rows(data, delimiter="\t")
    assert header == AMAZON_PRICE_QUANTITY
    skus = [r["sku"] for r in rows]
    expected = []
    for p in catalog_products():
        combos = combinations_of(p.id)
        expected += [c.reference for c in combos] if combos else [p.reference]
    assert skus == expected and len(set(skus)) == len(skus)
    assert "EDGE-VARIANTS" not in skus  # no parent rows: each variant is its own SKU
    for row in rows:
        assert PRICE.match(row["price"]) and Decimal(row["price"]) > 0
        assert row["quantity"].isdigit()
    by_sku = {r["sku"]: r for r in rows}
    assert by_sku["EDGE-SIMPLE"]["price"] == "15.00"  # the discount running now
    assert [by_sku[f"EDGE-VARIANTS-{s}"]["quantity"] for s in "SML"] == ["0", "4", "8"]
    inactive = [
        p.reference for p in catalog_products() if not p.active and not combinations_of(p.id)
    ]
    assert all(by_sku[ref]["quantity"] == "0" for ref in inactive)

    _run, data, _type, _url = export(
        client, "amazon", file="inventory-loader", fulfillment="default", handling_time="2"
    )
    header, rows = read_rows(data, delimiter="\t")
    assert header == AMAZON_INVENTORY_LOADER
    for row in rows:
        assert row["add-delete"] == "a" and row["item-condition"] in ("11", "10", "3")
        assert row["fulfillment-center-id"] == "DEFAULT" and row["leadtime-to-ship"] == "2"
        if row["product-id"]:
            assert row["product-id-type"] in ("2", "3", "4")
            assert valid_gtin(row["product-id"])
    by_sku = {r["sku"]: r for r in rows}
    assert (by_sku["EDGE-SIMPLE"]["product-id"], by_sku["EDGE-SIMPLE"]["product-id-type"]) == (
        "4006381333931",
        "4",
    )
    assert by_sku["EDGE-BADGTIN"]["product-id"] == ""  # an invalid EAN is no product id
    with pytest.raises(tasks.InvalidTask, match="fulfillment"):
        exporters.create_exporter("a", "products", template="amazon", options={"fulfillment": "x"})


# ----------------------------------------------------------------------- deletions, the CLI


def test_incremental_runs_skip_deletions_with_one_warning(client, catalog):
    task = exporters.create_exporter("inc", "products", strategy="incremental", template="shopify")
    assert jobs.start_run(task, inline=True).status == "succeeded"
    for reference in ("EDGE-NOIMG", "EDGE-BADGTIN"):
        db.session.delete(db.session.scalars(select(Product).filter_by(reference=reference)).one())
    simple = db.session.scalars(select(Product).filter_by(reference="EDGE-SIMPLE")).one()
    simple.price = Decimal("30.00")
    db.session.commit()
    run = jobs.start_run(task, inline=True)
    assert run.status == "succeeded", run.error
    assert run.deleted_count == 2
    notes = [w for w in run.warnings if "deletion" in w]
    assert notes == [
        "shopify: 2 deletion(s) skipped: a Shopify product CSV has no deletion row; "
        "archive or delete those products in the Shopify admin"
    ]
    _header, rows = read_rows(fetch(client, tasks.describe(task)["feed_url"])[1])
    assert [r["SKU"] for r in rows if r["SKU"]] == ["EDGE-SIMPLE"]
    assert rows[0]["Compare-at price"] == "30.00"

    google = exporters.create_exporter(
        "g", "products", strategy="incremental", template="google-shopping"
    )
    jobs.start_run(google, inline=True)
    simple.price = Decimal("31.00")
    db.session.commit()
    run = jobs.start_run(google, inline=True)
    assert any("use the full strategy" in w for w in run.warnings)


@pytest.mark.parametrize(
    "template, entity, ext",
    [
        ("google-shopping", "products", "xml"),
        ("google-shopping-tsv", "products", "txt"),
        ("shopify", "products", "csv"),
        ("woocommerce", "products", "csv"),
        ("prestashop", "products", "csv"),
        ("prestashop", "combinations", "csv"),
        ("amazon", "products", "txt"),
    ],
)
def test_cli_adds_and_runs_each_template(runner, client, catalog, template, entity, ext):
    added = runner.invoke(
        args=["exporter", "add", "--name", "g", "--entity", entity, "--template", template]
    )
    assert added.exit_code == 0, added.output
    url = added.output.strip().splitlines()[-1]
    assert url.endswith(f"/{entity}.{ext}"), url
    task_id = re.search(r"Exporter (\d+)", added.output).group(1)
    assert fetch(client, url)[0] == 404  # until the first run
    ran = runner.invoke(args=["exporter", "run", task_id, "--wait"])
    assert ran.exit_code == 0 and "succeeded" in ran.output, ran.output
    status, data, _type = fetch(client, url)
    assert status == 200 and len(data.splitlines()) > 10


def test_cli_refuses_a_template_with_the_wrong_format(runner, catalog):
    result = runner.invoke(
        args=[
            "exporter",
            "add",
            "--name",
            "g",
            "--entity",
            "products",
            "--template",
            "shopify",
            "--format",
            "xml",
        ]
    )
    assert result.exit_code != 0 and "shopify writes csv files" in result.output
