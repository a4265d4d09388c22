"""The canonical flat columns of each entity, for CSV and XLSX (one place, for the importer
here and for the flat exports to come).

A header is a column name; a translated column is ``name[en]`` (``name`` alone fills every
language). Keys are supplier references: ``supplier_reference`` with ``source`` for the row's
entity, and ``<link>`` with ``<link>_source`` for the entities it points at (the row's ``source``
when absent; ``categories_source`` for the keys in ``categories``). Lists (``categories``,
``tags``, ``images``, ``categorypath``) are separated by ``|``; ``attributes`` reads
``Group:Value|Group:Value``.
"""

from __future__ import annotations

from dataclasses import dataclass

from impexmod.importing.errors import ImportRefused, RowError

SEPARATOR = "|"
# Unknown headers are named in warnings only when the file has a known column too (a file with
# none is not this entity's: its first line may be anything, a password file or a web page),
# and then no more of them than this, each cut to MAX_HEADER_SHOWN characters.
MAX_UNKNOWN_LISTED = 20
MAX_HEADER_SHOWN = 60


@dataclass(frozen=True)
class FlatColumn:
    """One column: its header, what it holds, and for links the entity it points at."""

    name: str
    role: str  # key | source | value | lang | link | list | quantity | option
    target: str | None = None  # for links and lists: the kind pointed at


def _values(*names: str) -> tuple[FlatColumn, ...]:
    return tuple(FlatColumn(n, "value") for n in names)


def _langs(*names: str) -> tuple[FlatColumn, ...]:
    return tuple(FlatColumn(n, "lang") for n in names)


KEY = (FlatColumn("supplier_reference", "key"), FlatColumn("source", "source"))

FLAT_COLUMNS: dict[str, tuple[FlatColumn, ...]] = {
    "products": KEY
    + _values("reference", "ean13", "upc", "isbn", "mpn")
    + _langs("name", "description", "description_short", "link_rewrite")
    + _values(
        "price",
        "wholesale_price",
        "ecotax",
        "weight",
        "width",
        "height",
        "depth",
        "active",
        "condition",
        "visibility",
        "id_tax_rules_group",
    )
    + (
        FlatColumn("manufacturer", "link", "manufacturer"),
        FlatColumn("manufacturer_name", "link", "manufacturer"),
        FlatColumn("category_default", "link", "category"),
        FlatColumn("categories", "list", "category"),
        FlatColumn("categorypath", "list", "categorypath"),
        FlatColumn("tags", "list", "tag"),
        FlatColumn("images", "list", "image"),
        FlatColumn("quantity", "quantity"),
        FlatColumn("tax", "option"),
    ),
    "combinations": KEY
    + (FlatColumn("product", "link", "product"),)
    + _values("reference", "ean13", "upc", "isbn", "mpn", "price", "wholesale_price", "ecotax")
    + _values("weight", "default_on")
    + (
        FlatColumn("attributes", "list", "attribute"),
        FlatColumn("images", "list", "image"),
        FlatColumn("quantity", "quantity"),
    ),
    "categories": KEY
    + (FlatColumn("parent", "link", "category"),)
    + _langs("name", "description", "link_rewrite")
    + _values("active", "position", "is_root_category"),
    "tags": KEY + (FlatColumn("lang", "option"),) + _langs("name"),
    "specific_prices": KEY
    + (
        FlatColumn("product", "link", "product"),
        FlatColumn("combination", "link", "combination"),
    )
    + _values(
        "id_shop",
        "id_currency",
        "id_country",
        "id_group",
        "id_customer",
        "price",
        "from_quantity",
        "reduction",
        "reduction_tax",
        "reduction_type",
        "from",
        "to",
    ),
    "stock": KEY
    + (
        FlatColumn("product", "link", "product"),
        FlatColumn("combination", "link", "combination"),
        FlatColumn("reference", "value"),
        FlatColumn("ean13", "value"),
        FlatColumn("upc", "value"),
        FlatColumn("quantity", "value"),
        FlatColumn("mode", "option"),
        FlatColumn("out_of_stock", "value"),
    ),
}

# Native element and change-log kind of each flat entity.
ELEMENT = {
    "products": "product",
    "combinations": "combination",
    "categories": "category",
    "tags": "tag",
    "specific_prices": "specificPrice",
    "stock": "stock",
}
# Native field behind a link column.
LINK_FIELDS = {
    "manufacturer": "id_manufacturer",
    "manufacturer_name": "id_manufacturer",
    "category_default": "id_category_default",
    "parent": "id_parent",
    "product": "id_product",
    "combination": "id_product_attribute",
}
# Columns an entity is matched by when a row has no supplier reference (first one present).
IDENTIFIERS = {
    "products": ("reference", "ean13", "upc"),
    "combinations": ("reference", "ean13", "upc"),
    "stock": ("reference", "ean13", "upc"),
}


def column(entity: str, header: str) -> tuple[FlatColumn, str | None] | None:
    """The column a header names (with its language, for ``name[en]``), or None."""
    name, lang = header.strip(), None
    if name.endswith("]") and "[" in name:
        name, lang = name[:-1].split("[", 1)
    for col in FLAT_COLUMNS[entity]:
        # Links, and the category keys of ``categories``, may say whose keys they are.
        sourced = col.role == "link" or col.name == "categories"
        if col.name == name or (sourced and name == f"{col.name}_source"):
            if lang is not None and col.role not in ("lang", "list"):
                return None
            return col, lang
    return None


def headers(entity: str, languages: list[str]) -> list[str]:
    """Every canonical header of an entity, translated columns once per language."""
    out = []
    for col in FLAT_COLUMNS[entity]:
        if col.role == "lang" and languages:
            out.extend(f"{col.name}[{iso}]" for iso in languages)
        else:
            out.append(col.name)
    return out


def shown(header: str) -> str:
    """A header as a warning quotes it: on one line, at most ``MAX_HEADER_SHOWN`` characters."""
    text = " ".join(header.split())
    return text if len(text) <= MAX_HEADER_SHOWN else text[: MAX_HEADER_SHOWN - 1] + "…"


def check_header(entity: str, label: str, unknown: list[str], known: int) -> list[RowError]:
    """Warnings for the ``unknown`` headers of a file with ``known`` known columns, or
    ImportRefused, quoting nothing, when it has none (the file is not one of ``entity``)."""
    named = [c for c in unknown if c.strip()]
    if not known:
        kind = "XLSX file" if label.lower().endswith(".xlsx") else "CSV"
        raise ImportRefused(
            f"{label}: none of the {len(named)} columns of the first line is a column of "
            f"{entity}: is this a {entity} {kind}? (the columns are in docs/importing.md; other "
            f"headers need a saved mapping)"
        )
    warnings = [
        RowError(label, 1, "", shown(c), "unknown column; ignored", "warning")
        for c in named[:MAX_UNKNOWN_LISTED]
    ]
    if len(named) > MAX_UNKNOWN_LISTED:
        more = len(named) - MAX_UNKNOWN_LISTED
        warnings.append(
            RowError(label, 1, "", "", f"{more} more unknown columns; ignored", "warning")
        )
    return warnings
