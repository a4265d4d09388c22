"""Small pieces of the importer: value conversion, sources, flat columns, error CSV, archives."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from impexmod.importing.columns import FLAT_COLUMNS, column, headers
from impexmod.importing.definition import InvalidImporter, parse_modes
from impexmod.importing.entry import convert, converter, same
from impexmod.importing.errors import EntryError, RowError, errors_csv
from impexmod.importing.fileformat import detect_format
from impexmod.importing.flat import entity_from_name
from impexmod.importing.native import normalise_source
from impexmod.importing.zipguard import _unsafe
from impexmod.models import Product, SpecificPrice

C = Product.__table__.c


@pytest.mark.parametrize(
    "col, raw, value",
    [
        (C.price, " 10,50 ", Decimal("10.50")),
        (C.active, "yes", True),
        (C.active, "0", False),
        (C.id_tax_rules_group, "3", 3),
        (C.reference, "  R-1 ", "R-1"),
        (C.reference, "", None),
        (SpecificPrice.__table__.c["from"], "2024-05-01", datetime(2024, 5, 1)),
        (SpecificPrice.__table__.c["from"], "0000-00-00 00:00:00", None),
    ],
)
def test_convert(col, raw, value):
    assert convert(col, raw) == value
    assert converter(col)(raw) == value


@pytest.mark.parametrize(
    "col, raw, reason",
    [
        (C.price, "ten", "not a number"),
        (C.price, "NaN", "not a number"),
        (C.active, "maybe", "yes/no"),
        (C.id_tax_rules_group, "1.5", "whole number"),
        (C.ean13, "12345678901234", "longer than 13"),
        (C.price, "", "required"),
    ],
)
def test_convert_refuses_with_the_field_and_the_reason(col, raw, reason):
    with pytest.raises(EntryError) as caught:
        converter(col)(raw)
    assert caught.value.field == col.name and reason in caught.value.reason


def test_same_compares_numbers_as_numbers():
    assert same(Decimal("10.500000"), Decimal("10.5"))
    assert same(None, "") and not same(None, "x")
    assert same(True, 1) and not same(2, 3)


def test_sources_are_normalised():
    assert normalise_source("Acme") == "supplier:Acme"
    assert normalise_source("shop:ab12") == "shop:ab12"
    assert normalise_source("") is None


def test_flat_columns_are_defined_once_for_every_entity():
    assert set(FLAT_COLUMNS) == {
        "products",
        "combinations",
        "categories",
        "tags",
        "specific_prices",
        "stock",
    }
    assert column("products", "name[fr]")[1] == "fr"
    assert column("products", "manufacturer_source")[0].name == "manufacturer"
    assert column("products", "price[fr]") is None
    assert "description_short[en]" in headers("products", ["en", "fr"])
    assert entity_from_name("specific-prices-2024.csv") == "specific_prices"
    assert entity_from_name("Stock.xlsx") == "stock"


def test_modes():
    assert parse_modes("create, update,delete") == ("create", "update", "delete")
    for bad in ("", "create,upsert", "delete,disable"):
        with pytest.raises(InvalidImporter):
            parse_modes(bad)


def test_error_csv_neutralises_formulas():
    text = errors_csv([RowError("f.csv", 2, "row 2", "name", '=HYPERLINK("x")')])
    assert text.splitlines()[1].endswith('\'=HYPERLINK(""x"")"')


@pytest.mark.parametrize("name", ["../x", "/etc/x", "a/../../x", "C:\\x", "\\x", "a\\..\\..\\x"])
def test_unsafe_archive_paths(name):
    assert _unsafe(name)


def test_safe_archive_paths_and_format_detection(tmp_path):
    assert not _unsafe("dir/products.csv")
    feed = tmp_path / "feed.bin"
    feed.write_bytes(b"\xef\xbb\xbf  <?xml version='1.0'?><advancedimporter/>")
    assert detect_format(feed) == "xml"
    feed.write_bytes(b"reference;quantity\n")
    assert detect_format(feed) == "csv"
    assert detect_format(feed, "group.ZIP") == "zip"


def test_lang_items_are_the_translations_lang_values_gives():
    from impexmod.importing.loaders.common import lang_items, lang_values

    class Chunk:
        langs = {"en": 1, "fr": 2, "de": 3, "EN": 1}

    class Entry:
        def __init__(self, per_lang):
            self.langs = {"legend": per_lang}

    every = list(dict.fromkeys(Chunk.langs.values()))
    for per_lang in (
        {},
        {None: "all"},
        {"fr": "fr"},
        {"fr": "fr", None: "all"},
        {None: "all", "de": "de", "xx": "unknown"},
        {"en": "first", "fr": "fr", "EN": "last"},
        {"xx": "unknown"},
    ):
        expected = [(i, v["legend"]) for i, v in lang_values(Chunk, Entry(per_lang)).items()]
        assert lang_items(per_lang, Chunk.langs, every) == expected, per_lang


def test_parsed_entries_rebuilt_from_the_parser_process_carry_refs():
    # Refs travel as plain tuples; rebuilt, they are Refs again (a tuple would hash and compare
    # the same, and fail only where a ref's fields or label are read).
    from lxml import etree

    from impexmod.importing.entry import Ref
    from impexmod.importing.native import NativeParser
    from impexmod.importing.pipeline import _encode, _top

    elem = etree.fromstring(
        '<product supplier-reference="P-1" source="Acme"><name lang="en">N</name>'
        '<id_manufacturer supplier-reference="manufacturer">M-1</id_manufacturer>'
        "<id_category_default>4</id_category_default>"
        '<combination supplier-reference="C-1"><price>2</price></combination></product>'
    )
    parser = NativeParser("f.xml", "supplier:default", {"en"}, lambda error: None)
    entry = _top(_encode(parser.parse(elem, "/advancedimporter/product[1]")), "f.xml")
    assert type(entry.ref) is Ref and entry.ref.label() == "product 'P-1' of supplier:Acme"
    links = entry.links
    assert type(links["id_manufacturer"]) is Ref and links["id_manufacturer"].source == (
        "supplier:default"
    )
    assert links["id_category_default"] == Ref("category", "4", "@own")
    assert type(links["id_category_default"]) is Ref
    (combination,) = entry.children["combination"]
    assert type(combination.ref) is Ref and combination.parent is entry
    assert entry.tree == [entry, combination]


def test_parsed_values_have_their_field_s_type_however_often_a_text_repeats():
    from lxml import etree

    from impexmod.importing.native import NativeParser

    parser = NativeParser("f.xml", "supplier:default", {"en"}, lambda error: None)
    xml = (
        "<product><price>1</price><active>1</active><id_tax_rules_group>1</id_tax_rules_group>"
        "<reference>1</reference><weight>abc</weight></product>"
    )
    for n in range(3):
        entry = parser.parse(etree.fromstring(xml), f"/advancedimporter/product[{n + 1}]")
        values = entry.values
        names = ("price", "active", "id_tax_rules_group", "reference")
        assert [type(values[k]) for k in names] == [Decimal, bool, int, str]
        assert values["price"] == 1 and values["active"] is True
        assert [(e.path, e.field) for e in entry.errors] == [
            (f"/advancedimporter/product[{n + 1}]/weight", "weight")
        ]


def test_a_repeated_attribute_group_is_a_fresh_entry_in_its_own_place():
    # Every combination repeats its attribute groups word for word: the parser reads one once
    # and copies it, so each copy must be an entry of its own, where it is in the file.
    from lxml import etree

    from impexmod.importing.native import NativeParser

    group = (
        '<attributeGroup supplier-reference="1" source="shop:a">\n'
        '<name lang="en">Size</name>\n'
        '<attribute supplier-reference="3" source="shop:a">\n<name lang="en">M</name>\n'
        "</attribute>\n</attributeGroup>"
    )
    combination = '<combination supplier-reference="C{n}">\n' + group + "\n</combination>\n"
    xml = '<product supplier-reference="P">\n' + combination.format(n=1) + combination.format(n=2)
    product = etree.fromstring(xml + "</product>")
    parser = NativeParser("f.xml", "supplier:default", {"en"}, lambda error: None)
    entry = parser.parse(product, "/advancedimporter/product[1]")
    first, second = (c.children["attributeGroup"][0] for c in entry.children["combination"])
    assert first is not second and first.values == second.values
    assert second.parent is entry.children["combination"][1]
    (attribute,) = second.children["attribute"]
    assert attribute is not first.children["attribute"][0] and attribute.parent is second
    assert attribute.langs == {"name": {"en": "M"}}
    assert (first.origin.line, second.origin.line, attribute.origin.line) == (3, 11, 13)
    assert attribute.origin.path == (
        "/advancedimporter/product[1]/combination[2]/attributeGroup[1]/attribute[1]"
    )
