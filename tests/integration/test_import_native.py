# ruff: noqa: E501  (the fixtures are feeds, written as the reference shows them)
"""Every example of the native-format reference imports with its documented effect."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from impexmod.extensions import db
from impexmod.importing import Options, import_file
from impexmod.models import (
    Attribute,
    AttributeGroup,
    Category,
    CategoryLang,
    CategoryProduct,
    Combination,
    CombinationAttribute,
    EntityChange,
    Identity,
    Image,
    ImageLang,
    Language,
    Product,
    ProductLang,
    ProductTag,
    SpecificPrice,
    StockAvailable,
    Tag,
)

PRODUCT = """<advancedimporter>
  <product supplier-reference="P-1">
    <reference>REF-1</reference>
    <ean13>3760000000017</ean13>
    <name lang="en">Blue shirt</name>
    <name lang="fr">Chemise bleue</name>
    <description>Soft cotton</description>
    <price>10.5</price>
    <wholesale_price>4</wholesale_price>
    <active>1</active>
  </product>
</advancedimporter>"""


@pytest.fixture
def shop(app):
    """A shop with English and French and a root category."""
    db.session.add_all(
        [
            Language(id=1, iso_code="en", name="English"),
            Language(id=2, iso_code="fr", name="Français"),
        ]
    )
    home = Category(id_parent=None, level_depth=0, is_root_category=True)
    db.session.add(home)
    db.session.flush()
    db.session.add(CategoryLang(id_category=home.id, id_lang=1, name="Home", link_rewrite="home"))
    db.session.commit()
    return app


@pytest.fixture
def load(shop, tmp_path):
    """Import an XML string; returns the report (asserting it had no error unless told)."""

    def run(xml: str, ok: bool = True, **options):
        path = tmp_path / "feed.xml"
        path.write_text(xml)
        report = import_file(path, Options(**options))
        db.session.rollback()
        if ok:
            assert report.ok, [str(e) for e in report.errors]
        return report

    return run


def one(model, **where):
    return db.session.execute(select(model).filter_by(**where)).scalar_one()


def count(model, **where) -> int:
    return db.session.execute(select(func.count()).select_from(model).filter_by(**where)).scalar()


def test_a_supplier_reference_creates_once_then_updates(load):
    first = load(PRODUCT)
    assert first.totals()["created"] == 1
    product = one(Product, reference="REF-1")
    assert product.price == Decimal("10.5")
    assert one(ProductLang, id_product=product.id, id_lang=2).name == "Chemise bleue"
    # A value without lang applies to every language.
    assert one(ProductLang, id_product=product.id, id_lang=1).description == "Soft cotton"
    assert one(ProductLang, id_product=product.id, id_lang=2).description == "Soft cotton"
    key = one(Identity, entity_type="product", reference="P-1")
    assert key.local_id == product.id and key.source == "supplier:default"
    again = load(PRODUCT.replace("10.5", "12"))
    assert again.totals()["updated"] == 1 and count(Product) == 1
    assert one(Product, reference="REF-1").price == Decimal("12")
    unchanged = load(PRODUCT.replace("10.5", "12"))
    assert unchanged.totals()["unchanged"] == 1 and unchanged.totals()["updated"] == 0


def test_the_source_attribute_scopes_keys(load):
    load(PRODUCT.replace('supplier-reference="P-1"', 'supplier-reference="P-1" source="Acme"'))
    load(PRODUCT.replace('supplier-reference="P-1"', 'supplier-reference="P-1" source="shop:x"'))
    assert count(Product) == 2
    assert {k.source for k in db.session.query(Identity)} == {"supplier:Acme", "shop:x"}


def test_identifier_matches_an_existing_product_and_records_the_key(load, shop):
    product = Product(reference="REF-9", ean13="3760000000024", price=1)
    db.session.add(product)
    db.session.commit()
    feed = """<advancedimporter><product supplier-reference="K9" identifier="ean13">
      <ean13>3760000000024</ean13><price>7</price></product></advancedimporter>"""
    assert load(feed).totals()["updated"] == 1
    assert count(Product) == 1 and one(Product, id=product.id).price == Decimal("7")
    assert one(Identity, reference="K9").local_id == product.id
    # Later runs find it by its key alone.
    load(feed.replace("<ean13>3760000000024</ean13>", "").replace(' identifier="ean13"', ""))
    assert count(Product) == 1


def test_module_v1_external_reference_and_roots(load):
    load(
        PRODUCT.replace("advancedimporter>", "products>").replace(
            "supplier-reference", "external-reference"
        )
    )
    product = one(Product, reference="REF-1")
    load('<stocks><stock external-reference="P-1"><quantity>8</quantity></stock></stocks>')
    assert one(StockAvailable, id_product=product.id).quantity == 8


def test_writing_modes(load):
    created = load(
        PRODUCT.replace(
            '<product supplier-reference="P-1">', '<product supplier-reference="P-1" mode="update">'
        )
    )
    assert created.totals()["skipped"] == 1 and count(Product) == 0
    load(
        PRODUCT.replace(
            '<product supplier-reference="P-1">', '<product supplier-reference="P-1" mode="create">'
        )
    )
    again = load(
        PRODUCT.replace("10.5", "99").replace(
            '<product supplier-reference="P-1">', '<product supplier-reference="P-1" mode="create">'
        )
    )
    assert again.totals()["skipped"] == 1 and one(Product, reference="REF-1").price == Decimal(
        "10.5"
    )
    # Modes of the run, chosen independently: update only.
    report = load(PRODUCT.replace("P-1", "P-2").replace("REF-1", "REF-2"), create=False)
    assert report.totals()["skipped"] == 1 and count(Product) == 1


def test_delete_and_disable(load):
    load(PRODUCT)
    load(PRODUCT.replace("P-1", "P-2").replace("REF-1", "REF-2"))
    load('<advancedimporter><disable supplier-reference="P-2" type="product"/></advancedimporter>')
    assert one(Product, reference="REF-2").active is False
    report = load(
        '<advancedimporter><delete supplier-reference="P-1" type="product"/></advancedimporter>'
    )
    assert report.totals()["deleted"] == 1 and count(Product) == 1
    deleted = one(EntityChange, op="delete", entity_type="product")
    assert (deleted.reference, deleted.source) == ("P-1", "supplier:default")
    assert count(Identity, reference="P-1") == 0


def test_delete_missing_and_disable_missing(load):
    two = PRODUCT.replace("</advancedimporter>", "") + PRODUCT.replace("P-1", "P-2").replace(
        "REF-1", "REF-2"
    ).replace("<advancedimporter>", "")
    load(two.replace('supplier-reference="P-', 'source="Acme" supplier-reference="P-'))
    load(
        PRODUCT.replace("<advancedimporter>", '<advancedimporter disable-missing="Acme">').replace(
            'supplier-reference="P-1"', 'supplier-reference="P-1" source="Acme"'
        )
    )
    assert one(Product, reference="REF-2").active is False
    load(
        PRODUCT.replace("<advancedimporter>", '<advancedimporter delete-missing="Acme">').replace(
            'supplier-reference="P-1"', 'supplier-reference="P-1" source="Acme"'
        )
    )
    assert [p.reference for p in db.session.query(Product)] == ["REF-1"]
    refused = load('<advancedimporter delete-missing="a" disable-missing="a"/>', ok=False)
    assert "mutually exclusive" in refused.refused[0]


STOCK = """<advancedimporter>
  <stock mode="delta">
    <quantity>-2</quantity>
    <product supplier-reference="product">P-1</product>
  </stock>
  <stock>
    <quantity>10</quantity>
    <combination supplier-reference="combination">C-1</combination>
  </stock>
</advancedimporter>"""


def test_stock_set_and_delta_standalone_and_nested(load):
    load(
        PRODUCT.replace(
            "</product>",
            """<stock><quantity>5</quantity></stock>
      <combination supplier-reference="C-1"><reference>REF-1-S</reference><price>12.5</price>
        <stock><quantity>3</quantity></stock></combination></product>""",
        )
    )
    product = one(Product, reference="REF-1")
    combo = one(Combination, reference="REF-1-S")
    assert combo.price == Decimal("2")  # nested: final price 12.5, stored as the impact
    assert one(StockAvailable, id_product=product.id, id_product_attribute=0).quantity == 5
    assert one(StockAvailable, id_product_attribute=combo.id).quantity == 3
    load(STOCK)
    assert one(StockAvailable, id_product=product.id, id_product_attribute=0).quantity == 3
    assert one(StockAvailable, id_product_attribute=combo.id).quantity == 10
    load(STOCK)  # delta again, set again
    assert one(StockAvailable, id_product=product.id, id_product_attribute=0).quantity == 1
    by_ean = '<advancedimporter><stock><quantity>4</quantity><product identifier="ean13">3760000000017</product></stock></advancedimporter>'
    load(by_ean)
    assert one(StockAvailable, id_product=product.id, id_product_attribute=0).quantity == 4
    unknown = load(STOCK.replace(">P-1<", ">NOPE<"), ok=False)
    assert unknown.error_count == 1 and "NOPE" in unknown.errors[0].reason


def test_nested_categories_parent_links_and_category_paths(load):
    load("""<advancedimporter>
      <category supplier-reference="women"><name>Women</name>
        <category supplier-reference="dresses"><name lang="en">Dresses</name><name lang="fr">Robes</name></category>
      </category>
      <category supplier-reference="summer"><name>Summer</name>
        <id_parent supplier-reference="category">dresses</id_parent></category>
    </advancedimporter>""")
    women = one(CategoryLang, name="Women", id_lang=1).id_category
    dresses = one(CategoryLang, name="Dresses").id_category
    summer = one(CategoryLang, name="Summer", id_lang=1).id_category
    assert one(Category, id=dresses).id_parent == women
    assert one(Category, id=summer).id_parent == dresses
    assert one(CategoryLang, id_category=dresses, id_lang=2).name == "Robes"
    load(
        PRODUCT.replace(
            "</product>",
            """<category supplier-reference="women"><category supplier-reference="dresses"/></category>
      <categorypath separator=">">Women &gt; Dresses &gt; Summer</categorypath>
      <categorypath separator="/">Men / Shoes</categorypath></product>""",
        )
    )
    product = one(Product, reference="REF-1")
    linked = {
        c.id_category for c in db.session.query(CategoryProduct).filter_by(id_product=product.id)
    }
    shoes = one(CategoryLang, name="Shoes", id_lang=1).id_category
    assert linked == {women, shoes, summer}  # only the outer nested category; path leaves
    assert product.id_category_default == women
    assert one(CategoryLang, name="Summer", id_lang=1).id_category == summer  # path reused it


def test_combinations_with_attribute_groups_and_attributes(load):
    feed = PRODUCT.replace(
        "</product>",
        """
      <combination supplier-reference="C-S-RED"><reference>R-S-RED</reference><price>10.5</price>
        <attributeGroup supplier-reference="size"><is_color_group>0</is_color_group><group_type>select</group_type>
          <position>0</position><name>Size</name><public_name>Size</public_name>
          <attribute supplier-reference="s"><name>S</name><position>0</position></attribute></attributeGroup>
        <attributeGroup supplier-reference="color"><is_color_group>1</is_color_group><name>Color</name>
          <attribute supplier-reference="red"><name lang="en">Red</name><name lang="fr">Rouge</name></attribute></attributeGroup>
      </combination>
      <combination supplier-reference="C-M-RED"><reference>R-M-RED</reference><price>11</price>
        <attributeGroup supplier-reference="size"><name>Size</name><attribute supplier-reference="m"><name>M</name></attribute></attributeGroup>
        <attributeGroup supplier-reference="color"><name>Color</name><attribute supplier-reference="red"><name>Red</name></attribute></attributeGroup>
      </combination></product>""",
    )
    load(feed)
    assert count(AttributeGroup) == 2 and count(Attribute) == 3
    combo = one(Combination, reference="R-M-RED")
    assert combo.price == Decimal("0.5")
    assert count(CombinationAttribute, id_product_attribute=combo.id) == 2
    assert load(feed).totals()["updated"] == 0
    # Standalone, a combination gives its price impact.
    load("""<advancedimporter><combination supplier-reference="C-M-RED"><price>3</price>
      <id_product supplier-reference="product">P-1</id_product></combination></advancedimporter>""")
    assert one(Combination, reference="R-M-RED").price == Decimal("3")


def test_specific_prices_nested_and_standalone(load):
    load(
        PRODUCT.replace(
            "</product>",
            """<specificPrice supplier-reference="SP-1">
      <id_group>0</id_group><price>-1</price><reduction>0.1</reduction>
      <reduction_type>percentage</reduction_type><from_quantity>2</from_quantity>
      <from>2024-01-01 00:00:00</from><to>2024-12-31 23:59:59</to></specificPrice></product>""",
        )
    )
    sp = one(SpecificPrice, from_quantity=2)
    assert sp.reduction_type == "percentage" and sp.reduction == Decimal("0.1")
    assert str(sp.date_to) == "2024-12-31 23:59:59"
    load("""<advancedimporter><specificPrice supplier-reference="SP-2">
      <id_product supplier-reference="product">P-1</id_product><price>8</price>
      <reduction_type>amount</reduction_type></specificPrice></advancedimporter>""")
    assert count(SpecificPrice) == 2


def test_images_by_url_tags_and_remove_missing(load):
    load(
        PRODUCT.replace(
            "</product>",
            """<tag lang="en">summer</tag><tag lang="fr">été</tag><tag>sale</tag>
      <image><url>https://cdn.example/a.jpg</url><legend lang="en">Front</legend><cover>1</cover></image>
      <image><url>https://cdn.example/b.jpg</url></image></product>""",
        )
    )
    product = one(Product, reference="REF-1")
    assert [i.url for i in db.session.query(Image).order_by(Image.position)] == [
        "https://cdn.example/a.jpg",
        "https://cdn.example/b.jpg",
    ]
    assert one(ImageLang, id_lang=1).legend == "Front"
    assert count(ProductTag, id_product=product.id) == 4  # summer, été, sale in en and fr
    load(
        PRODUCT.replace("<product ", '<product remove-missing-tags="yes" ').replace(
            "</product>", "<tag>sale</tag></product>"
        )
    )
    assert count(ProductTag, id_product=product.id) == 2
    assert count(Tag) == 4  # tags stay; only the links go


def test_remove_missing_combinations_and_categories(load):
    load(
        PRODUCT.replace(
            "</product>",
            """<category supplier-reference="c1"><name>One</name></category>
      <category supplier-reference="c2"><name>Two</name></category>
      <combination supplier-reference="C-1"><reference>A</reference></combination>
      <combination supplier-reference="C-2"><reference>B</reference></combination></product>""",
        )
    )
    product = one(Product, reference="REF-1")
    assert count(Combination) == 2 and count(CategoryProduct, id_product=product.id) == 2
    load(
        PRODUCT.replace(
            "<product ",
            '<product remove-missing-combinations="yes" remove-missing-categories="yes" ',
        ).replace(
            "</product>",
            """<category supplier-reference="c2"/>
         <combination supplier-reference="C-2"><reference>B</reference></combination></product>""",
        )
    )
    assert [c.reference for c in db.session.query(Combination)] == ["B"]
    assert count(CategoryProduct, id_product=product.id) == 1
    assert count(EntityChange, entity_type="combination", op="delete") == 1


def test_tax_included_prices(load):
    load(
        PRODUCT.replace(
            "<price>10.5</price>",
            '<price tax="include">12</price><id_tax_rules_group>1</id_tax_rules_group>',
        )
    )
    assert one(Product, reference="REF-1").price == Decimal("10")
    bad = load(
        PRODUCT.replace(
            "<price>10.5</price>",
            '<price tax="include">12</price><id_tax_rules_group>77</id_tax_rules_group>',
        ),
        ok=False,
    )
    assert bad.error_count == 1 and "77" in bad.errors[0].reason


def test_a_bad_entry_leaves_nothing_half_written(load):
    feed = PRODUCT.replace(
        "</product>",
        """<combination supplier-reference="C-1"><reference>A</reference>
      <price>not a number</price></combination></product>""",
    ).replace("</advancedimporter>", "") + PRODUCT.replace("P-1", "P-2").replace(
        "REF-1", "REF-2"
    ).replace("<advancedimporter>", "")
    report = load(feed, ok=False)
    assert report.error_count == 1
    error = report.errors[0]
    assert (
        error.path == "/advancedimporter/product[1]/combination[1]/price" and error.field == "price"
    )
    assert error.line == 12 and "not a number" in error.reason
    assert [p.reference for p in db.session.query(Product)] == ["REF-2"]
    # A combination whose product is unknown fails alone; the chunk's other entries are written.
    late = load(
        """<advancedimporter><combination supplier-reference="X"><id_product supplier-reference="product">GONE</id_product></combination>
      <category supplier-reference="c9"><name>Nine</name></category></advancedimporter>""",
        ok=False,
    )
    assert late.error_count == 1 and count(CategoryLang, name="Nine") == 2


def test_dry_run_writes_nothing_and_reports_a_diff(load):
    load(PRODUCT)
    report = load(PRODUCT.replace("10.5", "11").replace("Blue shirt", "Navy shirt"), dry_run=True)
    assert report.totals()["updated"] == 1
    (diff,) = report.diffs
    assert diff["changes"]["price"] == ["10.500000", "11"]
    assert diff["changes"]["name[en]"] == ["Blue shirt", "Navy shirt"]
    assert one(Product, reference="REF-1").price == Decimal("10.5")
    created = load(PRODUCT.replace("P-1", "P-3").replace("REF-1", "REF-3"), dry_run=True)
    assert created.totals()["created"] == 1 and count(Product) == 1
    assert count(EntityChange, entity_type="product") == 1  # the first real import only


def test_one_text_in_fields_of_different_types_and_bad_values_each_time(load):
    # Converted values are kept per field: "1" is a number, a yes/no and a price, and a bad
    # value is an error in every entry that has it, not only the first.
    feed = """<advancedimporter>
      <product supplier-reference="V-1"><reference>V-1</reference><name>One</name>
        <price>1</price><active>1</active><id_tax_rules_group>1</id_tax_rules_group><weight>0.000000</weight></product>
      <product supplier-reference="V-2"><reference>V-2</reference><name>Two</name>
        <price>1</price><active>0</active><id_tax_rules_group>2</id_tax_rules_group><weight>1</weight></product>
      <product supplier-reference="V-3"><name>Three</name><price>abc</price></product>
      <product supplier-reference="V-4"><name>Four</name><price>abc</price></product>
      <product supplier-reference="V-5"><name>Five</name><active>maybe</active></product>
      <product supplier-reference="V-6"><name>Six</name><active>maybe</active></product>
    </advancedimporter>"""
    report = load(feed, ok=False)
    assert sorted((e.path, e.field) for e in report.errors) == [
        ("/advancedimporter/product[3]/price", "price"),
        ("/advancedimporter/product[4]/price", "price"),
        ("/advancedimporter/product[5]/active", "active"),
        ("/advancedimporter/product[6]/active", "active"),
    ]
    first, second = one(Product, reference="V-1"), one(Product, reference="V-2")
    assert (first.price, first.active, first.id_tax_rules_group) == (Decimal("1"), True, 1)
    assert (second.price, second.active, second.id_tax_rules_group) == (Decimal("1"), False, 2)
    assert (first.weight, second.weight) == (Decimal("0"), Decimal("1"))
    assert count(Product) == 2


def test_new_images_legends_in_every_language_or_their_own(load):
    feed = PRODUCT.replace(
        "</product>",
        """<image><url>https://cdn.example/all.jpg</url><legend>All</legend></image>
      <image><url>https://cdn.example/fr.jpg</url><legend>All</legend><legend lang="fr">Face</legend></image>
      <image><url>https://cdn.example/en.jpg</url><legend lang="en">Front</legend><legend lang="xx">?</legend></image>
      <image><url>https://cdn.example/none.jpg</url></image></product>""",
    )
    load(feed)
    legends = {
        (url, id_lang): legend
        for url, id_lang, legend in db.session.execute(
            select(Image.url, ImageLang.id_lang, ImageLang.legend).join(
                ImageLang, ImageLang.id_image == Image.id
            )
        )
    }
    cdn = "https://cdn.example/"
    assert legends == {
        (cdn + "all.jpg", 1): "All",
        (cdn + "all.jpg", 2): "All",
        (cdn + "fr.jpg", 1): "All",
        (cdn + "fr.jpg", 2): "Face",
        (cdn + "en.jpg", 1): "Front",
    }
    # Existing images: legends compared and updated (as the image's, not the product's).
    load(feed.replace('lang="fr">Face', 'lang="fr">Dos').replace("Front", "Devant"))
    assert one(ImageLang, id_lang=2, legend="Dos") and one(ImageLang, id_lang=1, legend="Devant")
    assert count(ImageLang) == 5
