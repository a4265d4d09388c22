"""The JSON object of one entity, read off its native element.

Keys are the native field names; an entity's key is ``supplier_reference`` and ``source``;
a link is an object ``{"supplier_reference", "source"}`` named after what it points at
(``id_manufacturer`` -> ``manufacturer``); translated fields are objects by language
(``{"en": ..., "fr": ...}``); nested entities are lists (``combinations``, ``categories``,
``images``, ``specific_prices``, ...). Booleans are ``true``/``false``, whole numbers are
numbers, decimals are strings (exact: ``"19.90"``, never a rounded float), empty is ``null``.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import Any

from lxml import etree

from impexmod.entities import derived
from impexmod.export.flatten import plain_decimal

# Element -> the tables typing its fields, and per parent element, nested element -> the list it
# goes in: from the entity specs (``object_tables``, ``object_lists``).
TABLES = derived.OBJECT_TABLES
LISTS = derived.OBJECT_LISTS
# Link and identifier fields -> the key they are written under.
NAMES = {
    "id_manufacturer": "manufacturer",
    "id_category_default": "category_default",
    "id_parent": "parent",
    "id_product": "product",
    "id_product_attribute": "combination",
    "id_customer": "customer",
    "product_id": "product",
    "product_attribute_id": "combination",
    "id_lang": "lang",
    "id_order_state": "state",
}


@cache
def _kinds(tag: str) -> dict[str, type]:
    kinds: dict[str, type] = {}
    for table in TABLES.get(tag, ()):
        for column in table.columns:
            try:
                kinds.setdefault(column.name, column.type.python_type)
            except NotImplementedError:  # pragma: no cover
                pass
    kinds["quantity"] = int
    return kinds


def value(tag: str, field: str, text: str | None) -> Any:
    """A field's native text as a JSON value, by the type of its column."""
    if text is None or text == "":
        return None
    kind = _kinds(tag).get(field, str)
    if kind is bool:
        return text not in ("0", "false")
    if kind is int:
        return int(text)
    if kind is Decimal:
        return format(plain_decimal(text), "f")
    return text


def element_object(el: etree._Element) -> dict[str, Any]:
    """The JSON object of a native entity element (and of everything nested in it)."""
    tag = el.tag
    out: dict[str, Any] = {}
    for name, attr in el.attrib.items():
        out[{"supplier-reference": "supplier_reference"}.get(name, name)] = attr
    lists = LISTS.get(tag, {})
    # Nested entities come after the fields, always present, in a fixed order.
    nested: dict[str, Any] = {key: [] for key in lists.values()}
    if tag in ("product", "combination"):
        nested = {"stock": None, **nested}
    if tag == "product":
        nested = {"categories": [], "tags": {}, **nested}
    for child in el:
        name = child.tag
        if name in lists:
            nested[lists[name]].append(element_object(child))
        elif tag == "product" and name == "tag":
            nested["tags"].setdefault(child.get("lang"), []).append(child.text)
        elif name == "stock":
            nested["stock"] = {"quantity": value("stock", "quantity", child.findtext("quantity"))}
        elif child.get("supplier-reference") is not None:
            key = NAMES.get(name, name)
            if child.text:
                out[key] = {"supplier_reference": child.text, "source": child.get("source")}
            else:
                out[key] = None
        elif child.get("identifier") is not None:
            out[NAMES.get(name, name)] = child.text or None
        elif child.get("lang") is not None:
            translated = out.setdefault(name, {})
            translated[child.get("lang")] = value(tag, name, child.text)
        else:
            out[name] = value(tag, name, child.text)
    out.update(nested)
    return out


def deletion_object(key: tuple[str, str]) -> dict[str, Any]:
    """What a deleted entity is in a JSON feed."""
    return {"deleted": True, "supplier_reference": key[0], "source": key[1]}
