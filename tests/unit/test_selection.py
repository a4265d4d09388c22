"""The filter syntax (parse_filter), the checks against each entity (check) and the stored form
of a selection: every form the documentation shows, and bad input with the message it gets."""

from __future__ import annotations

import pytest

from impexmod import entities
from impexmod.export.selection import (
    OPERATORS,
    InvalidFilter,
    Selection,
    check,
    field_names,
    filter_text,
    parse_filter,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("category=Shoes", ("category", "=", "Shoes")),
        ("  category =  Shoes  ", ("category", "=", "Shoes")),
        ("supplier=Acme", ("supplier", "=", "Acme")),
        ("manufacturer = Brand", ("manufacturer", "=", "Brand")),
        ("active=1", ("active", "=", "1")),
        ("status=inactive", ("status", "=", "inactive")),
        ("price>=10", ("price", ">=", "10")),
        ("price > 10", ("price", ">", "10")),
        ("price<=9.99", ("price", "<=", "9.99")),
        ("price<5", ("price", "<", "5")),
        ("price!=0", ("price", "!=", "0")),
        ("price<>0", ("price", "!=", "0")),
        ("price==3", ("price", "=", "3")),
        ("name~red shoe", ("name", "~", "red shoe")),
        ('name ~ "red, shoe"', ("name", "~", "red, shoe")),
        ("name='Shoes & Bags'", ("name", "=", "Shoes & Bags")),
        ("supplier=O'Neil", ("supplier", "=", "O'Neil")),
        ('name="say ""hi"""', ("name", "=", 'say "hi"')),
        ('ean13=""', ("ean13", "=", "")),
        ("date_add>=2026-01-01", ("date_add", ">=", "2026-01-01")),
        ("Reference=ab", ("reference", "=", "ab")),
        ("product.price>3", ("product.price", ">", "3")),
        ("reference in A1,A2", ("reference", "in", ["A1", "A2"])),
        ("reference IN  A1 , A2 ", ("reference", "in", ["A1", "A2"])),
        ("id in 1,2,3", ("id", "in", ["1", "2", "3"])),
        ("id in (1, 2, 3)", ("id", "in", ["1", "2", "3"])),
        ("id in [4]", ("id", "in", ["4"])),
        ("reference not in A1,'B,2'", ("reference", "not in", ["A1", "B,2"])),
        ("reference NOT   IN A1", ("reference", "not in", ["A1"])),
        ('reference in "", X', ("reference", "in", ["", "X"])),
    ],
)
def test_parse_filter_reads_every_documented_form(text, expected):
    assert parse_filter(text) == dict(zip(("field", "op", "value"), expected, strict=True))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "an empty filter"),
        ("   ", "an empty filter"),
        ("=Shoes", "it must start with a field"),
        ("category", "no operator after 'category'"),
        ("category Shoes", "no operator after 'category'"),
        ("price >> 10", "unknown operator '>>'"),
        ("price =< 10", "unknown operator '=<'"),
        ("price=", "no value after '=' (write \"\" for an empty value)"),
        ("price >=   ", "no value after '>='"),
        ("name='red", "a quote ' is not closed"),
        ('name="red" shoe', "unexpected 'shoe' after the quoted value"),
        ("reference in", "an empty list"),
        ("reference in ()", "an empty list"),
        ("reference in A1,,A2", "an empty item in the list"),
        ("reference in A1,", "an empty item in the list"),
        ("reference in 'A1' B", "unexpected 'B' after a quoted item"),
    ],
)
def test_parse_filter_refuses_bad_text_and_says_why(text, message):
    with pytest.raises(InvalidFilter) as caught:
        parse_filter(text)
    assert message in str(caught.value)
    if text.strip():
        assert repr(text.strip()) in str(caught.value)  # the message names the filter


def test_unknown_operator_message_lists_the_operators():
    with pytest.raises(InvalidFilter) as caught:
        parse_filter("price >> 10")
    assert "use one of " + ", ".join(OPERATORS) in str(caught.value)


@pytest.mark.parametrize(
    "item",
    [
        {"field": "name", "op": "=", "value": "=x"},
        {"field": "name", "op": "~", "value": ' say "hi" '},
        {"field": "reference", "op": "in", "value": ["a,b", "(c", "", "O'Neil"]},
        {"field": "ean13", "op": "=", "value": ""},
        {"field": "reference", "op": "not in", "value": ["A1", "A2"]},
        {"field": "price", "op": ">=", "value": "10"},
    ],
)
def test_filter_text_reads_back_to_the_same_filter(item):
    assert parse_filter(filter_text(item)) == item


def test_filter_text_is_the_typed_syntax():
    assert filter_text({"field": "price", "op": ">=", "value": "10"}) == "price>=10"
    assert filter_text({"field": "id", "op": "in", "value": ["1", "2"]}) == "id in 1,2"


# ------------------------------------------------------------------------------------ check


def stored(entity: str, *texts: str, match: str = "all") -> list[dict]:
    return check(entity, [parse_filter(t) for t in texts], match).filters


def test_check_normalises_values_by_field_kind():
    assert stored("products", "active=yes", "price>=10,5", "date_add=2026-01-31", "id in 1, 2") == [
        {"field": "active", "op": "=", "value": "1"},
        {"field": "price", "op": ">=", "value": "10.5"},
        {"field": "date_add", "op": "=", "value": "2026-01-31"},
        {"field": "id", "op": "in", "value": ["1", "2"]},
    ]
    assert stored("products", "status=Inactive") == [
        {"field": "status", "op": "=", "value": "inactive"}
    ]
    assert stored("orders", "date_add>=2026-01-31T18:00") == [
        {"field": "date_add", "op": ">=", "value": "2026-01-31 18:00:00"}
    ]
    # A product's own product.price is its price.
    assert stored("products", "product.price<3") == [{"field": "price", "op": "<", "value": "3"}]


def test_check_accepts_stored_lists_and_comma_text_for_in():
    a = check("products", [{"field": "id", "op": "in", "value": "3,4"}]).filters
    b = check("products", [{"field": "id", "op": "in", "value": [3, 4]}]).filters
    assert a == b == [{"field": "id", "op": "in", "value": ["3", "4"]}]


@pytest.mark.parametrize(
    ("entity", "text", "message"),
    [
        ("products", "colour=red", "products have no field 'colour'; use one of active, category"),
        ("products", "price>=abc", "'abc' is not a number; price takes a number"),
        ("products", "price>=nan", "'nan' is not a number"),
        ("products", "price>=1e999999999999", "'1e999999999999' is out of range"),
        ("products", "id=1.5", "'1.5' is not a whole number"),
        ("products", "id=99999999999999999999", "is out of range"),
        ("products", "quantity>lots", "'lots' is not a whole number"),
        ("products", "id in 1,x", "'x' is not a whole number"),
        ("products", "active=maybe", "'maybe' is not 1 or 0"),
        ("products", "active>0", "active takes the operators =, !=, not '>'"),
        ("products", "price~10", "price takes the operators =, !=, >, >=, <, <=, in, not in"),
        ("products", "status=gone", "'gone' is not one of active, inactive, all"),
        ("products", "status!=active", "status takes the operators =, not '!='"),
        ("products", "category>Shoes", "category takes the operators =, !=, in, not in"),
        ("products", "category=''", "a name or an id is needed"),
        ("products", "date_add>=yesterday", "'yesterday' is not a date"),
        ("orders", "date_add>=2026-13-01", "'2026-13-01' is not a date"),
        ("orders", "price>1", "orders have no field 'price'"),
        ("categories", "supplier=Acme", "categories have no field 'supplier'"),
        ("combinations", "colour=red", "and product.<field> for any field of the product"),
        ("combinations", "product.colour=red", "combinations have no field 'product.colour'"),
        ("tags", "category=Shoes", "tags have no field 'category'; use one of id, id_lang, name"),
    ],
)
def test_check_refuses_what_the_entity_cannot_filter_and_names_the_filter(entity, text, message):
    with pytest.raises(InvalidFilter) as caught:
        check(entity, [parse_filter(text)])
    assert message in str(caught.value)
    assert str(caught.value).startswith("filter '")


def test_check_refuses_a_bad_match_and_malformed_filters():
    with pytest.raises(InvalidFilter, match="all or any, not 'some'"):
        check("products", [], "some")
    with pytest.raises(InvalidFilter, match="one value, not a list"):
        check("products", [{"field": "price", "op": "=", "value": ["1", "2"]}])
    with pytest.raises(InvalidFilter, match="the list of values is empty"):
        check("products", [{"field": "id", "op": "in", "value": []}])
    with pytest.raises(InvalidFilter, match="an empty item in the list"):
        check("products", [{"field": "id", "op": "in", "value": "1,,2"}])
    with pytest.raises(InvalidFilter, match="FIELD OP VALUE"):
        check("products", [42])


def test_every_entity_has_its_own_columns_and_product_ones_through_the_product():
    for name, descriptor in entities.REGISTRY.items():
        known = set(field_names(name))
        assert {c.name for c in descriptor.table.columns} <= known, name
    for name in ("combinations", "stock", "specific_prices"):
        known = set(field_names(name))
        assert {"category", "supplier", "manufacturer", "active", "status"} <= known
        assert {"product.reference", "product.price", "product.quantity"} <= known
    assert {"reference", "product.reference"} <= set(field_names("stock"))
    assert {"quantity", "name", "category", "supplier", "manufacturer", "tag"} <= set(
        field_names("products")
    )
    assert {"state", "total_paid", "current_state"} <= set(field_names("orders"))
    assert {"category", "name", "status"} <= set(field_names("categories"))


def test_selection_of_a_task_describes_itself_and_is_false_when_empty():
    class Spec:
        filters = [
            {"field": "category", "op": "=", "value": "Shoes"},
            {"field": "reference", "op": "in", "value": ["A1", "A,2"]},
        ]
        filter_match = "any"

    chosen = Selection.of(Spec())
    assert chosen
    assert chosen.describe() == 'category = Shoes or reference in A1,"A,2"'
    assert not Selection.of(object())
    assert Selection.of(object()).where("products") is None
    assert check("products", None).filters == []


def test_a_stored_filter_gone_bad_fails_when_applied():
    broken = Selection([{"field": "colour", "op": "=", "value": "red"}])
    with pytest.raises(InvalidFilter, match="no field 'colour'"):
        broken.where("products")


SAMPLES = {"int": "1", "number": "2.5", "date": "2026-01-31", "bool": "1", "text": "a"}
SAMPLES |= {"named": "Shoes", "status": "active"}


@pytest.mark.parametrize("entity", entities.ENTITY_NAMES)
def test_every_field_compiles_for_every_database(entity):
    """Each field and operator renders on SQLite, PostgreSQL and MariaDB (the lead's CI runs
    them against the servers)."""
    from sqlalchemy import select
    from sqlalchemy.dialects import mysql, postgresql, sqlite

    from impexmod.export.filter_fields import fields_of

    filters = []
    for name, spec in fields_of(entity).items():
        for op in spec.ops:
            value = SAMPLES[spec.kind]
            filters.append({"field": name, "op": op, "value": [value] if "in" in op else value})
    chosen = check(entity, filters, "any")
    table = entities.resolve(entity).table
    stmt = select(table.c.id).where(chosen.where(entity)).order_by(table.c.id).limit(10)
    for dialect in (sqlite.dialect(), postgresql.dialect(), mysql.dialect(is_mariadb=True)):
        sql = str(stmt.compile(dialect=dialect))
        assert sql.count(" OR ") >= len(filters) - 1
