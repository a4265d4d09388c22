"""Native elements written straight as text, byte for byte as lxml's pretty printer writes them.

Building an lxml tree of a hundred-odd nodes per product and serialising it cost most of a full
export; joining strings costs a fraction. Descriptors render into an :class:`XmlText`; the native
XML writer writes its bytes as they are, and the formats that read the element (JSON, flat
files, XSLT) parse them back (:func:`parse`), so there is one definition of what an entity
looks like. ``tests/unit/test_xmltext.py`` holds the output to lxml's, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from lxml import etree

INDENTS = tuple("  " * depth for depth in range(64))
# Our own text, parsed back into elements: no entities, no network, the indentation dropped
# (an element with children gets no text, as a built one had none).
PARSER = etree.XMLParser(
    remove_blank_text=True, resolve_entities=False, no_network=True, huge_tree=True
)
# Control characters XML 1.0 cannot carry, as UTF-8 bytes (tab, newline and return it can).
_CONTROL = bytes(c for c in range(32) if c not in (9, 10, 13))
_NONCHARACTERS = ("\ufffe".encode(), "\uffff".encode())


class NotXmlText(ValueError):
    """A value holds a character that XML cannot carry."""


def escape(value: str) -> str:
    """Text content escaped as libxml2 writes it."""
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    if "\r" in value:
        value = value.replace("\r", "&#13;")
    return value


def quote(value: str) -> str:
    """An attribute value, quoted and escaped as libxml2 writes it."""
    value = escape(value)
    if '"' in value:
        value = value.replace('"', "&quot;")
    if "\n" in value:
        value = value.replace("\n", "&#10;")
    if "\t" in value:
        value = value.replace("\t", "&#9;")
    return f'"{value}"'


def attributes(attrs: dict[str, str] | None) -> str:
    """`` a="1" b="2"``: attributes as they follow a tag name."""
    if not attrs:
        return ""
    return "".join([f" {name}={quote(value)}" for name, value in attrs.items()])


def key_attributes(key: tuple[str, str]) -> str:
    """The attributes of an element that carries or links a key."""
    return f" supplier-reference={quote(key[0])} source={quote(key[1])}"


# ------------------------------------------------------------------------------ field values


def _float(value: float) -> str:
    return format(Decimal(str(value)), "f")


# Converters by exact type: one dict lookup per value instead of a chain of isinstance tests
# (a product converts about 60 values). isoformat writes what strftime("%Y-%m-%d %H:%M:%S")
# writes on naive datetimes, several times faster.
TEXT = {
    str: str,
    int: str,
    bool: lambda v: "1" if v else "0",
    Decimal: lambda v: format(v, "f"),
    float: _float,
    datetime: lambda v: v.isoformat(" ", "seconds"),
    type(None): lambda v: "",
}
# The same, escaped for XML: only text can hold what needs escaping.
_XML = {**TEXT, str: escape}


def text(value: Any) -> str:
    """A field value as native XML text (decimals plain, booleans 0/1, PrestaShop dates)."""
    convert = TEXT.get(type(value))
    if convert is not None:
        return convert(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return _float(value)
    return str(value)


def _xml(value: Any) -> str:
    return escape(text(value))


# ------------------------------------------------------------------------------ the writer


class XmlText:
    """One element (and its descendants) being written as indented XML text.

    ``open``/``close`` bracket an element with children, ``field`` writes a leaf with text,
    ``empty`` a leaf without; ``attrs`` are written as they are (see :func:`attributes`).
    """

    __slots__ = ("_parts", "_stack", "_pending")

    def __init__(self):
        self._parts: list[str] = []
        self._stack: list[str] = []
        self._pending = False  # the last open tag has no child yet (its ">" is not written)

    def open(self, tag: str, attrs: str = "") -> None:
        """Start an element that will have children."""
        parts = self._parts
        if self._pending:
            parts.append(">\n")
        parts.append(f"{INDENTS[len(self._stack)]}<{tag}{attrs}")
        self._stack.append(tag)
        self._pending = True

    def close(self) -> None:
        """End the innermost open element (``<tag/>`` if it got no child)."""
        tag = self._stack.pop()
        if self._pending:
            self._parts.append("/>\n")
            self._pending = False
        else:
            self._parts.append(f"{INDENTS[len(self._stack)]}</{tag}>\n")

    def field(self, tag: str, text: str, attrs: str = "") -> None:
        """A leaf element with text (``<tag></tag>`` when the text is empty)."""
        parts = self._parts
        if self._pending:
            parts.append(">\n")
            self._pending = False
        parts.append(f"{INDENTS[len(self._stack)]}<{tag}{attrs}>{escape(text)}</{tag}>\n")

    def empty(self, tag: str, attrs: str = "") -> None:
        """A leaf element without text: ``<tag a="1"/>``."""
        parts = self._parts
        if self._pending:
            parts.append(">\n")
            self._pending = False
        parts.append(f"{INDENTS[len(self._stack)]}<{tag}{attrs}/>\n")

    def fields(self, names: Iterable[str], values: Iterable[Any], attrs: str = "") -> None:
        """One leaf per name and value, the value converted to native text."""
        parts = self._parts
        if self._pending:
            parts.append(">\n")
            self._pending = False
        indent, convert = INDENTS[len(self._stack)], _XML.get
        for tag, value in zip(names, values, strict=True):
            xml = convert(type(value), _xml)(value)
            parts.append(f"{indent}<{tag}{attrs}>{xml}</{tag}>\n")

    def translated(self, names: Iterable[str], rows: list[tuple[str, tuple]]) -> None:
        """Each field of ``names`` once per (attributes, values) row: translations, in order."""
        parts = self._parts
        if self._pending:
            parts.append(">\n")
            self._pending = False
        indent, convert = INDENTS[len(self._stack)], _XML.get
        for i, tag in enumerate(names):
            for attrs, values in rows:
                value = values[i]
                xml = convert(type(value), _xml)(value)
                parts.append(f"{indent}<{tag}{attrs}>{xml}</{tag}>\n")

    def utf8(self, what: str) -> bytes:
        """The whole element as UTF-8, once closed; NotXmlText (naming ``what``) if it holds a
        character that XML cannot carry."""
        if self._stack:
            raise RuntimeError(f"unclosed element <{self._stack[-1]}>")
        return checked("".join(self._parts), what)


def checked(text: str, what: str) -> bytes:
    """``text`` as UTF-8, or NotXmlText if it holds a character that XML cannot carry."""
    try:
        data = text.encode()
    except UnicodeEncodeError:  # a lone surrogate
        raise NotXmlText(
            f"{what}: a value holds a lone surrogate, which XML cannot carry"
        ) from None
    if len(data.translate(None, _CONTROL)) != len(data) or any(n in data for n in _NONCHARACTERS):
        bad = next(c for c in text if c in _CONTROL.decode() or c in "\ufffe\uffff")
        raise NotXmlText(
            f"{what}: a value holds the character U+{ord(bad):04X}, which XML cannot carry; "
            "correct it in the catalog"
        )
    return data


def parse(data: bytes) -> etree._Element:
    """The element of a rendered entity."""
    return etree.fromstring(data, PARSER)
