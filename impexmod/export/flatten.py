"""Loaded records as flat rows (column -> value) for CSV, XLSX and field templates.

Rows are read off the native element (``descriptor.build``), so a flat feed says exactly what
the XML feed says. The columns are the importer's (``flat_columns`` of the entity specs), so a
CSV or XLSX exported here imports back unchanged through the flat importer; with three
spellings the importer needs: ``<link>_source`` after each link, ``categories_source`` after
``categories``, and tags per language (``tags[en]``, as a tag is a word of one language).
A tag row has ``lang`` and an unsuffixed ``name``, as the importer reads tags. Orders and
customers are not imported flat: their columns here are for export only.

Values are typed: text (``str``), whole numbers (``int``: booleans are 0/1), decimals
(``Decimal``, exact, at least two decimals: ``19.90``), or None for empty.
"""

from __future__ import annotations

from dataclasses import is_dataclass, replace
from decimal import Decimal
from functools import cache
from typing import Any

from lxml import etree
from sqlalchemy import select

from impexmod.entities import Descriptor, ExportContext, derived
from impexmod.entities.base import resolve_ref
from impexmod.entities.derived import FLAT_COLUMNS, FLAT_ENTITIES
from impexmod.entities.flatvocab import ADDRESS_COLUMNS as ADDRESS
from impexmod.entities.flatvocab import SEPARATOR
from impexmod.messages import msg
from impexmod.models import (
    Manufacturer,
)

ROWS = ("products", "combinations")
COMBINATION = "combination_"  # prefix of the combination columns of ``rows=combinations``
# Columns named after the link element the importer maps them to.
LINKS = {
    "id_manufacturer": "manufacturer",
    "id_category_default": "category_default",
    "id_parent": "parent",
    "id_product": "product",
    "id_product_attribute": "combination",
    "product": "product",
    "combination": "combination",
    "id_customer": "customer",
}
# Tables, export-only columns and row builders of each entity: from its spec.
EXPORT_ONLY = derived.EXPORT_COLUMNS
_TABLES = derived.FLAT_TABLES
MAX_WARNINGS = 10  # products named in the warning about categories of mixed sources
_COUNTS = {"quantity", "addresses"}  # whole numbers that are no table column


class UnknownColumns(ValueError):
    """Fields that a flat row of the entity does not have."""


def _check(entity: str, rows: str) -> None:
    if entity not in FLAT_ENTITIES:
        raise KeyError(f"no flat columns for {entity!r}; choose one of {', '.join(FLAT_ENTITIES)}")
    if rows not in ROWS:
        raise ValueError(
            msg(
                "rows: choose %(one)s or %(other)s, not %(rows)s",
                one=ROWS[0],
                other=ROWS[1],
                rows=repr(rows),
            )
        )
    if rows == "combinations" and entity != "products":
        raise ValueError(msg("rows=combinations is for products exports"))


def _base_columns(entity: str, languages: list[str]) -> list[str]:
    if entity in EXPORT_ONLY:
        return list(EXPORT_ONLY[entity])
    out: list[str] = []
    for col in FLAT_COLUMNS[entity]:
        translated = col.role == "lang" or col.name == "tags"
        if entity == "tags" and col.name == "name":
            translated = False  # the row's ``lang`` says which language it is in
        if translated:
            out.extend([f"{col.name}[{iso}]" for iso in languages] or [col.name])
        elif col.role == "link" and col.name != "manufacturer_name":
            out.extend((col.name, f"{col.name}_source"))
        elif col.name == "categories":
            out.extend(("categories", "categories_source"))
        else:
            out.append(col.name)
    return out


def available_columns(entity: str, languages: list[str], rows: str = "products") -> list[str]:
    """The headers a flat row of that entity has, in order."""
    _check(entity, rows)
    out = _base_columns(entity, list(languages))
    if rows == "combinations":
        own = ("product", "product_source")
        out += [COMBINATION + c for c in _base_columns("combinations", languages) if c not in own]
    return out


def select_columns(
    entity: str, languages: list[str] | None, rows: str, fields: list[str]
) -> list[str]:
    """The columns ``fields`` names, in its order (``name`` is every ``name[xx]``).

    Without ``languages`` only the names are checked, not the languages in brackets.
    """
    all_columns = available_columns(entity, languages or [], rows)
    bases = {c.split("[", 1)[0]: None for c in all_columns}
    out: list[str] = []
    unknown = []
    for field in fields:
        if languages is None:
            found = [field] if field.split("[", 1)[0] in bases else []
        elif field in all_columns:
            found = [field]
        else:
            found = [c for c in all_columns if c.startswith(f"{field}[")]
        if not found:
            unknown.append(field)
        out.extend(c for c in found if c not in out)
    if unknown:
        raise UnknownColumns(", ".join(unknown))
    return out


# ------------------------------------------------------------------------------ value types


@cache
def _kinds(entity: str) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for table in _TABLES[entity]:
        for column in table.columns:
            try:
                python = column.type.python_type
            except NotImplementedError:  # pragma: no cover (every column type here has one)
                continue
            if python in (bool, int):
                kinds.setdefault(column.name, "int")
            elif python is Decimal:
                kinds.setdefault(column.name, "decimal")
    kinds.update(dict.fromkeys(_COUNTS, "int"))
    kinds.pop("id", None)
    if entity == "orders":
        kinds["current_state"] = "text"  # the state's name, not its id
    return kinds


def column_kind(entity: str, column: str) -> str:
    """``int``, ``decimal`` or ``text``: what the values of a flat column are."""
    if entity == "products" and column.startswith(COMBINATION):
        entity, column = "combinations", column[len(COMBINATION) :]
    return _kinds(entity).get(column.split("[", 1)[0], "text")


def plain_decimal(value: Decimal | str) -> Decimal:
    """A decimal without trailing zeros past the second decimal (exact: ``19.900000`` -> 19.90)."""
    text = format(Decimal(value), "f")
    if "." in text:
        whole, part = text.split(".")
        text = f"{whole}.{part.rstrip('0').ljust(2, '0')}"
    return Decimal(text)


def typed(kind: str, text: str | None) -> Any:
    """A native text as the value of a column of that kind (None when empty)."""
    if text is None or text == "":
        return None
    if kind == "int":
        return int(text)
    if kind == "decimal":
        return plain_decimal(text)
    return text


# ------------------------------------------------------------------------------------ rows


def flat_rows(
    descriptor: Descriptor, ctx: ExportContext, record: Any, rows: str = "products"
) -> list[dict[str, Any]]:
    """The flat rows of one loaded record: one, or one per combination with ``rows``."""
    entity = descriptor.name
    _check(entity, rows)
    if entity == "products" and is_dataclass(record):
        # What no flat column shows need not be built (combinations are half the work).
        combinations = record.combinations if rows == "combinations" else []
        record = replace(record, specific_prices=[], combinations=combinations)
    element = descriptor.build(ctx, record)
    languages = tuple(ctx.languages.values())
    base = resolve_ref(derived.ROW_BUILDERS[entity])(ctx, element, record, list(languages))
    row = {
        c: typed(kind, v) if isinstance(v := base.get(c), str) else v
        for c, kind in _typed_columns(entity, languages)
    }
    if rows != "combinations":
        return [row]
    combo_columns = [
        (c, kind)
        for c, kind in _typed_columns("combinations", languages)
        if c not in ("product", "product_source")
    ]
    out = []
    for el in element.findall("combination") or [None]:
        combo = _combination(el, list(languages)) if el is not None else {}
        values = {COMBINATION + c: typed(kind, combo.get(c)) for c, kind in combo_columns}
        out.append({**row, **values})
    return out


@cache
def _typed_columns(entity: str, languages: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((c, column_kind(entity, c)) for c in _base_columns(entity, list(languages)))


def _scalars(element: etree._Element) -> dict[str, Any]:
    """Key attributes, leaf fields, translated fields (``name[en]``) and links of an element."""
    out: dict[str, Any] = {
        "supplier_reference": element.get("supplier-reference"),
        "source": element.get("source"),
    }
    for child in element:
        if len(child):
            continue
        text = child.text or ""
        if child.get("supplier-reference") is not None and text:  # a link to another entity
            name = LINKS.get(child.tag, child.tag)
            out[name], out[f"{name}_source"] = text, child.get("source")
        elif child.get("lang") is not None:
            out[f"{child.tag}[{child.get('lang')}]"] = text
        else:
            out[child.tag] = text
    return out


def _joined(values) -> str | None:
    values = [v for v in values if v]
    return SEPARATOR.join(values) if values else None


def _in_language(element: etree._Element, tag: str, languages: list[str]) -> str:
    texts = {el.get("lang"): el.text or "" for el in element.iterfind(tag)}
    for iso in [*languages, *texts]:
        if texts.get(iso):
            return texts[iso]
    return ""


def product_row(ctx: ExportContext, el: etree._Element, record, languages: list[str]) -> dict:
    row = _scalars(el)
    row["quantity"] = el.findtext("stock/quantity")
    if record.row.id_manufacturer:
        row["manufacturer_name"] = manufacturer_name(ctx, record.row.id_manufacturer)
    categories = [(c.get("supplier-reference"), c.get("source")) for c in el.iterfind("category")]
    if categories:
        # The importer takes one source for the whole list: the default category's, else the
        # first one's. A category keyed by another source cannot be written: say so.
        wanted = row.get("category_default_source") or categories[0][1]
        if wanted not in {s for _, s in categories}:
            wanted = categories[0][1]
        kept = [r for r, s in categories if s == wanted]
        if len(kept) < len(categories):
            _warn_mixed_categories(ctx, row, wanted)
        row["categories"], row["categories_source"] = _joined(kept), wanted
    for iso in languages or [None]:
        tags = [t.text for t in el.iterfind("tag") if iso is None or t.get("lang") == iso]
        row[f"tags[{iso}]" if iso else "tags"] = _joined(tags)
    row["images"] = _joined(i.findtext("url") for i in el.iterfind("image"))
    return row


def _warn_mixed_categories(ctx: ExportContext, row: dict, wanted: str) -> None:
    # A few products named are enough to act on; a warning per product would not be read.
    seen = ctx.cache["mixed_categories"] = ctx.cache.get("mixed_categories", 0) + 1
    if seen <= MAX_WARNINGS:
        more = " (further products like it are not listed)" if seen == MAX_WARNINGS else ""
        ctx.warnings.append(
            f"product {row['supplier_reference']} ({row['source']}): categories keyed by "
            f"another source than {wanted} are not in the flat feed's categories column{more}"
        )


def _combination(el: etree._Element, languages: list[str]) -> dict:
    row = _scalars(el)
    row["quantity"] = el.findtext("stock/quantity")
    pairs = []
    for group in el.iterfind("attributeGroup"):
        group_name = _in_language(group, "name", languages)
        for attribute in group.iterfind("attribute"):
            pairs.append(f"{group_name}:{_in_language(attribute, 'name', languages)}")
    row["attributes"] = _joined(pairs)
    row["images"] = _joined(i.findtext("url") for i in el.iterfind("image"))
    return row


def plain_row(ctx: ExportContext, el: etree._Element, record, languages: list[str]) -> dict:
    return _scalars(el)


def tag_row(ctx: ExportContext, el: etree._Element, record, languages: list[str]) -> dict:
    row = _scalars(el)
    name = el.find("name")
    row["lang"], row["name"] = name.get("lang") or None, name.text
    return row


def stock_row(ctx: ExportContext, el: etree._Element, record, languages: list[str]) -> dict:
    row = _scalars(el)
    row["mode"] = el.get("mode")
    row["out_of_stock"] = record.row.out_of_stock
    return row


def order_row(ctx: ExportContext, el: etree._Element, record, languages: list[str]) -> dict:
    row = _scalars(el)
    for address in el.iterfind("address"):
        role = address.get("role")
        for name in ADDRESS:
            row[f"{role}_{name}"] = address.findtext(name)
    lines = [
        (line.findtext("product_reference") or "", line.findtext("product_quantity") or "0")
        for line in el.iterfind("order_detail")
    ]
    row["lines"] = _joined(f"{ref}:{qty}" for ref, qty in lines)
    row["quantity"] = sum(int(qty) for _, qty in lines)
    return row


def customer_row(ctx: ExportContext, el: etree._Element, record, languages: list[str]) -> dict:
    row = _scalars(el)
    row["lang"] = el.findtext("id_lang") or None
    addresses = el.findall("address")
    if addresses:
        for name in ("company", "address1", "address2", "postcode", "city", "country_iso"):
            row[name] = addresses[0].findtext(name)
        row["phone"] = addresses[0].findtext("phone")
    row["addresses"] = len(addresses)
    return row


def combination_row(ctx: ExportContext, el: etree._Element, record, languages: list[str]):
    return _combination(el, languages)


def manufacturer_name(ctx: ExportContext, manufacturer_id: int) -> str | None:
    """A manufacturer's name: a small table, read once per feed (again if one is added)."""
    names = ctx.cache.get("manufacturer_names")
    if names is None or manufacturer_id not in names:
        names = dict(ctx.conn.execute(select(Manufacturer.id, Manufacturer.name)).all())
        names.setdefault(manufacturer_id, None)
        ctx.cache["manufacturer_names"] = names
    return names[manufacturer_id]


def key_row(key: tuple[str, str]) -> dict[str, Any]:
    """The row of a deletion: the key columns only."""
    return {"supplier_reference": key[0], "source": key[1]}


__all__ = [
    "FLAT_ENTITIES",
    "ROWS",
    "UnknownColumns",
    "available_columns",
    "column_kind",
    "flat_rows",
    "key_row",
    "select_columns",
]
