"""Flat rows of loaded records (the importer's columns), option checks of the flat and JSON
formats, the formula rule of CSV cells, and the JSON object of an entity."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest

from impexmod.catalog import identity
from impexmod.entities import REGISTRY, ExportContext
from impexmod.export import flatten, writers
from impexmod.export.formats.csv_writer import neutralise
from impexmod.export.writers import InvalidOption, WriterSetup
from impexmod.extensions import db
from impexmod.importing.columns import column, headers
from impexmod.models import (
    Attribute,
    AttributeGroup,
    AttributeGroupLang,
    AttributeLang,
    Category,
    CategoryLang,
    CategoryProduct,
    Combination,
    CombinationAttribute,
    Image,
    Language,
    Manufacturer,
    Product,
    ProductLang,
    ProductTag,
    StockAvailable,
    Tag,
)

SHOP = "shop:testshop"
LANGS = ["en", "fr"]


@pytest.fixture
def catalog(app):
    """Two products: P-1 (shop key, two sizes, tags, image), P-2 (keyed by supplier Acme)."""

    def add(*rows):
        db.session.add_all(rows)
        db.session.flush()
        return rows

    add(Language(id=1, iso_code="en", name="English"), Language(id=2, iso_code="fr", name="Fr"))
    add(Manufacturer(id=1, name="Acme Brand"))
    add(Category(id=1, is_root_category=True), Category(id=2, id_parent=1, level_depth=1))
    add(
        *(
            CategoryLang(id_category=c, id_lang=lang, name=n, link_rewrite=n.lower())
            for c, lang, n in (
                (1, 1, "Home"),
                (1, 2, "Accueil"),
                (2, 1, "Shoes"),
                (2, 2, "Chaussures"),
            )
        )
    )
    add(
        Product(
            id=1,
            reference="P-1",
            ean13="0123456789012",
            price=Decimal("19.9"),
            id_manufacturer=1,
            id_category_default=2,
        ),
        Product(id=2, reference="P-2", price=Decimal("5.125"), id_category_default=2),
    )
    add(
        ProductLang(id_product=1, id_lang=1, name="Boot", link_rewrite="boot"),
        ProductLang(id_product=1, id_lang=2, name="Botte", link_rewrite="botte"),
        ProductLang(id_product=2, id_lang=1, name="Lace", link_rewrite="lace"),
        CategoryProduct(id_category=2, id_product=1, position=0),
        CategoryProduct(id_category=2, id_product=2, position=1),
        Tag(id=1, id_lang=1, name="red"),
        Tag(id=2, id_lang=2, name="rouge"),
        Image(id=1, id_product=1, url="https://img.test/1.jpg", position=1, cover=True),
        StockAvailable(id_product=1, quantity=5),
        AttributeGroup(id=1, position=0),
    )
    add(
        ProductTag(id_product=1, id_tag=1),
        ProductTag(id_product=1, id_tag=2),
        AttributeGroupLang(id_attribute_group=1, id_lang=1, name="Size", public_name="Size"),
        AttributeGroupLang(id_attribute_group=1, id_lang=2, name="Taille", public_name="Taille"),
        Attribute(id=1, id_attribute_group=1, position=0),
        Attribute(id=2, id_attribute_group=1, position=1),
        Combination(id=1, id_product=1, reference="P-1-S", price=0, default_on=True),
        Combination(id=2, id_product=1, reference="P-1-M", price=Decimal("-1.5")),
    )
    add(
        AttributeLang(id_attribute=1, id_lang=1, name="S"),
        AttributeLang(id_attribute=2, id_lang=1, name="M"),
        CombinationAttribute(id_attribute=1, id_product_attribute=1),
        CombinationAttribute(id_attribute=2, id_product_attribute=2),
        StockAvailable(id_product=1, id_product_attribute=1, quantity=2),
        StockAvailable(id_product=1, id_product_attribute=2, quantity=3),
    )
    identity.register(db.session.connection(), "supplier:Acme", "product", "ACME-2", 2)
    db.session.commit()
    return app


def rows_of(entity: str, ids: list[int], rows: str = "products") -> list[dict]:
    with db.engine.connect() as conn:
        ctx = ExportContext.open(conn, SHOP)
        descriptor = REGISTRY[entity]
        return [
            row
            for record in descriptor.load(ctx, ids)
            for row in flatten.flat_rows(descriptor, ctx, record, rows)
        ]


def test_every_column_of_an_importable_entity_is_one_the_importer_reads():
    for entity in ("products", "combinations", "categories", "tags", "specific_prices", "stock"):
        for header in flatten.available_columns(entity, LANGS):
            assert column(entity, header) is not None, (entity, header)
    products = flatten.available_columns("products", LANGS)
    canonical = headers("products", LANGS)
    # The importer's columns, in its order, with the spellings it needs to import them back.
    assert [c for c in products if c in canonical] == [c for c in canonical if c != "tags"]
    assert set(products) - set(canonical) == {
        "manufacturer_source",
        "category_default_source",
        "categories_source",
        "tags[en]",
        "tags[fr]",
    }
    assert flatten.available_columns("tags", LANGS) == [
        "supplier_reference",
        "source",
        "lang",
        "name",
    ]


def test_orders_and_customers_have_export_only_columns():
    orders = flatten.available_columns("orders", LANGS)
    assert orders[:3] == ["supplier_reference", "source", "reference"]
    assert {"delivery_city", "invoice_country_iso", "lines", "quantity"} <= set(orders)
    assert "email" in flatten.available_columns("customers", LANGS)
    assert flatten.column_kind("orders", "current_state") == "text"
    assert flatten.column_kind("orders", "total_paid_tax_incl") == "decimal"


def test_rows_per_combination_add_prefixed_combination_columns():
    columns = flatten.available_columns("products", LANGS, rows="combinations")
    base = flatten.available_columns("products", LANGS)
    assert columns[: len(base)] == base
    assert columns[len(base) :][:3] == [
        "combination_supplier_reference",
        "combination_source",
        "combination_reference",
    ]
    assert "combination_product" not in columns
    assert flatten.column_kind("products", "combination_price") == "decimal"
    with pytest.raises(ValueError, match="for products exports"):
        flatten.available_columns("categories", LANGS, rows="combinations")
    with pytest.raises(KeyError):
        flatten.available_columns("manufacturers", LANGS)


def test_fields_are_chosen_in_order_and_a_translated_name_means_every_language():
    chosen = flatten.select_columns("products", LANGS, "products", ["price", "name", "reference"])
    assert chosen == ["price", "name[en]", "name[fr]", "reference"]
    assert flatten.select_columns("products", LANGS, "products", ["name[fr]"]) == ["name[fr]"]
    with pytest.raises(flatten.UnknownColumns, match="colour, name\\[de\\]"):
        flatten.select_columns("products", LANGS, "products", ["colour", "name[de]"])
    # Without the shop's languages only the names are checked.
    assert flatten.select_columns("products", None, "products", ["name[de]"]) == ["name[de]"]


def test_a_product_row_has_typed_exact_values_keys_and_lists(catalog):
    boot, lace = rows_of("products", [1, 2])
    assert (boot["supplier_reference"], boot["source"]) == ("1", SHOP)
    assert boot["ean13"] == "0123456789012"  # text: the leading zero stays
    assert boot["price"] == Decimal("19.90") and str(boot["price"]) == "19.90"
    assert lace["price"] == Decimal("5.125")
    assert boot["active"] == 1 and boot["quantity"] == 5
    assert (boot["name[en]"], boot["name[fr]"]) == ("Boot", "Botte")
    assert (boot["manufacturer"], boot["manufacturer_source"]) == ("1", SHOP)
    assert boot["manufacturer_name"] == "Acme Brand"
    assert (boot["category_default"], boot["category_default_source"]) == ("2", SHOP)
    assert (boot["categories"], boot["categories_source"]) == ("2", SHOP)
    assert (boot["tags[en]"], boot["tags[fr]"]) == ("red", "rouge")
    assert boot["images"] == "https://img.test/1.jpg"
    assert boot["upc"] is None and boot["categorypath"] is None
    # A product keyed by its supplier still lists the shop's categories, with their source.
    assert (lace["supplier_reference"], lace["source"]) == ("ACME-2", "supplier:Acme")
    assert (lace["categories"], lace["categories_source"]) == ("2", SHOP)
    assert lace["manufacturer_name"] is None and lace["quantity"] is None


def test_categories_of_another_source_are_left_out_with_a_warning(catalog):
    db.session.add(CategoryProduct(id_category=1, id_product=1, position=1))
    identity.register(db.session.connection(), "supplier:Acme", "category", "HOME", 1)
    db.session.commit()
    with db.engine.connect() as conn:
        ctx = ExportContext.open(conn, SHOP)
        descriptor = REGISTRY["products"]
        (record,) = descriptor.load(ctx, [1])
        (row,) = flatten.flat_rows(descriptor, ctx, record)
    # The default category's source wins; the other category is named in a warning.
    assert (row["categories"], row["categories_source"]) == ("2", SHOP)
    assert len(ctx.warnings) == 1 and "product 1 (shop:testshop)" in ctx.warnings[0]


def test_rows_per_combination_give_final_prices_and_attributes(catalog):
    rows = rows_of("products", [1, 2], rows="combinations")
    assert [r["combination_reference"] for r in rows] == ["P-1-S", "P-1-M", None]
    small, medium, lace = rows
    assert small["reference"] == medium["reference"] == "P-1"
    assert medium["combination_price"] == Decimal("18.40")  # the final price: 19.90 - 1.50
    assert medium["combination_attributes"] == "Size:M"
    assert (small["combination_quantity"], medium["combination_quantity"]) == (2, 3)
    assert small["combination_default_on"] == 1
    # A product without combinations still has its row.
    assert lace["reference"] == "P-2" and lace["combination_supplier_reference"] is None


def test_a_standalone_combination_row_has_its_price_impact_and_product_link(catalog):
    small, medium = rows_of("combinations", [1, 2])
    assert medium["price"] == Decimal("-1.50")
    assert (medium["product"], medium["product_source"]) == ("1", SHOP)
    assert small["attributes"] == "Size:S" and small["quantity"] == 2


def test_tag_and_category_rows(catalog):
    assert rows_of("tags", [2]) == [
        {"supplier_reference": "2", "source": SHOP, "lang": "fr", "name": "rouge"}
    ]
    home, shoes = rows_of("categories", [1, 2])
    assert home["parent"] is None and home["is_root_category"] == 1
    assert (shoes["parent"], shoes["parent_source"], shoes["name[fr]"]) == ("1", SHOP, "Chaussures")


@pytest.mark.parametrize(
    "text, written",
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+33 6 12 34 56 78", "'+33 6 12 34 56 78"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("-", "'-"),
        ("-5", "-5"),
        ("-1.50", "-1.50"),
        ("-1,50", "-1,50"),
        ("+7", "+7"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_formula_cells_are_neutralised_but_plain_numbers_stay_numbers(text, written):
    assert neutralise(text) == written


@pytest.mark.parametrize(
    "fmt, entity, options, key",
    [
        ("csv", "products", {"separator": ":"}, "separator"),
        ("csv", "products", {"bom": "maybe"}, "bom"),
        ("csv", "products", {"fields": "reference,colour"}, "fields"),
        ("csv", "categories", {"rows": "combinations"}, "rows"),
        ("csv", "products", {"rows": "variants"}, "rows"),
        ("csv", "products", {"pretty": "true"}, "pretty"),
        ("xlsx", "categories", {"sheets": "categories,suppliers"}, "sheets"),
        ("xlsx", "products", {"sheets": "products,orders"}, "sheets"),
        ("json", "products", {"pretty": "very"}, "pretty"),
        ("json", "products", {"separator": ";"}, "separator"),
        ("jsonl", "products", {"pretty": "true"}, "pretty"),
    ],
)
def test_bad_options_name_the_option(fmt, entity, options, key):
    with pytest.raises(InvalidOption) as raised:
        writers.check_options(fmt, entity, options)
    assert raised.value.key == key
    if key == "fields":
        assert "colour" in str(raised.value)


def test_options_are_normalised():
    assert writers.check_options("csv", "products", {"separator": "TAB", "bom": "No"}) == {
        "separator": "tab",
        "bom": "false",
    }
    assert writers.check_options("csv", "products", {"fields": " reference , name "}) == {
        "fields": "reference,name"
    }
    assert writers.check_options("xlsx", "products", {"sheets": "suppliers,combinations"}) == {
        "sheets": "products,suppliers,combinations"
    }
    assert writers.check_options("json", "orders", {"pretty": "1"}) == {"pretty": "true"}


class UpperNames:
    """A field template: two renamed columns, one of them transformed."""

    def headers(self) -> list[str]:
        return ["Ref", "Title"]

    def apply(self, row: dict) -> list:
        return [row.get("reference"), (row.get("name[en]") or "").upper()]


def test_a_field_template_decides_the_header_and_the_cells(catalog):
    setup = WriterSetup(
        entity="products",
        root={"generator": "impexmod"},
        options={"bom": "false"},
        languages=LANGS,
        incremental=True,
        mapping=UpperNames(),
    )
    out = io.BytesIO()
    with db.engine.connect() as conn:
        ctx = ExportContext.open(conn, SHOP)
        descriptor = REGISTRY["products"]
        with writers.resolve_writer("csv", out, setup) as writer:
            for record in descriptor.load(ctx, [1]):
                writer.write_record(descriptor, ctx, record)
            writer.write_delete(descriptor, ("P-9", SHOP))
    rows = list(csv.reader(io.StringIO(out.getvalue().decode()), delimiter=";"))
    assert rows == [["Ref", "Title", "deleted"], ["P-1", "BOOT", ""], ["", "", "1"]]


def test_the_json_object_of_a_product_nests_its_relations(catalog):
    setup = WriterSetup(entity="products", root={"generator": "impexmod", "x": None})
    out = io.BytesIO()
    with db.engine.connect() as conn:
        ctx = ExportContext.open(conn, SHOP)
        descriptor = REGISTRY["products"]
        with writers.resolve_writer("json", out, setup) as writer:
            records = descriptor.load(ctx, [1])
            writer.prepare(descriptor, ctx, records)
            writer.write_record(descriptor, ctx, records[0])
    document = json.loads(out.getvalue())
    assert document["feed"] == {"generator": "impexmod"}
    (boot,) = document["products"]
    assert boot["price"] == "19.90" and boot["active"] is True and boot["upc"] is None
    assert boot["name"] == {"en": "Boot", "fr": "Botte"}
    assert boot["manufacturer"] == {"supplier_reference": "1", "source": SHOP, "name": "Acme Brand"}
    assert boot["tags"] == {"en": ["red"], "fr": ["rouge"]}
    assert boot["stock"] == {"quantity": 5} and boot["suppliers"] == []
    assert [c["price"] for c in boot["combinations"]] == ["19.90", "18.40"]
    size = boot["combinations"][1]["attribute_groups"][0]
    assert size["name"] == {"en": "Size", "fr": "Taille"}
    assert size["attributes"][0]["name"] == {"en": "M"}
