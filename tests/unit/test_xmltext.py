"""Entities written as text (impexmod.entities.xmltext) are byte for byte what lxml writes."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from lxml import etree

from impexmod.entities.xmltext import NotXmlText, XmlText, attributes, parse, text

# Text and attribute values with everything a serialiser must escape, or must leave alone.
AWKWARD = [
    "plain",
    "",
    " ",
    '<p>Tom & Jerry\'s "best"</p>',
    "a > b",
    "line one\nline two\r\nthree\tfour",
    "éàü ☃ 💡 \u00a0non-breaking",
    "&amp; already escaped",
    "]]> end of CDATA",
]


def _lxml(build) -> bytes:
    el = build()
    return etree.tostring(el, pretty_print=True, encoding="utf-8")


def _ours(render) -> bytes:
    out = XmlText()
    render(out)
    return out.utf8("test")


@pytest.mark.parametrize("value", AWKWARD)
def test_a_leaf_and_its_attributes_are_written_as_lxml_writes_them(value):
    def build():
        el = etree.Element("product", {"supplier-reference": value, "source": "shop:x"})
        etree.SubElement(el, "name", lang=value).text = value
        etree.SubElement(el, "category", {"supplier-reference": value})
        return el

    def render(out):
        out.open("product", attributes({"supplier-reference": value, "source": "shop:x"}))
        out.field("name", value, attributes({"lang": value}))
        out.empty("category", attributes({"supplier-reference": value}))
        out.close()

    assert _ours(render) == _lxml(build)


def test_nesting_empty_elements_and_typed_values_match_lxml():
    values = [Decimal("19.900000"), 3, True, False, None, datetime(2024, 1, 2, 3, 4, 5), "x&y"]
    names = [f"f{i}" for i in range(len(values))]

    def build():
        el = etree.Element("product")
        for name, value in zip(names, values, strict=True):
            etree.SubElement(el, name).text = text(value)
        combo = etree.SubElement(el, "combination")
        group = etree.SubElement(combo, "attributeGroup", {"a": "1"})
        etree.SubElement(group, "name", lang="en").text = "Size"
        etree.SubElement(group, "name", lang="fr").text = "Taille"
        etree.SubElement(combo, "stock")  # an element opened that gets no child
        return el

    def render(out):
        out.open("product")
        out.fields(names, values)
        out.open("combination")
        out.open("attributeGroup", attributes({"a": "1"}))
        out.translated(("name",), [(attributes({"lang": "en"}), ("Size",)),
                                   (attributes({"lang": "fr"}), ("Taille",))])  # fmt: skip
        out.close()
        out.open("stock")
        out.close()
        out.close()
        out.close()

    ours = _ours(render)
    assert ours == _lxml(build)
    assert b"<f1>3</f1>" in ours and b"<f4></f4>" in ours and b"2024-01-02 03:04:05" in ours


def test_parsing_the_text_gives_back_every_value():
    out = XmlText()
    out.open("product", attributes({"supplier-reference": 'R"1'}))
    for value in AWKWARD:
        out.field("name", value)
    out.open("stock")
    out.field("quantity", "7")
    out.close()
    out.close()
    el = parse(out.utf8("test"))
    assert el.get("supplier-reference") == 'R"1'
    assert [n.text or "" for n in el.iterfind("name")] == AWKWARD  # "\r" too, as &#13;
    assert el.find("stock").text is None  # no indentation left as text
    assert el.findtext("stock/quantity") == "7"


@pytest.mark.parametrize("bad", ["\x00", "\x0b", "\x1f", "\ufffe", "\ud800"])
def test_a_character_xml_cannot_carry_is_refused_with_what_holds_it(bad):
    out = XmlText()
    out.open("product")
    out.field("name", f"bad{bad}name")
    out.close()
    with pytest.raises(NotXmlText, match="product 42: a value holds"):
        out.utf8("product 42")


def test_an_unclosed_element_is_a_programming_error():
    out = XmlText()
    out.open("product")
    with pytest.raises(RuntimeError, match="unclosed element <product>"):
        out.utf8("product 1")
