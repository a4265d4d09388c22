"""XSLT: what a stylesheet declares, the sandbox, and the record-wise join (chunk by chunk output
equal to the whole-document output), on small stylesheets and hand-made native entities."""

from __future__ import annotations

import io
import re

import pytest
from lxml import etree

from impexmod.entities import Descriptor
from impexmod.entities.xmltext import attributes
from impexmod.export import stylesheets
from impexmod.export.stylesheets import InvalidStylesheet
from impexmod.export.writers import WriterSetup
from impexmod.export.xslt import (
    InputTooLarge,
    StylesheetFailed,
    XsltWriter,
    make_spec,
)

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"'
    ' xmlns:impexmod="urn:impexmod:xslt" exclude-result-prefixes="impexmod"{attrs}>\n'
)
PARAMS = {"language": "en", "currency": "EUR", "shop-url": "https://shop.test"}


def xsl(body: str, attrs: str = "") -> bytes:
    """A stylesheet around ``body``."""
    return (HEAD.format(attrs=attrs) + body + "\n</xsl:stylesheet>\n").encode()


class Products(Descriptor):
    """A descriptor of hand-made products, rendered as the real ones are."""

    element = "product"

    def record_id(self, record):
        return record[0]

    def render(self, ctx, record, out):
        ref, name, price = record
        out.open("product", attributes({"supplier-reference": ref, "source": "shop:t"}))
        out.field("reference", ref)
        out.field("name", name, attributes({"lang": "en"}))
        out.field("price", price)
        out.close()


def products(n: int) -> list[tuple[str, str, str]]:
    # Names with what CSV and XML must escape.
    return [(f"R{i}", f'Name "{i}"; <b>&</b>', f"{i}.500000") for i in range(n)]


def run(spec, records, *, chunk_size=3, limit=10**9, deletes=()) -> bytes:
    """The bytes an XsltWriter writes for these records (and deletions)."""
    out = io.BytesIO()
    setup = WriterSetup(entity="products", root={"generator": "impexmod", "source": "shop:t"})
    writer = XsltWriter(
        out, setup, spec, chunk_size=chunk_size, max_input_bytes=limit, params=PARAMS
    )
    with writer as w:
        for record in records:
            w.write_record(Products(), None, record)
        for key in deletes:
            w.write_delete(Products(), key)
    return out.getvalue()


def both(content: bytes, records, chunk_size=3) -> tuple[bytes, bytes]:
    """(record-wise output, whole-document output) of one stylesheet."""
    chunked = run(make_spec("t", content, record_wise=True), records, chunk_size=chunk_size)
    spec = make_spec("t", content)
    spec.record_wise = False  # as if it did not say it was
    whole = run(spec, records, chunk_size=1)  # the chunk size must not matter then
    return chunked, whole


CSV = xsl(
    """<xsl:output method="text" encoding="UTF-8" media-type="text/csv"/>
<xsl:param name="first-chunk" select="'1'"/>
<xsl:template match="/">
  <xsl:if test="$first-chunk = '1'">reference,name&#10;</xsl:if>
  <xsl:for-each select="advancedimporter/product">
    <xsl:value-of select="concat(reference, ',', name, '&#10;')"/>
  </xsl:for-each>
</xsl:template>""",
    ' impexmod:record-wise="true"',
)

RSS = xsl(
    """<xsl:output method="xml" encoding="UTF-8" indent="{indent}"/>
<xsl:param name="shop-url"/>
<xsl:template match="/">
  <rss version="2.0"><channel>
    <title><xsl:value-of select="$shop-url"/></title>
    <xsl:for-each select="advancedimporter/product">
      <item><id><xsl:value-of select="reference"/></id>
        <name><xsl:value-of select="name"/></name></item>
    </xsl:for-each>
  </channel></rss>
</xsl:template>""",
    ' impexmod:record-wise="true" impexmod:record-container="channel"',
)


# ------------------------------------------------------------------ what a stylesheet declares


@pytest.mark.parametrize(
    ("output", "method", "ext"),
    [
        ('<xsl:output method="xml"/>', "xml", "xml"),
        ("", "xml", "xml"),
        ('<xsl:output method="text" media-type="text/csv"/>', "text", "csv"),
        ('<xsl:output method="text" media-type="text/tab-separated-values"/>', "text", "tsv"),
        ('<xsl:output method="text"/>', "text", "txt"),
        ('<xsl:output method="html"/>', "html", "html"),
        ('<xsl:output method="text"/><xsl:output media-type="text/csv"/>', "text", "csv"),
    ],
)
def test_the_extension_follows_xsl_output(output, method, ext):
    found = stylesheets.check(xsl(output + '<xsl:template match="/"/>'))
    assert (found.method, found.ext, found.record_wise) == (method, ext, False)


def test_record_wise_and_the_record_container_are_declared_on_the_stylesheet():
    found = stylesheets.check(RSS.replace(b"{indent}", b"yes"))
    assert found.record_wise is True
    assert found.container == "channel"
    namespaced = xsl(
        '<xsl:template match="/"/>',
        ' xmlns:g="urn:g" impexmod:record-wise="1" impexmod:record-container="g:items"',
    )
    assert stylesheets.check(namespaced).container == "{urn:g}items"
    with pytest.raises(InvalidStylesheet, match="prefix x is not declared"):
        stylesheets.check(xsl('<xsl:template match="/"/>', ' impexmod:record-container="x:a"'))
    with pytest.raises(InvalidStylesheet, match="true or false"):
        stylesheets.check(xsl('<xsl:template match="/"/>', ' impexmod:record-wise="maybe"'))


def test_outputs_the_feed_url_cannot_announce_are_refused():
    with pytest.raises(InvalidStylesheet, match="encoding 'ISO-8859-1'"):
        stylesheets.check(xsl('<xsl:output method="text" encoding="ISO-8859-1"/>'))
    with pytest.raises(InvalidStylesheet, match="method 'pdf'"):
        stylesheets.check(xsl('<xsl:output method="pdf"/>'))


# ------------------------------------------------------------------ refused when saved


def test_a_stylesheet_that_does_not_compile_is_refused_with_its_line():
    broken = xsl(
        """<xsl:template match="/">
  <xsl:value-of select="1 +"/>
</xsl:template>"""
    )
    with pytest.raises(InvalidStylesheet) as caught:
        stylesheets.check(broken)
    assert caught.value.line == 4  # the stylesheet's 4th line: the value-of
    assert "line 4" in caught.value.message
    assert "could not compile select expression '1 +'" in caught.value.message


def test_a_stylesheet_that_is_not_well_formed_is_refused_with_its_line():
    with pytest.raises(InvalidStylesheet, match="not well-formed XML.*line 4") as caught:
        stylesheets.check(xsl('<xsl:template match="/">\n<a></b></xsl:template>'))
    assert caught.value.line == 4


def test_an_external_entity_in_the_stylesheet_is_refused_and_never_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    doctype = f'<!DOCTYPE xsl:stylesheet [<!ENTITY e SYSTEM "file://{secret}">]>\n'
    content = xsl('<xsl:output method="text"/><xsl:template match="/">&e;</xsl:template>')
    content = content.replace(b"?>\n", b"?>\n" + doctype.encode(), 1)
    with pytest.raises(InvalidStylesheet, match="DOCTYPE") as caught:
        stylesheets.check(content)
    assert "TOP-SECRET" not in caught.value.message


@pytest.mark.parametrize(
    ("element", "why"),
    [
        ('<xsl:import href="other.xsl"/>', "xsl:import reads"),
        ('<xsl:include href="/etc/passwd"/>', "xsl:include reads"),
        (
            '<xsl:template match="/"><xsl:result-document href="out.txt">x'
            "</xsl:result-document></xsl:template>",
            "xsl:result-document writes",
        ),
        (
            '<xsl:template match="/"><exsl:document xmlns:exsl="http://exslt.org/common" '
            'href="out.txt">x</exsl:document></xsl:template>',
            "exsl:document writes",
        ),
    ],
)
def test_stylesheets_that_read_or_write_other_files_are_refused(element, why):
    with pytest.raises(InvalidStylesheet, match=why) as caught:
        stylesheets.check(xsl("\n" + element))
    assert caught.value.line == 4


# ------------------------------------------------------------------ the sandbox at run time


def test_document_cannot_read_a_file_at_run_time():
    spec = make_spec(
        "reader",
        xsl(
            '<xsl:output method="text"/>\n<xsl:template match="/">'
            "<xsl:value-of select=\"document('file:///etc/passwd')\"/></xsl:template>"
        ),
    )
    with pytest.raises(StylesheetFailed) as caught:
        run(spec, products(2))
    message = str(caught.value)
    assert "stylesheet reader failed at line 4" in message
    assert "file:///etc/passwd refused" in message
    assert "root:" not in message


def test_writes_are_denied_at_run_time_even_past_the_upload_check(tmp_path):
    # The compiled sandbox itself, without the upload check: the write must still be refused.
    target = tmp_path / "written.txt"
    tree = etree.fromstring(
        xsl(
            f'<xsl:template match="/"><exsl:document href="{target}" method="text">x'
            "</exsl:document></xsl:template>",
            ' xmlns:exsl="http://exslt.org/common" extension-element-prefixes="exsl"',
        )
    ).getroottree()
    compiled = etree.XSLT(tree, access_control=stylesheets.ACCESS)
    with pytest.raises(etree.XSLTApplyError, match="write rights"):
        compiled(etree.fromstring(b"<advancedimporter/>"))
    assert not target.exists()


def test_no_extension_functions_are_available():
    spec = make_spec(
        "ext",
        xsl(
            '<xsl:output method="text"/><xsl:template match="/">'
            '<xsl:value-of select="py:run(1)" xmlns:py="urn:python"/></xsl:template>'
        ),
    )
    with pytest.raises(StylesheetFailed, match="Unregistered function"):
        run(spec, products(1))


# ------------------------------------------------------------------ record-wise and whole


@pytest.mark.parametrize(("count", "chunk_size"), [(0, 3), (1, 3), (7, 3), (6, 3), (5, 1)])
def test_text_output_chunk_by_chunk_equals_the_whole_document(count, chunk_size):
    chunked, whole = both(CSV, products(count), chunk_size)
    assert chunked == whole
    lines = whole.decode().splitlines()
    assert lines[0] == "reference,name"  # the header once, from the first chunk
    assert len(lines) == count + 1


def test_each_chunk_is_a_native_document_of_at_most_chunk_size_entities():
    counter = xsl(
        """<xsl:output method="text"/>
<xsl:template match="/">
  <xsl:value-of select="concat(count(/advancedimporter/*), ':', /advancedimporter/@source, ' ')"/>
</xsl:template>""",
        ' impexmod:record-wise="true"',
    )
    spec = make_spec("count", counter)
    assert run(spec, products(7), chunk_size=3) == b"3:shop:t 3:shop:t 1:shop:t "
    # Deletions are entities too: native <delete> elements, in the chunks.
    deletes = [("D1", "supplier:Acme"), ("D2", "shop:t")]
    assert run(spec, products(2), chunk_size=3, deletes=deletes) == b"3:shop:t 1:shop:t "
    spec.record_wise = False  # a whole-document stylesheet sees every entity at once
    assert run(spec, products(7), chunk_size=3) == b"7:shop:t "


def test_deletions_reach_the_stylesheet_as_native_delete_elements():
    lister = xsl(
        """<xsl:output method="text"/>
<xsl:template match="/"><xsl:for-each select="advancedimporter/delete">
  <xsl:value-of select="concat(@type, ' ', @supplier-reference, ' ', @source, ';')"/>
</xsl:for-each></xsl:template>""",
        ' impexmod:record-wise="true"',
    )
    out = run(make_spec("del", lister), [], deletes=[("D1", "supplier:Acme")])
    assert out == b"product D1 supplier:Acme;"


@pytest.mark.parametrize("indent", ["yes", "no"])
@pytest.mark.parametrize("count", [0, 1, 4, 9])
def test_xml_output_chunk_by_chunk_equals_the_whole_document(indent, count):
    content = RSS.replace(b"{indent}", indent.encode())
    chunked, whole = both(content, products(count), chunk_size=4)
    assert chunked == whole
    root = etree.fromstring(whole)
    assert root.findtext("channel/title") == "https://shop.test"
    assert [i.findtext("id") for i in root.iter("item")] == [f"R{i}" for i in range(count)]
    assert root.findtext("channel/item/name") in (None, 'Name "0"; <b>&</b>')


def test_the_document_element_is_the_default_record_container():
    content = xsl(
        """<xsl:output method="xml" indent="yes"/>
<xsl:template match="/"><items><xsl:apply-templates select="advancedimporter/product"/></items>
</xsl:template>
<xsl:template match="product"><item ref="{reference}"/></xsl:template>""",
        ' impexmod:record-wise="true"',
    )
    chunked, whole = both(content, products(5), chunk_size=2)
    assert chunked == whole
    assert len(etree.fromstring(whole)) == 5


def test_html_runs_on_the_whole_document_only():
    content = xsl(
        """<xsl:output method="html" indent="yes"/>
<xsl:template match="/"><html><body><table>
<xsl:for-each select="advancedimporter/product"><tr><td><xsl:value-of select="reference"/></td></tr>
</xsl:for-each></table></body></html></xsl:template>"""
    )
    spec = make_spec("h", content)
    assert (spec.ext, spec.record_wise) == ("html", False)
    assert run(spec, products(5)).count(b"<td>") == 5
    # libxml2 indents HTML by its surroundings: chunks would not join byte for byte.
    with pytest.raises(InvalidStylesheet, match="record-wise stylesheet writes xml or text"):
        make_spec("h", content, record_wise=True)


@pytest.mark.parametrize(
    "record",
    ['<xsl:value-of select="reference"/>', "<xsl:text> </xsl:text><item/>"],
    ids=["text", "whitespace"],
)
def test_a_container_holding_text_cannot_be_joined(record):
    content = xsl(
        f"""<xsl:output method="xml" indent="yes"/>
<xsl:template match="/"><list>
  <xsl:for-each select="advancedimporter/product">{record}</xsl:for-each></list>
</xsl:template>""",
        ' impexmod:record-wise="true"',
    )
    with pytest.raises(StylesheetFailed, match="<list> holds text in its output for chunk 1"):
        run(make_spec("t", content), products(2))


def test_what_is_not_a_record_must_come_before_the_records():
    content = xsl(
        """<xsl:output method="xml"/>
<xsl:template match="/"><list><first/>
  <xsl:for-each select="advancedimporter/product"><item/></xsl:for-each><last/></list>
</xsl:template>""",
        ' impexmod:record-wise="true"',
    )
    with pytest.raises(StylesheetFailed, match="before the records"):
        run(make_spec("t", content), products(2))


def test_a_missing_record_container_is_reported():
    content = RSS.replace(b"{indent}", b"yes").replace(b'container="channel"', b'container="x"')
    with pytest.raises(StylesheetFailed, match=r"no record container \(x\)"):
        run(make_spec("t", content), products(2))


# ------------------------------------------------------------------ the whole-document limit


def test_a_whole_document_stylesheet_is_refused_past_the_size_limit():
    spec = make_spec("big", CSV)
    spec.record_wise = False
    with pytest.raises(InputTooLarge) as caught:
        run(spec, products(50), limit=1000)
    message = str(caught.value)
    assert "limit of 1000 bytes (IMPEXMOD_XSLT_MAX_INPUT_BYTES)" in message
    size = int(re.search(r": (\d+) bytes after", message).group(1))
    assert size > 1000
    # Under the limit, the same stylesheet runs.
    assert run(spec, products(2), limit=100_000).startswith(b"reference,name\n")
