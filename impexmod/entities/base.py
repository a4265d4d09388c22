"""What every entity descriptor provides, and the helpers they share.

A descriptor says, for one entity type, how to load a chunk of entities by id and how one looks
in the native XML. Readers and writers are generic over descriptors: adding an entity type is
adding a descriptor and listing it in ``impexmod.entities.REGISTRY``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from lxml import etree
from sqlalchemy import Table, select
from sqlalchemy.engine import Connection, Row

from impexmod.identity import KeyResolver
from impexmod.models import Language

# SQLite allows 999 bound parameters in old builds; chunks are split below that.
IN_LIMIT = 900


@dataclass
class ExportContext:
    """What a descriptor needs while building the elements of one feed."""

    conn: Connection
    shop: str
    languages: dict[int, str]
    keys: KeyResolver
    cache: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, conn: Connection, shop: str) -> ExportContext:
        """A context over ``conn`` with the shop's languages loaded."""
        langs = dict(
            conn.execute(select(Language.id, Language.iso_code).order_by(Language.id)).all()
        )
        return cls(conn=conn, shop=shop, languages=langs, keys=KeyResolver(conn, shop))


class Descriptor:
    """One exported entity type. Subclasses set the class attributes and two methods."""

    name: ClassVar[str]  # CLI/entity name: "products"
    element: ClassVar[str]  # native element: "product"
    kind: ClassVar[str]  # identity and change-log type: "product"
    table: ClassVar[Table]  # keyed by its integer ``id`` column
    # Change-log kind of the rows whose ``id`` this feed lists; deletions come from it too.
    emits_deletes: ClassVar[bool] = True

    def load(self, ctx: ExportContext, ids: Sequence[int]) -> list[Any]:
        """Load the entities with these ids (those that exist), in id order, with relations."""
        raise NotImplementedError

    def build(self, ctx: ExportContext, record: Any) -> etree._Element:
        """The native element of one loaded entity."""
        raise NotImplementedError

    def record_id(self, record: Any) -> int:
        """The local id of a loaded record (records hold their main row as ``row``)."""
        return record.row.id


# ----------------------------------------------------------------------------- loading helpers


def chunks(ids: Sequence[int], size: int = IN_LIMIT) -> Iterable[Sequence[int]]:
    """Split ``ids`` into parts small enough for an IN clause."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def rows_in(conn: Connection, stmt, column, ids: Sequence[int]) -> list[Row]:
    """Run ``stmt`` restricted to ``column IN ids``, in parts."""
    out: list[Row] = []
    for part in chunks(ids):
        out.extend(conn.execute(stmt.where(column.in_(part))))
    return out


def group_by(rows: Iterable[Row], attr: str) -> dict[int, list[Row]]:
    """Rows grouped by the value of one column."""
    out: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        out[getattr(row, attr)].append(row)
    return out


# ------------------------------------------------------------------------------ XML helpers


def _decimal(value: Decimal) -> str:
    return format(value, "f")


# Converters by exact type: one dict lookup per value instead of a chain of isinstance tests
# (a product feed converts about 60 values per product).
_TEXT = {
    str: lambda v: v,
    int: str,
    bool: lambda v: "1" if v else "0",
    Decimal: _decimal,
    float: lambda v: format(Decimal(str(v)), "f"),
    datetime: lambda v: v.strftime("%Y-%m-%d %H:%M:%S"),
    type(None): lambda v: "",
}


def text(value: Any) -> str:
    """A field value as native XML text (decimals plain, booleans 0/1, PrestaShop dates)."""
    convert = _TEXT.get(type(value))
    if convert is not None:
        return convert(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return format(Decimal(str(value)), "f")
    return str(value)


def keyed(tag: str, key: tuple[str, str], parent: etree._Element | None = None, **attrs):
    """An entity element carrying its key: ``supplier-reference`` and whose key it is."""
    attrib = {"supplier-reference": key[0], "source": key[1], **attrs}
    if parent is None:
        return etree.Element(tag, attrib)
    return etree.SubElement(parent, tag, attrib)


def link(parent: etree._Element, tag: str, kind: str, key: tuple[str, str]) -> etree._Element:
    """A field that links to another entity by its key: ``<id_parent supplier-reference=...>``."""
    el = etree.SubElement(parent, tag, {"supplier-reference": kind, "source": key[1]})
    el.text = key[0]
    return el


def fields(parent: etree._Element, row: Row | dict, names: Iterable[str]) -> None:
    """One child element per field, in the given order."""
    mapping = row if isinstance(row, dict) else row._mapping
    sub, convert = etree.SubElement, _TEXT.get
    for name in names:
        value = mapping.get(name)
        fast = convert(type(value))
        sub(parent, name).text = fast(value) if fast is not None else text(value)


def _by_language(row: Row) -> int:
    return row.id_lang


def lang_fields(
    parent: etree._Element, ctx: ExportContext, lang_rows: Iterable[Row], names: Iterable[str]
) -> None:
    """Multi-language fields: each field repeated with ``lang``, in language order."""
    languages = ctx.languages
    rows = [
        (row, {"lang": languages.get(row.id_lang, "")})
        for row in sorted(lang_rows, key=_by_language)
    ]
    sub, convert = etree.SubElement, _TEXT.get
    for name in names:
        for row, attrib in rows:
            value = getattr(row, name)
            fast = convert(type(value))
            sub(parent, name, attrib).text = fast(value) if fast is not None else text(value)
