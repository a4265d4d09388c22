"""The field-mapping engine on plain flat rows: sources, every transform and its edge cases,
and the validation messages that name the column and the bad key or value."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from impexmod.export.mapping import FieldMapping, MappingError, check_columns, text

COLUMNS = ["reference", "price", "name[en]", "name[fr]", "description[en]", "active", "date_add"]


def one(step: dict, value, source: str = "price"):
    """The output of one transform applied to ``value``."""
    mapping = FieldMapping.from_json(
        "products", [{"header": "X", "source": source, "transforms": [step]}], COLUMNS
    )
    return mapping.apply({source: value})[0]


def error(columns, available=COLUMNS) -> str:
    with pytest.raises(MappingError) as caught:
        check_columns(columns, available)
    return str(caught.value)


# ------------------------------------------------------------------------------------ sources


def test_sources_headers_and_order():
    mapping = FieldMapping.from_json(
        "products",
        [
            {"header": "SKU", "source": "reference"},
            {"header": "Condition", "value": "new"},
            {"header": "Title", "concat": ["name[en]", " - ", {"field": "reference"}]},
            {"header": "Literal", "concat": [{"text": "price"}, ": ", "price"]},
        ],
        COLUMNS,
    )
    assert mapping.entity == "products"
    assert mapping.headers() == ["SKU", "Condition", "Title", "Literal"]
    row = {"reference": "A1", "price": Decimal("9.5"), "name[en]": "Shoe"}
    assert mapping.apply(row) == ["A1", "new", "Shoe - A1", "price: 9.5"]
    assert mapping.sources() == ["reference", "name[en]", "price"]
    # Bare strings are resolved once: fields become {"field"}, the rest {"text"}.
    assert mapping.columns[2]["concat"] == [
        {"field": "name[en]"},
        {"text": " - "},
        {"field": "reference"},
    ]


def test_untransformed_values_keep_their_type_and_missing_ones_are_none():
    mapping = FieldMapping.from_json(
        "products",
        [{"header": "P", "source": "price"}, {"header": "N", "source": "name[fr]"}],
        COLUMNS,
    )
    assert mapping.apply({"price": Decimal("1.50")}) == [Decimal("1.50"), None]


def test_concat_of_empty_and_typed_values():
    mapping = FieldMapping.from_json(
        "products", [{"header": "C", "concat": ["reference", "/", "price", "/", "active"]}], COLUMNS
    )
    assert mapping.apply({"reference": None, "price": Decimal("2.000"), "active": True}) == [
        "/2.000/1"
    ]


def test_text_of_flat_values():
    assert text(None) == ""
    assert text(Decimal("1E+2")) == "100"
    assert text(datetime(2024, 3, 5, 8, 9, 10)) == "2024-03-05 08:09:10"
    assert text(date(2024, 3, 5)) == "2024-03-05"
    assert text(["a", "b"]) == "a|b"
    assert text(False) == "0"


# --------------------------------------------------------------------------------- transforms


def test_price_formats_with_exact_half_up_rounding():
    step = {"op": "price", "decimals": 2, "decimal_separator": ",", "suffix": " EUR"}
    assert one(step, Decimal("19.995")) == "20,00 EUR"
    assert one(step, "2.675") == "2,68 EUR"  # a float would give 2.67
    assert one(step, 3) == "3,00 EUR"
    assert one(step, "12,5") == "12,50 EUR"  # a lone comma is a decimal separator
    assert one({"op": "price"}, Decimal("-0.001")) == "0.00"  # never "-0.00"
    full = {"op": "price", "thousands_separator": " ", "prefix": "$", "decimals": 0}
    assert one(full, Decimal("1234567.5")) == "$1 234 568"


def test_price_leaves_empty_and_non_numeric_values_as_they_are():
    step = {"op": "price", "suffix": " EUR"}
    assert one(step, None) is None
    assert one(step, "") == ""
    assert one(step, "on request") == "on request"
    assert one(step, "NaN") == "NaN"
    assert one(step, True) is True
    assert one(step, "1e40") == "1e40"  # past exact decimal precision


def test_round():
    assert one({"op": "round"}, Decimal("2.5")) == Decimal("3")
    assert one({"op": "round", "decimals": 1}, "0.05") == Decimal("0.1")
    assert one({"op": "round"}, Decimal("-0.4")) == Decimal("0")
    assert str(one({"op": "round"}, Decimal("-0.4"))) == "0"
    assert one({"op": "round"}, "abc") == "abc"
    assert one({"op": "round"}, None) is None


def test_default_fills_empty_values_only():
    step = {"op": "default", "value": "n/a"}
    assert one(step, None) == "n/a"
    assert one(step, "") == "n/a"
    assert one(step, "   ") == "n/a"
    assert one(step, 0) == 0
    assert one(step, "x") == "x"


def test_upper_and_lower():
    assert one({"op": "upper"}, "Straße été") == "STRASSE ÉTÉ"
    assert one({"op": "lower"}, "ÉTÉ") == "été"
    assert one({"op": "upper"}, None) is None


def test_truncate_counts_characters_not_bytes():
    step = {"op": "truncate", "length": 5}
    assert one(step, "ééééééé") == "ééééé"
    assert one(step, "日本語のテキスト") == "日本語のテ"
    assert one(step, "short") == "short"
    assert one({"op": "truncate", "length": 8, "ellipsis": "…"}, "Chaussure rouge") == "Chaussu…"
    # Trailing blanks go before the ellipsis.
    assert one({"op": "truncate", "length": 7, "ellipsis": "..."}, "ab  cdefgh") == "ab..."
    # A decomposed "é" (e + combining accent) is never cut in two.
    assert one(step, "abcde\u0301fg") == "abcd"
    assert one(step, None) is None


def test_strip_html_decodes_entities_and_collapses_whitespace():
    step = {"op": "strip_html"}
    html = "<p>Caf&eacute; &amp; th&#233;</p>\n<ul><li>one</li><li>two&nbsp;three</li></ul>"
    assert one(step, html, "description[en]") == "Café & thé one two three"
    assert one(step, "A<br>B<b>old</b>", "description[en]") == "A Bold"
    assert one(step, "x<script>alert(1)</script><style>p{}</style>y<!-- no -->") == "xy"
    assert one(step, "plain 3 &lt; 4") == "plain 3 < 4"
    assert one(step, "3 < 4 and 5 > 2") == "3 < 4 and 5 > 2"
    assert one(step, "<html><body><h1>Title</h1>text</body></html>") == "Title text"
    assert one(step, "<table><tr><td>a</td><td>b</td></tr></table>") == "a b"
    assert one(step, "   ") == ""
    assert one(step, None) is None


def test_date_reads_native_dates():
    step = {"op": "date", "format": "%d/%m/%Y"}
    assert one(step, "2024-03-05 14:30:00", "date_add") == "05/03/2024"
    assert one(step, "2024-03-05", "date_add") == "05/03/2024"
    assert one(step, datetime(2024, 3, 5, 1, 2, 3), "date_add") == "05/03/2024"
    assert one({"op": "date", "format": "%Y%m%dT%H%M"}, "2024-03-05 14:30:00") == "20240305T1430"
    assert one(step, "0000-00-00 00:00:00", "date_add") == ""
    assert one(step, "soon", "date_add") == "soon"
    assert one(step, None, "date_add") is None


def test_lookup_with_and_without_default():
    table = {"op": "lookup", "table": {"1": "yes", "0": "no"}}
    assert one(table, "1", "active") == "yes"
    assert one(table, 0, "active") == "no"
    assert one(table, True, "active") == "yes"
    assert one(table, "2", "active") == "2"
    assert one({**table, "default": "unknown"}, "2", "active") == "unknown"


def test_transforms_apply_in_order():
    mapping = FieldMapping.from_json(
        "products",
        [
            {
                "header": "Title",
                "source": "description[en]",
                "transforms": [
                    {"op": "strip_html"},
                    {"op": "default", "value": "no description"},
                    {"op": "upper"},
                    {"op": "truncate", "length": 6},
                ],
            }
        ],
        COLUMNS,
    )
    assert mapping.apply({"description[en]": "<p>big &amp; red</p>"}) == ["BIG &"]
    assert mapping.apply({"description[en]": "<p> </p>"}) == ["NO DES"]


# --------------------------------------------------------------------------------- validation


def test_unknown_source_names_the_column_and_suggests():
    message = error(
        [{"header": "SKU", "source": "reference"}, {"header": "N", "source": "nme[en]"}]
    )
    assert (
        message
        == "column 2 (\"N\"): source: unknown column 'nme[en]' (did you mean name[en], name[fr]?)"
    )
    assert "did you mean name[en], name[fr]" in error([{"header": "N", "source": "name"}])
    assert "unknown column 'nope'" in error([{"header": "C", "concat": [{"field": "nope"}]}])


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        ({"header": "x"}, "columns must be a JSON array"),
        ([], "at least one column"),
        (["price"], "column 1: a column is a JSON object"),
        ([{"source": "price"}], "column 1: header: a non-empty text is required"),
        ([{"header": "P", "sorce": "price"}], "unknown key 'sorce' (did you mean source?)"),
        ([{"header": "P"}], 'column 1 ("P"): give exactly one of source'),
        ([{"header": "P", "source": "price", "value": 1}], "not source and value"),
        ([{"header": "P", "value": None}], "a constant is a text or a number"),
        ([{"header": "P", "concat": []}], "concat: a non-empty array"),
        ([{"header": "P", "concat": [{"field": "price", "text": "x"}]}], "concat item 1: an item"),
        (
            [{"header": "P", "source": "price"}, {"header": "P", "value": 1}],
            "column 2 (\"P\"): the header 'P' is already column 1",
        ),
        ([{"header": "P", "source": "price", "transforms": {"op": "upper"}}], "a JSON array"),
        ([{"header": "P", "source": "price", "transforms": ["upper"]}], "transform 1: a transf"),
        (
            [{"header": "P", "source": "price", "transforms": [{"op": "uper"}]}],
            "transform 1: unknown op 'uper' (did you mean upper?); ops: price, round,",
        ),
        (
            [{"header": "P", "source": "price", "transforms": [{"op": "upper"}, {"op": "x"}]}],
            'column 1 ("P"): transform 2: unknown op',
        ),
        (
            [{"header": "P", "source": "price", "transforms": [{"op": "price", "decimal": 2}]}],
            "transform 1 (price): unknown parameter 'decimal' (did you mean decimals?)",
        ),
        (
            [{"header": "P", "source": "price", "transforms": [{"op": "upper", "x": 1}]}],
            "upper takes no parameter",
        ),
        (
            [{"header": "P", "source": "price", "transforms": [{"op": "round", "decimals": "2"}]}],
            "transform 1 (round): decimals must be a whole number from 0 to 10, not '2'",
        ),
        (
            [{"header": "P", "source": "price", "transforms": [{"op": "round", "decimals": 11}]}],
            "from 0 to 10, not 11",
        ),
        (
            [{"header": "P", "source": "price", "transforms": [{"op": "truncate"}]}],
            "transform 1 (truncate): missing parameter 'length'",
        ),
        (
            [{"header": "P", "source": "price", "transforms": [{"op": "truncate", "length": 0}]}],
            "length must be a whole number from 1",
        ),
        (
            [
                {
                    "header": "P",
                    "source": "price",
                    "transforms": [{"op": "truncate", "length": 2, "ellipsis": "..."}],
                }
            ],
            "the ellipsis must be shorter than the length",
        ),
        (
            [{"header": "P", "source": "price", "transforms": [{"op": "default"}]}],
            "missing parameter 'value'",
        ),
        (
            [{"header": "P", "source": "price", "transforms": [{"op": "date", "format": ""}]}],
            "format must be a strftime format",
        ),
        (
            [{"header": "P", "source": "price", "transforms": [{"op": "lookup", "table": []}]}],
            "table must be a non-empty object",
        ),
        (
            [
                {
                    "header": "P",
                    "source": "price",
                    "transforms": [{"op": "lookup", "table": {"1": ["yes"]}}],
                }
            ],
            "table: the value of '1' must be a text or a number",
        ),
        (
            [
                {
                    "header": "P",
                    "source": "price",
                    "transforms": [{"op": "price", "decimal_separator": 1}],
                }
            ],
            "decimal_separator must be a text, not 1",
        ),
    ],
)
def test_validation_messages(columns, expected):
    assert expected in error(columns)


def test_canonical_form_orders_keys_and_keeps_given_parameters():
    checked = check_columns(
        [
            {
                "transforms": [{"suffix": " EUR", "op": "price", "decimals": 2}],
                "source": " price ",
                "header": " Price ",
            }
        ],
        COLUMNS,
    )
    assert checked == [
        {
            "header": "Price",
            "source": "price",
            "transforms": [{"op": "price", "decimals": 2, "suffix": " EUR"}],
        }
    ]
    assert list(checked[0]["transforms"][0]) == ["op", "decimals", "suffix"]
    # Canonical columns check again to themselves.
    assert check_columns(checked, COLUMNS) == checked


def test_without_available_columns_sources_are_not_checked():
    mapping = FieldMapping.from_json("products", [{"header": "A", "source": "anything"}])
    assert mapping.apply({"anything": 1}) == [1]
