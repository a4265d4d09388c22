"""Small pieces of the importer: value conversion, sources, flat columns, error CSV, archives."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from impexmod.importing.archive import _unsafe
from impexmod.importing.columns import FLAT_COLUMNS, column, headers
from impexmod.importing.entry import convert, converter, same
from impexmod.importing.errors import EntryError, RowError, errors_csv
from impexmod.importing.flat import entity_from_name
from impexmod.importing.native import normalise_source
from impexmod.importing.runs import InvalidImporter, parse_modes
from impexmod.importing.service import detect_format
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
