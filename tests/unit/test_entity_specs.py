"""An entity is one spec: every per-entity table is derived from ``entities.REGISTRY``, and an
entity registered in a test (model, spec and loader defined here) is picked up by all of them."""

from __future__ import annotations

from lxml import etree
from sqlalchemy import Column, Integer, MetaData, String, Table

from impexmod import entities
from impexmod.admin.forms import ENTITY_LABELS
from impexmod.catalog import changes
from impexmod.entities import REGISTRY, derived
from impexmod.entities.base import Descriptor, resolve_ref
from impexmod.entities.flatvocab import KEY, FlatColumn, values
from impexmod.entities.shape import Shape
from impexmod.export import filter_fields, flatten
from impexmod.export.formats import objects
from impexmod.importing import archive, columns, engine, entry, keys, native, validation
from impexmod.importing.columns import entity_from_name
from impexmod.importing.loaders import operations
from impexmod.importing.loaders.base import Loader
from impexmod.models import (
    Address,
    Combination,
    ImageLang,
    OrderHistory,
    Product,
    StockAvailable,
)

SPECS = list(REGISTRY.values())


def test_every_derived_table_is_the_one_of_the_specs():
    """The tables the readers, writers and loaders hold are those derived from REGISTRY."""
    assert derived.LABELS == {d.name: d.label for d in SPECS}
    assert {name: str(label) for name, label in ENTITY_LABELS.items()} == derived.LABELS
    assert all(label for label in ENTITY_LABELS.values())
    assert flatten.FLAT_ENTITIES == [d.name for d in SPECS if d.flat_row]
    assert flatten._TABLES == {d.name: d.tables for d in SPECS if d.flat_row}
    assert flatten.EXPORT_ONLY == {d.name: d.export_columns for d in SPECS if d.export_columns}
    assert objects.TABLES is derived.OBJECT_TABLES and objects.LISTS is derived.OBJECT_LISTS
    for d in SPECS:
        assert objects.TABLES[d.element] == (d.object_tables or {d.element: d.tables})[d.element]
        assert set(filter_fields.fields_of(d.name)) == set(resolve_ref(d.filter_fields)())
        assert callable(resolve_ref(d.flat_row))
    flat = [d for d in SPECS if d.flat_columns is not None]
    assert columns.FLAT_COLUMNS == {d.name: d.flat_columns for d in flat}
    assert validation.ENTITIES == [d.name for d in flat]
    assert native.SHAPES == {d.element: d.shape for d in SPECS} | {
        el: s for d in SPECS for el, s in d.nested_shapes.items()
    }
    assert set(native.TOP_LEVEL) == {d.element for d in SPECS} | {"delete", "disable"}
    assert all(entry.KINDS[d.element] == d.kind for d in SPECS)
    assert all(keys.TABLES[d.kind] is d.table for d in SPECS)
    assert {d.kind for d in SPECS if d.deletable} <= operations.DELETABLE
    assert {d.kind for d in SPECS if d.disableable} <= operations.DISABLEABLE
    assert sorted(engine.ORDER) == sorted(d.kind for d in SPECS if d.loader)
    for d in SPECS:
        assert isinstance(engine.loader(d.kind), Loader)
        assert engine.loader(d.kind) is resolve_ref(d.loader)
    assert archive.ORDER == [
        n for n in derived.dependency_order(REGISTRY) if n in derived.FLAT_ELEMENTS
    ]
    assert changes._own(Product(id=3)) == ("product", 3)


def test_a_write_changes_the_entities_its_specs_say():
    """Change tracking reads the specs: a stock row changes its stock, product and combination."""
    assert changes._touched(Product(id=3)) == [("product", 3)]
    assert sorted(changes._touched(Combination(id=5, id_product=3))) == [
        ("combination", 5),
        ("product", 3),
    ]
    stock = StockAvailable(id=9, id_product=3, id_product_attribute=5)
    assert sorted(changes._touched(stock)) == [("combination", 5), ("product", 3), ("stock", 9)]
    # 0 is "no combination": the product's own stock changes no combination
    stock = StockAvailable(id=9, id_product=3, id_product_attribute=0)
    assert sorted(changes._touched(stock)) == [("product", 3), ("stock", 9)]
    assert changes._touched(Address(id=2, id_customer=7)) == [("customer", 7)]
    assert changes._touched(OrderHistory(id=1, id_order=4)) == [("order", 4)]
    assert changes._touched(ImageLang(id_image=1, id_lang=1)) == []


def test_the_dependency_order_puts_parents_first():
    """One order, from ``parents``: the engine's by kind, a ZIP's files by entity."""
    order = derived.dependency_order(REGISTRY)
    for d in SPECS:
        assert all(order.index(p) < order.index(d.name) for p in d.parents if p != d.name)
    assert archive.ORDER == ["categories", "tags", "products", "combinations"] + [
        "specific_prices",
        "stock",
    ]
    assert engine.ORDER.index("product") < engine.ORDER.index("combination")
    assert engine.ORDER.index("customer") < engine.ORDER.index("order")


def test_the_product_cascade_is_said_once():
    """What the database deletes with a product: the specs' ``deleted_with``."""
    assert {(kind, column) for kind, _, column in derived.CASCADE["product"]} == {
        ("combination", "id_product"),
        ("specific_price", "id_product"),
        ("stock", "id_product"),
    }
    assert derived.CASCADE_OWNERS["stock"] == ("product", "id_product")


# ------------------------------------------------------------------ a new entity, in four parts

WIDGETS = Table(  # the model (a migration would create it; a table of its own MetaData here)
    "widget",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("id_product", Integer, nullable=False),
    Column("colour", String(32)),
)


class WidgetLoader:
    """The loader: plans and applies the widgets of a chunk."""

    def __init__(self):
        self.planned: list = []

    def plan(self, chunk, entries) -> None:
        self.planned.extend(entries)

    def apply(self, chunk, entries) -> None:
        pass


class WidgetDescriptor(Descriptor):
    """The spec."""

    name = "widgets"
    element = "widget"
    kind = "widget"
    table = WIDGETS
    label = "Widgets"
    tables = (WIDGETS,)
    flat_columns = KEY + (FlatColumn("product", "link", "product"),) + values("colour")
    flat_row = "impexmod.export.flatten:plain_row"
    filter_fields = staticmethod(lambda: {"colour": None})
    shape = Shape("widget", WIDGETS, links={"id_product": "product"})
    loader = WidgetLoader()
    parents = ("products",)
    deleted_with = ("products", "id_product")


def test_a_registered_entity_reaches_every_derived_table():
    spec = WidgetDescriptor()
    with entities.registered(spec):
        assert entities.resolve("widgets") is spec and ENTITY_LABELS["widgets"] == "Widgets"
        # export
        assert "widgets" in flatten.FLAT_ENTITIES and flatten._TABLES["widgets"] == (WIDGETS,)
        assert flatten.available_columns("widgets", ["en"])[:2] == ["supplier_reference", "source"]
        assert objects.TABLES["widget"] == (WIDGETS,)
        assert set(filter_fields.fields_of("widgets")) == {"colour"}
        # import
        assert validation.ENTITIES[-1] == "widgets" and "widgets" in archive.ORDER
        assert entity_from_name("widgets-2024.csv") == "widgets"
        assert columns.column("widgets", "colour") == (FlatColumn("colour", "value"), None)
        assert "widget" in native.TOP_LEVEL and native.SHAPES["widget"] is spec.shape
        assert entry.KINDS["widget"] == "widget" and keys.TABLES["widget"] is WIDGETS
        assert "widget" in operations.DELETABLE
        assert engine.ORDER.index("product") < engine.ORDER.index("widget")
        assert engine.loader("widget") is spec.loader and isinstance(spec.loader, Loader)
        assert ("widget", WIDGETS, "id_product") in derived.CASCADE["product"]
        assert derived.CHANGED_BY[WIDGETS] == [("widget", "id")]
        parser = native.NativeParser("f.xml", "supplier:default", {"en"}, lambda error: None)
        element = etree.fromstring(
            '<widget supplier-reference="W-1"><colour>red</colour>'
            '<id_product supplier-reference="product">P-1</id_product></widget>'
        )
        widget = parser.parse(element, "/advancedimporter/widget[1]")
        assert widget.kind == "widget" and widget.values == {"colour": "red"}
        assert widget.links["id_product"].kind == "product"
    assert "widgets" not in REGISTRY and "widget" not in entry.KINDS
    assert "widgets" not in validation.ENTITIES and "widget" not in engine.ORDER
