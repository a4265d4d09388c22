"""The flat vocabulary both directions share: columns of CSV and XLSX rows.

A header is a column name; a translated column is ``name[en]`` (``name`` alone fills every
language). Keys are supplier references: ``supplier_reference`` with ``source`` for the row's
entity, and ``<link>`` with ``<link>_source`` for the entities it points at (the row's ``source``
when absent; ``categories_source`` for the keys in ``categories``). Lists (``categories``,
``tags``, ``images``, ``categorypath``) are separated by ``|``; ``attributes`` reads
``Group:Value|Group:Value``. Each entity spec lists its own columns (``flat_columns``); the
importer (:mod:`impexmod.importing.columns`) and the flat exports
(:mod:`impexmod.export.flatten`) read them from there.
"""

from __future__ import annotations

from dataclasses import dataclass

SEPARATOR = "|"


@dataclass(frozen=True)
class FlatColumn:
    """One column: its header, what it holds, and for links the entity it points at."""

    name: str
    role: str  # key | source | value | lang | link | list | quantity | option
    target: str | None = None  # for links and lists: the kind pointed at


def values(*names: str) -> tuple[FlatColumn, ...]:
    """Plain value columns."""
    return tuple(FlatColumn(n, "value") for n in names)


def langs(*names: str) -> tuple[FlatColumn, ...]:
    """Translated columns (``name[en]``)."""
    return tuple(FlatColumn(n, "lang") for n in names)


# Columns an entity is matched by when a row has no supplier reference (first one present).
MATCHED_BY = ("reference", "ean13", "upc")
# The address columns of a flat order row (``delivery_city``, ``invoice_city``...).
ADDRESS_COLUMNS = ("firstname", "lastname", "company", "address1", "address2", "postcode")
ADDRESS_COLUMNS += ("city", "country_iso", "phone")
KEY = (FlatColumn("supplier_reference", "key"), FlatColumn("source", "source"))
# The links of what belongs to a product or to one of its combinations (stock, prices).
PRODUCT_LINKS = (
    FlatColumn("product", "link", "product"),
    FlatColumn("combination", "link", "combination"),
)
# Native field behind a link column.
LINK_FIELDS = {
    "manufacturer": "id_manufacturer",
    "manufacturer_name": "id_manufacturer",
    "category_default": "id_category_default",
    "parent": "id_parent",
    "product": "id_product",
    "combination": "id_product_attribute",
}
