"""Entity descriptors: what each entity looks like in a native feed, and the feed schema."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from lxml import etree
from sqlalchemy import event, select

from impexmod.catalog import identity
from impexmod.entities import REGISTRY, ExportContext
from impexmod.extensions import db
from impexmod.models import (
    Address,
    Attribute,
    AttributeGroup,
    AttributeGroupLang,
    AttributeLang,
    Category,
    CategoryLang,
    CategoryProduct,
    Combination,
    CombinationAttribute,
    CombinationImage,
    Customer,
    Image,
    ImageLang,
    Language,
    Manufacturer,
    Order,
    OrderDetail,
    OrderHistory,
    OrderState,
    Product,
    ProductLang,
    ProductTag,
    SpecificPrice,
    StockAvailable,
    Tag,
)
from impexmod.schema import FeedInvalid, is_valid, validate

SHOP = "shop:testshop"
ADDED = datetime(2024, 1, 2, 3, 4, 5)
UPDATED = datetime(2024, 1, 3, 3, 4, 5)
STAMPS = {"date_add": ADDED, "date_upd": UPDATED}
DATES = "<date_add>2024-01-02 03:04:05</date_add><date_upd>2024-01-03 03:04:05</date_upd>"


# ------------------------------------------------------------------------------- the catalog


def _add(*levels: list) -> None:
    # One flush per level: parents exist before the rows that reference them.
    for level in levels:
        db.session.add_all(level)
        db.session.flush()


@pytest.fixture
def catalog(app):
    """A tiny catalog in English and French, with a few keys registered by other sources."""
    _add(
        [
            Language(id=1, iso_code="en", name="English"),
            Language(id=2, iso_code="fr", name="Français"),
            Manufacturer(id=1, name="Acme Works", **STAMPS),
            OrderState(id=1, name="Awaiting payment"),
            OrderState(id=2, name="Payment accepted", paid=True),
            AttributeGroup(id=1, is_color_group=False, group_type="select", position=0),
            AttributeGroup(id=2, is_color_group=True, group_type="color", position=1),
        ],
        [Category(id=1, level_depth=0, position=0, **STAMPS)],
        [Category(id=2, id_parent=1, level_depth=1, is_root_category=True, **STAMPS)],
        [Category(id=3, id_parent=2, level_depth=2, position=1, active=False, **STAMPS)],
        [
            CategoryLang(id_category=1, id_lang=1, name="Root", link_rewrite="root"),
            CategoryLang(id_category=1, id_lang=2, name="Racine", link_rewrite="racine"),
            CategoryLang(
                id_category=2, id_lang=1, name="Home", description="Hi", link_rewrite="home"
            ),
            CategoryLang(
                id_category=2,
                id_lang=2,
                name="Accueil",
                description="Salut",
                link_rewrite="accueil",
            ),
            CategoryLang(id_category=3, id_lang=1, name="Clothes", link_rewrite="clothes"),
            CategoryLang(id_category=3, id_lang=2, name="Vêtements", link_rewrite="vetements"),
            AttributeGroupLang(id_attribute_group=1, id_lang=1, name="Size", public_name="Size"),
            AttributeGroupLang(
                id_attribute_group=1, id_lang=2, name="Taille", public_name="Taille"
            ),
            AttributeGroupLang(id_attribute_group=2, id_lang=1, name="Color", public_name="Color"),
            AttributeGroupLang(
                id_attribute_group=2, id_lang=2, name="Couleur", public_name="Couleur"
            ),
            Attribute(id=1, id_attribute_group=1, position=0),
            Attribute(id=2, id_attribute_group=2, position=0, color="#FF0000"),
            Tag(id=1, id_lang=1, name="red"),
            Tag(id=2, id_lang=2, name="rouge"),
            Product(
                id=1,
                reference="TS-1",
                ean13="1234567890123",
                price=Decimal("19.9"),
                wholesale_price=Decimal("8"),
                weight=Decimal("0.3"),
                id_manufacturer=1,
                id_category_default=3,
                **STAMPS,
            ),
            Product(id=2, reference="MUG-1", price=Decimal("7.5"), **STAMPS),
            Customer(
                id=1,
                email="ada@example.com",
                firstname="Ada",
                lastname="Lovelace",
                id_lang=2,
                newsletter=True,
                **STAMPS,
            ),
            Customer(id=2, email="bob@example.com", firstname="Bob", lastname="Smith", **STAMPS),
        ],
        [
            AttributeLang(id_attribute=1, id_lang=1, name="M"),
            AttributeLang(id_attribute=1, id_lang=2, name="M"),
            AttributeLang(id_attribute=2, id_lang=1, name="Red"),
            AttributeLang(id_attribute=2, id_lang=2, name="Rouge"),
            ProductLang(
                id_product=1,
                id_lang=1,
                name="T-shirt",
                description="<p>Soft</p>",
                link_rewrite="t-shirt",
            ),
            ProductLang(
                id_product=1,
                id_lang=2,
                name="Tee-shirt",
                description="<p>Doux</p>",
                link_rewrite="tee-shirt",
            ),
            ProductLang(id_product=2, id_lang=1, name="Mug", link_rewrite="mug"),
            ProductLang(id_product=2, id_lang=2, name="Tasse", link_rewrite="tasse"),
            CategoryProduct(id_category=3, id_product=1, position=1),
            CategoryProduct(id_category=2, id_product=1, position=0),
            ProductTag(id_product=1, id_tag=2),
            ProductTag(id_product=1, id_tag=1),
            Image(id=1, id_product=1, url="https://img.example/ts-1.jpg", position=0, cover=True),
            Combination(
                id=1, id_product=1, reference="TS-1-M-RED", price=Decimal("2"), default_on=True
            ),
            Combination(id=2, id_product=2, price=Decimal("-0.5"), wholesale_price=Decimal("1")),
            SpecificPrice(
                id=1, id_product=1, reduction=Decimal("0.1"), reduction_type="percentage"
            ),
            Address(
                id=1,
                id_customer=1,
                firstname="Ada",
                lastname="Lovelace",
                address1="1 rue de Rivoli",
                postcode="75001",
                city="Paris",
                phone="+33 1 00 00 00 00",
                **STAMPS,
            ),
            Address(
                id=2,
                id_customer=1,
                alias="Office",
                company="Analytical Engines",
                firstname="Ada",
                lastname="Lovelace",
                address1="12 St James's Square",
                address2="2nd floor",
                postcode="SW1Y 4LB",
                city="London",
                country_iso="GB",
                **STAMPS,
            ),
        ],
        [
            ImageLang(id_image=1, id_lang=1, legend="Front"),
            ImageLang(id_image=1, id_lang=2, legend="Devant"),
            CombinationAttribute(id_attribute=2, id_product_attribute=1),
            CombinationAttribute(id_attribute=1, id_product_attribute=1),
            CombinationImage(id_product_attribute=1, id_image=1),
            SpecificPrice(
                id=2,
                id_product=1,
                id_product_attribute=1,
                id_group=3,
                price=Decimal("15"),
                date_from=datetime(2024, 6, 1),
                date_to=datetime(2024, 6, 30, 23, 59, 59),
            ),
            StockAvailable(id=1, id_product=1, id_product_attribute=0, quantity=5),
            StockAvailable(id=2, id_product=1, id_product_attribute=1, quantity=3),
            StockAvailable(id=3, id_product=2, id_product_attribute=0, quantity=-1),
            Order(
                id=1,
                reference="XKBKNABJK",
                id_customer=1,
                id_address_delivery=1,
                id_address_invoice=2,
                current_state=2,
                payment="Bank wire",
                total_products=Decimal("51.3"),
                total_shipping=Decimal("4.9"),
                total_paid_tax_excl=Decimal("56.2"),
                total_paid_tax_incl=Decimal("67.44"),
                **STAMPS,
            ),
            Order(id=2, reference="YLCLOBKCL", current_state=1, currency_iso="USD", **STAMPS),
        ],
        [
            OrderDetail(
                id=1,
                id_order=1,
                product_id=1,
                product_attribute_id=1,
                product_name="T-shirt - Size : M, Color : Red",
                product_reference="TS-1-M-RED",
                product_quantity=2,
                unit_price_tax_excl=Decimal("21.9"),
                unit_price_tax_incl=Decimal("26.28"),
            ),
            OrderDetail(
                id=2,
                id_order=1,
                product_id=2,
                product_name="Mug",
                product_reference="MUG-1",
                unit_price_tax_excl=Decimal("7.5"),
                unit_price_tax_incl=Decimal("9"),
            ),
            # The product of this line was deleted since: lines keep no foreign key.
            OrderDetail(id=3, id_order=1, product_id=99, product_name="Old poster"),
            OrderHistory(id=2, id_order=1, id_order_state=2, date_add=datetime(2024, 2, 1, 10, 5)),
            OrderHistory(id=1, id_order=1, id_order_state=1, date_add=datetime(2024, 2, 1, 10)),
        ],
    )
    conn = db.session.connection()
    identity.register(conn, "supplier:Acme", "product", "P-ACME-1", 2)
    identity.register(conn, "supplier:Acme", "category", "CAT-CLOTHES", 3)
    identity.register(conn, "supplier:Acme", "combination", "ACME-TS-M-RED", 1)
    identity.register(conn, "shop:partner", "customer", "C-77", 1)
    db.session.commit()


# ------------------------------------------------------------------------------- helpers


def export(name: str, ids: list[int] | None = None) -> etree._Element:
    """A full feed of one descriptor, built as the runner does, and checked against the XSD."""
    descriptor = REGISTRY[name]
    with db.engine.connect() as conn:
        ctx = ExportContext.open(conn, SHOP)
        if ids is None:
            id_col = descriptor.table.c.id
            ids = conn.execute(select(id_col).order_by(id_col)).scalars().all()
        root = etree.Element("advancedimporter", source=SHOP, entity=name, strategy="full")
        for record in descriptor.load(ctx, ids):
            assert descriptor.record_id(record) in ids
            root.append(descriptor.build(ctx, record))
    validate(etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="utf-8"))
    return root


def canon(xml: str | etree._Element) -> str:
    """Canonical XML, so that ``<a/>``, ``<a></a>`` and indentation compare equal."""
    if isinstance(xml, str):
        xml = etree.fromstring(xml, etree.XMLParser(remove_blank_text=True))
    return etree.tostring(xml, method="c14n").decode()


def assert_feed(root: etree._Element, *expected: str) -> None:
    assert [canon(el) for el in root] == [canon(x) for x in expected]


def key(ref: str | int, source: str = SHOP) -> str:
    return f'supplier-reference="{ref}" source="{source}"'


def lang(tag: str, en: str, fr: str) -> str:
    return f'<{tag} lang="en">{en}</{tag}><{tag} lang="fr">{fr}</{tag}>'


def link(tag: str, kind: str, ref: str | int, source: str = SHOP) -> str:
    return f'<{tag} supplier-reference="{kind}" source="{source}">{ref}</{tag}>'


ACME = "supplier:Acme"
ZERO = "0.000000"
NO_IDS = "<reference>{}</reference><ean13>{}</ean13><upc/><isbn/><mpn/>"
SIZE_GROUP = f"""
<attributeGroup {key(1)}>
  <is_color_group>0</is_color_group><group_type>select</group_type><position>0</position>
  {lang("name", "Size", "Taille")}{lang("public_name", "Size", "Taille")}
  <attribute {key(1)}>{lang("name", "M", "M")}<position>0</position><color/></attribute>
</attributeGroup>"""
COLOR_GROUP = f"""
<attributeGroup {key(2)}>
  <is_color_group>1</is_color_group><group_type>color</group_type><position>1</position>
  {lang("name", "Color", "Couleur")}{lang("public_name", "Color", "Couleur")}
  <attribute {key(2)}>{lang("name", "Red", "Rouge")}<position>0</position>
    <color>#FF0000</color></attribute>
</attributeGroup>"""
PRICE_1 = """<id_shop>0</id_shop><id_currency>0</id_currency><id_country>0</id_country>
<id_group>0</id_group><id_customer>0</id_customer><price>-1.000000</price>
<from_quantity>1</from_quantity><reduction>0.100000</reduction><reduction_tax>1</reduction_tax>
<reduction_type>percentage</reduction_type><from/><to/>"""
PRICE_2 = f"""{link("id_product_attribute", "combination", "ACME-TS-M-RED", ACME)}
<id_shop>0</id_shop><id_currency>0</id_currency><id_country>0</id_country>
<id_group>3</id_group><id_customer>0</id_customer><price>15.000000</price>
<from_quantity>1</from_quantity><reduction>{ZERO}</reduction><reduction_tax>1</reduction_tax>
<reduction_type>amount</reduction_type>
<from>2024-06-01 00:00:00</from><to>2024-06-30 23:59:59</to>"""


def combination(price: str, product_link: str = "") -> str:
    return f"""
<combination {key("ACME-TS-M-RED", ACME)}>
  {NO_IDS.format("TS-1-M-RED", "")}<price>{price}</price>
  <wholesale_price>{ZERO}</wholesale_price><ecotax>{ZERO}</ecotax><weight>{ZERO}</weight>
  <default_on>1</default_on>{product_link}{SIZE_GROUP}{COLOR_GROUP}
  <stock><quantity>3</quantity></stock>
  <image><url>https://img.example/ts-1.jpg</url></image>
</combination>"""


# A combination with no attributes, stock or images: only its fields.
MUG_BIG = f"""
<combination {key(2)}>
  {NO_IDS.format("", "")}<price>{{price}}</price><wholesale_price>1.000000</wholesale_price>
  <ecotax>{ZERO}</ecotax><weight>{ZERO}</weight><default_on>0</default_on>{{product_link}}
</combination>"""


def address(ref: int, body: str, role: str = "") -> str:
    attr = f' role="{role}"' if role else ""
    return f"<address {key(ref)}{attr}>{body}{DATES}</address>"


HOME = """<alias>Home</alias><company/><firstname>Ada</firstname><lastname>Lovelace</lastname>
<address1>1 rue de Rivoli</address1><address2/><postcode>75001</postcode><city>Paris</city>
<country_iso>FR</country_iso><phone>+33 1 00 00 00 00</phone>"""
OFFICE = """<alias>Office</alias><company>Analytical Engines</company><firstname>Ada</firstname>
<lastname>Lovelace</lastname><address1>12 St James's Square</address1>
<address2>2nd floor</address2><postcode>SW1Y 4LB</postcode><city>London</city>
<country_iso>GB</country_iso><phone/>"""


# ------------------------------------------------------------------------------- descriptors


def test_registry_order_and_contract():
    assert list(REGISTRY) == [
        "products",
        "combinations",
        "categories",
        "tags",
        "specific_prices",
        "stock",
        "orders",
        "customers",
    ]
    assert [d.element for d in REGISTRY.values()] == [
        "product",
        "combination",
        "category",
        "tag",
        "specificPrice",
        "stock",
        "order",
        "customer",
    ]
    assert [d.kind for d in REGISTRY.values()] == [
        "product",
        "combination",
        "category",
        "tag",
        "specific_price",
        "stock",
        "order",
        "customer",
    ]
    assert [n for n, d in REGISTRY.items() if not d.emits_deletes] == ["stock"]
    assert all("id" in d.table.c for d in REGISTRY.values())


def test_products(catalog):
    assert_feed(
        export("products"),
        f"""
<product {key(1)}>
  {NO_IDS.format("TS-1", "1234567890123")}
  {lang("name", "T-shirt", "Tee-shirt")}
  {lang("description", "&lt;p&gt;Soft&lt;/p&gt;", "&lt;p&gt;Doux&lt;/p&gt;")}
  {lang("description_short", "", "")}{lang("link_rewrite", "t-shirt", "tee-shirt")}
  <price>19.900000</price><wholesale_price>8.000000</wholesale_price><ecotax>{ZERO}</ecotax>
  <weight>0.300000</weight><width>{ZERO}</width><height>{ZERO}</height><depth>{ZERO}</depth>
  <active>1</active><condition>new</condition><visibility>both</visibility>
  <id_tax_rules_group>1</id_tax_rules_group>
  {link("id_manufacturer", "manufacturer", 1)}
  {link("id_category_default", "category", "CAT-CLOTHES", ACME)}
  {DATES}
  <category {key(2)}/><category {key("CAT-CLOTHES", ACME)}/>
  <tag lang="en">red</tag><tag lang="fr">rouge</tag>
  <stock><quantity>5</quantity></stock>
  <image><url>https://img.example/ts-1.jpg</url>{lang("legend", "Front", "Devant")}
    <position>0</position><cover>1</cover></image>
  <specificPrice {key(1)}>{PRICE_1}</specificPrice>
  <specificPrice {key(2)}>{PRICE_2}</specificPrice>
  {combination("21.900000")}
</product>""",
        f"""
<product {key("P-ACME-1", ACME)}>
  {NO_IDS.format("MUG-1", "")}
  {lang("name", "Mug", "Tasse")}{lang("description", "", "")}
  {lang("description_short", "", "")}{lang("link_rewrite", "mug", "tasse")}
  <price>7.500000</price><wholesale_price>{ZERO}</wholesale_price><ecotax>{ZERO}</ecotax>
  <weight>{ZERO}</weight><width>{ZERO}</width><height>{ZERO}</height><depth>{ZERO}</depth>
  <active>1</active><condition>new</condition><visibility>both</visibility>
  <id_tax_rules_group>1</id_tax_rules_group>
  {DATES}
  <stock><quantity>-1</quantity></stock>
  {MUG_BIG.format(price="7.000000", product_link="")}
</product>""",
    )


def test_combinations(catalog):
    assert_feed(
        export("combinations"),
        combination("2.000000", link("id_product", "product", 1)),
        MUG_BIG.format(
            price="-0.500000", product_link=link("id_product", "product", "P-ACME-1", ACME)
        ),
    )


def test_categories(catalog):
    flags = "<active>{}</active><position>{}</position><level_depth>{}</level_depth>"
    assert_feed(
        export("categories"),
        f"""
<category {key(1)}>
  {lang("name", "Root", "Racine")}{lang("description", "", "")}
  {lang("link_rewrite", "root", "racine")}
  {flags.format(1, 0, 0)}<is_root_category>0</is_root_category>{DATES}
</category>""",
        f"""
<category {key(2)}>
  {lang("name", "Home", "Accueil")}{lang("description", "Hi", "Salut")}
  {lang("link_rewrite", "home", "accueil")}
  {flags.format(1, 0, 1)}<is_root_category>1</is_root_category>
  {link("id_parent", "category", 1)}{DATES}
</category>""",
        f"""
<category {key("CAT-CLOTHES", ACME)}>
  {lang("name", "Clothes", "Vêtements")}{lang("description", "", "")}
  {lang("link_rewrite", "clothes", "vetements")}
  {flags.format(0, 1, 2)}<is_root_category>0</is_root_category>
  {link("id_parent", "category", 2)}{DATES}
</category>""",
    )


def test_tags(catalog):
    assert_feed(
        export("tags"),
        f'<tag {key(1)}><name lang="en">red</name></tag>',
        f'<tag {key(2)}><name lang="fr">rouge</name></tag>',
    )


def test_specific_prices(catalog):
    product = link("id_product", "product", 1)
    assert_feed(
        export("specific_prices"),
        f"<specificPrice {key(1)}>{product}{PRICE_1}</specificPrice>",
        f"<specificPrice {key(2)}>{product}{PRICE_2}</specificPrice>",
    )


def test_stock(catalog):
    assert_feed(
        export("stock"),
        f'<stock {key(1)} mode="set"><quantity>5</quantity>{link("product", "product", 1)}</stock>',
        f"""<stock {key(2)} mode="set"><quantity>3</quantity>
            {link("combination", "combination", "ACME-TS-M-RED", ACME)}</stock>""",
        f"""<stock {key(3)} mode="set"><quantity>-1</quantity>
            {link("product", "product", "P-ACME-1", ACME)}</stock>""",
    )


def state(tag: str, name: str) -> str:
    return f'<{tag} identifier="name" type="orderState">{name}</{tag}>'


def test_orders(catalog):
    assert_feed(
        export("orders"),
        f"""
<order {key(1)}>
  <reference>XKBKNABJK</reference>
  {link("id_customer", "customer", "C-77", "shop:partner")}
  {state("current_state", "Payment accepted")}
  <payment>Bank wire</payment><currency_iso>EUR</currency_iso>
  <total_products>51.300000</total_products><total_shipping>4.900000</total_shipping>
  <total_paid_tax_excl>56.200000</total_paid_tax_excl>
  <total_paid_tax_incl>67.440000</total_paid_tax_incl>
  {DATES}
  {address(1, HOME, "delivery")}{address(2, OFFICE, "invoice")}
  <order_detail>
    {link("product_id", "product", 1)}
    {link("product_attribute_id", "combination", "ACME-TS-M-RED", ACME)}
    <product_name>T-shirt - Size : M, Color : Red</product_name>
    <product_reference>TS-1-M-RED</product_reference><product_quantity>2</product_quantity>
    <unit_price_tax_excl>21.900000</unit_price_tax_excl>
    <unit_price_tax_incl>26.280000</unit_price_tax_incl>
  </order_detail>
  <order_detail>
    {link("product_id", "product", "P-ACME-1", ACME)}
    <product_name>Mug</product_name><product_reference>MUG-1</product_reference>
    <product_quantity>1</product_quantity><unit_price_tax_excl>7.500000</unit_price_tax_excl>
    <unit_price_tax_incl>9.000000</unit_price_tax_incl>
  </order_detail>
  <order_detail>
    {link("product_id", "product", 99)}
    <product_name>Old poster</product_name><product_reference/>
    <product_quantity>1</product_quantity><unit_price_tax_excl>{ZERO}</unit_price_tax_excl>
    <unit_price_tax_incl>{ZERO}</unit_price_tax_incl>
  </order_detail>
  <order_history>{state("id_order_state", "Awaiting payment")}
    <date_add>2024-02-01 10:00:00</date_add></order_history>
  <order_history>{state("id_order_state", "Payment accepted")}
    <date_add>2024-02-01 10:05:00</date_add></order_history>
</order>""",
        f"""
<order {key(2)}>
  <reference>YLCLOBKCL</reference>{state("current_state", "Awaiting payment")}
  <payment/><currency_iso>USD</currency_iso>
  <total_products>{ZERO}</total_products><total_shipping>{ZERO}</total_shipping>
  <total_paid_tax_excl>{ZERO}</total_paid_tax_excl>
  <total_paid_tax_incl>{ZERO}</total_paid_tax_incl>
  {DATES}
</order>""",
    )


def test_customers(catalog):
    assert_feed(
        export("customers"),
        f"""
<customer {key("C-77", "shop:partner")}>
  <email>ada@example.com</email><firstname>Ada</firstname><lastname>Lovelace</lastname>
  <id_lang identifier="iso_code" type="language">fr</id_lang>
  <active>1</active><newsletter>1</newsletter>{DATES}
  {address(1, HOME)}{address(2, OFFICE)}
</customer>""",
        f"""
<customer {key(2)}>
  <email>bob@example.com</email><firstname>Bob</firstname><lastname>Smith</lastname>
  <active>1</active><newsletter>0</newsletter>{DATES}
</customer>""",
    )


@pytest.mark.parametrize("name", list(REGISTRY))
def test_load_skips_missing_ids_and_keeps_id_order(catalog, name):
    descriptor = REGISTRY[name]
    with db.engine.connect() as conn:
        ids = conn.execute(select(descriptor.table.c.id)).scalars().all()
        ctx = ExportContext.open(conn, SHOP)
        records = descriptor.load(ctx, [999, *reversed(ids)])
        assert [descriptor.record_id(r) for r in records] == sorted(ids)
        assert descriptor.load(ctx, [999]) == []


def test_registered_key_is_written_with_its_source(catalog):
    with db.engine.begin() as conn:
        identity.register(conn, "supplier:Acme", "tag", "TAG-RED", 1)
        identity.register(conn, "supplier:Acme", "stock", "STOCK-TS-1", 1)
    tags = export("tags")
    assert (tags[0].get("supplier-reference"), tags[0].get("source")) == ("TAG-RED", ACME)
    assert (tags[1].get("supplier-reference"), tags[1].get("source")) == ("2", SHOP)
    stock = export("stock")
    assert stock[0].attrib == {"supplier-reference": "STOCK-TS-1", "source": ACME, "mode": "set"}
    assert (stock[2].find("product").text, stock[2].find("product").get("source")) == (
        "P-ACME-1",
        ACME,
    )


def test_attribute_created_during_an_export_is_found(catalog):
    combinations = REGISTRY["combinations"]
    with db.engine.connect() as conn:
        ctx = ExportContext.open(conn, SHOP)
        for record in combinations.load(ctx, [1]):
            combinations.build(ctx, record)  # caches the attribute catalog
        conn.rollback()
        _add(
            [Attribute(id=3, id_attribute_group=1, position=1)],
            [
                AttributeLang(id_attribute=3, id_lang=1, name="L"),
                CombinationAttribute(id_attribute=3, id_product_attribute=2),
            ],
        )
        db.session.commit()
        [record] = combinations.load(ctx, [2])
        el = combinations.build(ctx, record)
    assert el.find("attributeGroup/attribute/name").text == "L"


def _queries(fn) -> tuple[int, int, set[str]]:
    """Relation queries ``fn`` runs, key look-ups it runs, and the kinds it looks keys up for."""
    relations, lookups, kinds = 0, 0, set()

    def on_execute(_conn, _cursor, statement, parameters, *_rest):
        nonlocal relations, lookups
        if "FROM identity" in statement:
            lookups += 1
            values = parameters.values() if isinstance(parameters, dict) else parameters
            kinds.update(v for v in values if isinstance(v, str))
        else:
            relations += 1

    event.listen(db.engine, "before_cursor_execute", on_execute)
    try:
        fn()
    finally:
        event.remove(db.engine, "before_cursor_execute", on_execute)
    return relations, lookups, kinds


@pytest.mark.parametrize("name", list(REGISTRY))
def test_queries_per_chunk_do_not_grow_with_entities(catalog, name):
    descriptor = REGISTRY[name]
    with db.engine.connect() as conn:
        ids = conn.execute(select(descriptor.table.c.id)).scalars().all()

        def load(some: list[int]) -> None:
            ctx = ExportContext.open(conn, SHOP)
            for record in descriptor.load(ctx, some):
                descriptor.build(ctx, record)

        together, lookups, kinds = _queries(lambda: load(ids))
        alone = max(_queries(lambda i=i: load([i]))[0] for i in ids)
    assert len(ids) > 1
    assert together <= alone
    # Keys: one look-up per kind linked to, however many entities link to it.
    assert lookups == len(kinds)


# ------------------------------------------------------------------------------- the schema


def _feed_bytes(name: str) -> bytes:
    root = export(name)
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="utf-8")


def test_incremental_feed_with_deletions_is_valid():
    validate(
        b"""<?xml version="1.0" encoding="utf-8"?>
<advancedimporter generator="impexmod" source="shop:1" entity="products" strategy="incremental"
    generated-at="2024-05-01T10:00:00+00:00" window-from="3" window-to="7"
    since="2024-04-30T10:00:00+00:00" cursor="abc" future-attribute="ok">
  <delete supplier-reference="P-1001" source="supplier:Acme" type="product"/>
  <delete supplier-reference="12" source="shop:1" type="specificPrice"/>
</advancedimporter>"""
    )


def test_validate_reads_every_kind_of_source(catalog, tmp_path):
    data = _feed_bytes("products")
    path = tmp_path / "feed.xml"
    path.write_bytes(data)
    validate(path)
    validate(str(path))
    validate(data.decode("utf-8"))
    with path.open("rb") as fh:
        validate(fh)
    validate(etree.fromstring(data))
    assert is_valid(data)


INVALID = [
    ("products", "<price>19.900000</price>", "<price>19,90</price>", "'19,90'"),
    ("products", "<ean13>", "<colour>red</colour><ean13>", "'colour'"),
    ("products", "<active>1</active>", "<active>true</active>", "'true'"),
    ("products", '<name lang="en">', '<name lang="english">', "'english'"),
    ("products", "<visibility>both", "<visibility>everywhere", "'everywhere'"),
    ("products", 'source="shop:testshop"', 'source="testshop"', "'testshop'"),
    ("products", "<date_add>2024-01-02 03:04:05", "<date_add>2024-01-02T03:04:05", "date_add"),
    ("products", "<depth>", "<depth>1e3</depth><depth>", "'depth'"),
    ("combinations", '<id_product supplier-reference="product"', "<id_product", "supplier-ref"),
    (
        "categories",
        '<id_parent supplier-reference="category"',
        '<id_parent supplier-reference="product"',
        "'product'",
    ),
    ("tags", '<name lang="fr">rouge</name>', '<title lang="fr">rouge</title>', "'title'"),
    ("stock", "<quantity>3</quantity>", "<quantity>3.5</quantity>", "'3.5'"),
    (
        "stock",
        f"<product {key('product')}>1</product>",
        f"<order {key('product')}>1</order>",
        "'order'",
    ),
    ("orders", "<currency_iso>EUR", "<currency_iso>euros", "'euros'"),
    ("orders", 'role="invoice"', 'role="billing"', "'billing'"),
    ("orders", "<product_quantity>2", "<product_quantity>two", "'two'"),
    ("customers", 'type="language">fr', 'type="language">french', "'french'"),
    ("customers", "<email>", "<email/><email>", "'email'"),
    ("specific_prices", "<reduction_type>amount", "<reduction_type>fixed", "'fixed'"),
    ("specific_prices", "<from>2024-06-01 00:00:00", "<from>June", "'June'"),
]


@pytest.mark.parametrize(("name", "old", "new", "said"), INVALID)
def test_schema_rejects_a_wrong_feed_and_says_where(catalog, name, old, new, said):
    data = _feed_bytes(name).decode("utf-8")
    assert old in data, old
    line = data[: data.index(old)].count("\n") + 1
    bad = data.replace(old, new, 1).encode("utf-8")
    with pytest.raises(FeedInvalid) as caught:
        validate(bad)
    assert any(at == line and said in message for at, message in caught.value.errors), (
        caught.value.errors
    )
    assert f"line {line}: " in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert not is_valid(bad)


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"<products/>", "line 1: Element 'products': No matching global declaration"),
        (b"<advancedimporter>\n<tag>", "line 2: not well-formed XML"),
        (b'<advancedimporter strategy="partial"/>', "'partial'"),
        (b'<advancedimporter window-to="-1"/>', "'-1'"),
        (b"<advancedimporter>\n\nloose text</advancedimporter>", "line 1: text 'loose text'"),
        (
            b'<advancedimporter>\n<tag supplier-reference="1" source="shop:1"/>\n'
            b"</advancedimporter>",
            "line 2: Element 'tag': Missing child element(s)",
        ),
        (
            b'<advancedimporter><delete supplier-reference="1" source="shop:1"/>'
            b"</advancedimporter>",
            "'type' is required",
        ),
        (
            b'<advancedimporter><delete supplier-reference="1" source="shop:1" type="image"/>'
            b"</advancedimporter>",
            "'image'",
        ),
        (
            b'<advancedimporter><delete supplier-reference="" source="shop:1" type="product"/>'
            b"</advancedimporter>",
            "supplier-reference",
        ),
    ],
)
def test_schema_rejects_wrong_documents(data, said):
    with pytest.raises(FeedInvalid, match="invalid native feed") as caught:
        validate(data)
    assert said in str(caught.value)


def test_entities_are_never_expanded(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    data = (
        f'<!DOCTYPE advancedimporter [<!ENTITY x SYSTEM "file://{secret}">]>\n'
        '<advancedimporter>\n<tag supplier-reference="1" source="shop:1">'
        '<name lang="en">&x;</name></tag>\n</advancedimporter>'
    ).encode()
    with pytest.raises(FeedInvalid, match="line 3: entity reference &x; is not allowed"):
        validate(data)
