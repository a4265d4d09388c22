"""What every entity descriptor provides, and the helpers they share.

A descriptor is the one spec of an entity type, for both directions: how to load a chunk of
entities by id and how one looks in the native XML (export), its flat columns and filter fields,
the shape of its element and its loader (import), the entities it depends on (``parents``) and
whether it may be deleted. Every per-entity table of the readers, writers and loaders is derived
from these specs (:mod:`impexmod.entities.derived`): adding an entity type is a model, a
migration, a descriptor listed in ``impexmod.entities.REGISTRY`` and a loader.

Attributes that name code of a layer above (the loader, the flat row builder, the filter fields)
are references ``"package.module"`` or ``"package.module:attribute"``, imported when first used
(:func:`resolve_ref`); a test may set the object itself.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, ClassVar

from lxml import etree
from sqlalchemy import Table, select
from sqlalchemy.engine import Connection, Row

from impexmod.catalog.identity import KeyResolver
from impexmod.catalog.idsql import IN_LIMIT, chunks, rows_in  # noqa: F401 (descriptors use them)
from impexmod.entities.flatvocab import FlatColumn
from impexmod.entities.shape import Shape
from impexmod.entities.xmltext import XmlText, attributes, key_attributes, parse, text  # noqa: F401
from impexmod.models import Language


@dataclass
class ExportContext:
    """What a descriptor needs while building the elements of one feed."""

    conn: Connection
    shop: str
    languages: dict[int, str]
    keys: KeyResolver
    cache: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    _lang_attrs: dict[int, str] = field(default_factory=dict, init=False, repr=False)

    def lang_attrs(self, id_lang: int) -> str:
        """`` lang="en"``: the attribute of a translated field, written once per language."""
        attrs = self._lang_attrs.get(id_lang)
        if attrs is None:
            attrs = self._lang_attrs[id_lang] = attributes(
                {"lang": self.languages.get(id_lang, "")}
            )
        return attrs

    @classmethod
    def open(cls, conn: Connection, shop: str) -> ExportContext:
        """A context over ``conn`` with the shop's languages loaded."""
        langs = dict(
            conn.execute(select(Language.id, Language.iso_code).order_by(Language.id)).all()
        )
        return cls(conn=conn, shop=shop, languages=langs, keys=KeyResolver(conn, shop))


def resolve_ref(ref: Any) -> Any:
    """The object a spec names: ``"pkg.module"`` is the module, ``"pkg.module:name"`` one of
    its attributes; anything that is no string is the object itself."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    found = importlib.import_module(module)
    return getattr(found, attr) if attr else found


def N_(message: str) -> str:
    """Mark a text for the panel's message catalogue, untranslated here (gettext's no-op)."""
    return message


class Descriptor:
    """One entity type's spec. Subclasses set the class attributes and two methods."""

    name: ClassVar[str]  # CLI/entity name: "products"
    element: ClassVar[str]  # native element: "product"
    kind: ClassVar[str]  # identity and change-log type: "product"
    table: ClassVar[Table]  # keyed by its integer ``id`` column
    label: ClassVar[str] = ""  # as a merchant reads it: "Specific prices"
    # Change-log kind of the rows whose ``id`` this feed lists; deletions come from it too.
    emits_deletes: ClassVar[bool] = True

    # -- flat rows (CSV, XLSX, field templates) and JSON objects
    tables: ClassVar[tuple[Table, ...]] = ()  # whose columns type the flat columns
    # The importer's columns (None: not imported flat), and for an entity exported flat only,
    # its export columns instead.
    flat_columns: ClassVar[tuple[FlatColumn, ...] | None] = None
    export_columns: ClassVar[tuple[str, ...] | None] = None
    identifiers: ClassVar[tuple[str, ...]] = ()  # columns matched when a row has no key
    flat_row: ClassVar[Any] = None  # ref: (ctx, element, record, languages) -> flat row
    # Native element -> the tables of its JSON object, for this element and those nested in it
    # (None: ``{element: tables}``), and per element, nested element -> the list it goes in.
    object_tables: ClassVar[Mapping[str, tuple[Table, ...]] | None] = None
    object_lists: ClassVar[Mapping[str, Mapping[str, str]]] = {}

    # -- filters
    filter_fields: ClassVar[Any] = None  # ref: () -> {field name: Field}

    # -- import
    shape: ClassVar[Shape | None] = None  # how the native element maps to tables
    nested_shapes: ClassVar[Mapping[str, Shape]] = {}  # nested elements that are no entity
    key_tables: ClassVar[Mapping[str, Table]] = {}  # other kinds keyed in its feeds
    deletable_nested: ClassVar[tuple[str, ...]] = ()  # nested kinds ``<delete>`` may name
    loader: ClassVar[Any] = None  # ref: a Loader (impexmod.importing.loaders.base)
    parents: ClassVar[tuple[str, ...]] = ()  # entity names imported before this one
    deletable: ClassVar[bool] = True  # by ``<delete>``
    disableable: ClassVar[bool] = False  # by ``<disable>`` (sets ``active``)
    # The entity whose deletion deletes this one (by the database), and the column naming it.
    deleted_with: ClassVar[tuple[str, str] | None] = None

    # -- change tracking: the other tables a write to which changes this entity, each with the
    # column naming it (a write to its own ``table`` always does), e.g. a product's names.
    changed_by: ClassVar[Mapping[Table, str]] = {}

    def load(self, ctx: ExportContext, ids: Sequence[int]) -> list[Any]:
        """Load the entities with these ids (those that exist), in id order, with relations."""
        raise NotImplementedError

    def render(self, ctx: ExportContext, record: Any, out: XmlText) -> None:
        """Write the native element of one loaded entity into ``out``."""
        raise NotImplementedError

    def render_bytes(self, ctx: ExportContext, record: Any) -> bytes:
        """The native element of one loaded entity, as indented XML in UTF-8."""
        out = XmlText()
        self.render(ctx, record, out)
        return out.utf8(f"{self.element} {self.record_id(record)}")

    def build(self, ctx: ExportContext, record: Any) -> etree._Element:
        """The native element of one loaded entity (its text parsed: one definition of both)."""
        return parse(self.render_bytes(ctx, record))

    def record_id(self, record: Any) -> int:
        """The local id of a loaded record (records hold their main row as ``row``)."""
        return record.row.id


class ProductPart(Descriptor):
    """The spec of what belongs to a product or to one of its combinations (stock, specific
    prices): imported after both, deleted by the database with the product."""

    parents = ("products", "combinations")
    deleted_with = ("products", "id_product")


# ----------------------------------------------------------------------------- loading helpers


def group_by(rows: Iterable[Row], attr: str) -> dict[int, list[Row]]:
    """Rows grouped by the value of one column."""
    out: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        out[getattr(row, attr)].append(row)
    return out


# ------------------------------------------------------------------------------ XML helpers


def keyed(out: XmlText, tag: str, key: tuple[str, str], **attrs: str) -> None:
    """Open an entity element carrying its key (close it with ``out.close()``)."""
    out.open(tag, key_attributes(key) + attributes(attrs))


def link(out: XmlText, tag: str, kind: str, key: tuple[str, str]) -> None:
    """A field that links to another entity by its key: ``<id_parent supplier-reference=...>``."""
    out.field(tag, key[0], key_attributes((kind, key[1])))


# Value getters by field list: ``attrgetter`` reads every field of a row in one C call.
_GETTERS: dict[tuple[str, ...], Callable[[Any], tuple]] = {}


def _getter(names: tuple[str, ...]) -> Callable[[Any], tuple]:
    get = _GETTERS.get(names)
    if get is None:
        if len(names) == 1:
            one = attrgetter(names[0])

            def get(row):
                return (one(row),)
        else:
            get = attrgetter(*names)
        _GETTERS[names] = get
    return get


def fields(out: XmlText, row: Row | dict, names: tuple[str, ...]) -> None:
    """One child element per field, in the given order."""
    values = [row.get(n) for n in names] if isinstance(row, dict) else _getter(names)(row)
    out.fields(names, values)


_by_language = attrgetter("id_lang")


def lang_fields(
    out: XmlText, ctx: ExportContext, lang_rows: Iterable[Row], names: tuple[str, ...]
) -> None:
    """Multi-language fields: each field repeated with ``lang``, in language order."""
    lang_attrs, get = ctx.lang_attrs, _getter(names)
    out.translated(
        names, [(lang_attrs(row.id_lang), get(row)) for row in sorted(lang_rows, key=_by_language)]
    )
