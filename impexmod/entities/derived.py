"""Every per-entity table of the readers, writers and loaders, derived from the entity specs.

``impexmod.entities.REGISTRY`` is the only table listing entities; the ones here are computed
from it (:func:`refresh`), in place, so that a module holding one of them sees an entity
registered later (:func:`impexmod.entities.registered`, for tests). Kinds that are no entity of
their own but that feeds name (reference data, linked to and never exported) are the one table
written here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table

from impexmod.entities.base import Descriptor
from impexmod.entities.flatvocab import FlatColumn
from impexmod.entities.shape import Shape
from impexmod.models import Language, Manufacturer, OrderState, Supplier

# Element -> (kind, table) of what feeds link to without it being an exported entity.
REFERENCE_KINDS: dict[str, tuple[str, Table]] = {
    "manufacturer": ("manufacturer", Manufacturer.__table__),
    "supplier": ("supplier", Supplier.__table__),
    "language": ("language", Language.__table__),
    "orderState": ("order_state", OrderState.__table__),
}
OPERATIONS = ("delete", "disable")  # native elements that name entities to delete or disable
REFERENCE_DELETABLE = ("manufacturer",)
REFERENCE_DISABLEABLE = ("manufacturer", "supplier")

# ------------------------------------------------------------------------ export side
LABELS: dict[str, str] = {}  # entity name -> label
FLAT_ENTITIES: list[str] = []  # entities with flat rows (CSV, XLSX, field templates)
FLAT_TABLES: dict[str, tuple[Table, ...]] = {}  # entity name -> tables of its flat columns
EXPORT_COLUMNS: dict[str, tuple[str, ...]] = {}  # entity name -> columns, exported flat only
ROW_BUILDERS: dict[str, Any] = {}  # entity name -> ref of its flat row builder
FILTER_FIELDS: dict[str, Any] = {}  # entity name -> ref of its filter fields
OBJECT_TABLES: dict[str, tuple[Table, ...]] = {}  # element -> tables of its JSON object
OBJECT_LISTS: dict[str, Mapping[str, str]] = {}  # element -> nested element -> its list
# ------------------------------------------------------------------------ import side
FLAT_COLUMNS: dict[str, tuple[FlatColumn, ...]] = {}  # entity name -> importer's columns
FLAT_IMPORTS: list[str] = []  # entities a CSV/XLSX file may hold, registry order
FLAT_ELEMENTS: dict[str, str] = {}  # flat entity name -> native element
IDENTIFIERS: dict[str, tuple[str, ...]] = {}  # entity name -> columns matched without a key
FILE_PREFIXES: list[str] = []  # flat entity names, longest first (``entity_from_name``)
FILE_ORDER: list[str] = []  # flat entity names, parents first (files of a ZIP)
TOP_LEVEL: list[str] = []  # second-level elements of a native feed: entities and operations
SHAPES: dict[str, Shape] = {}  # element -> shape (entities, then nested elements)
SHAPES_SKIP: dict[str, frozenset[str]] = {}  # element -> columns a feed must not set
KINDS: dict[str, str] = {}  # element -> identity and change-log kind
KEY_TABLES: dict[str, Table] = {}  # kind -> table keyed by identity
IMPORT_ORDER: list[str] = []  # entity kinds, parents first (the engine's order)
LOADERS: dict[str, Any] = {}  # kind -> ref of its loader
DELETABLE: set[str] = set()  # kinds ``<delete>`` may name
DISABLEABLE: set[str] = set()  # kinds ``<disable>`` may name
OWN_KINDS: dict[Table, str] = {}  # table -> the kind a row of it is
# kind -> [(kind, table, column)] of the entities the database deletes along with it
CASCADE: dict[str, list[tuple[str, Table, str]]] = {}
CASCADE_OWNERS: dict[str, tuple[str, str]] = {}  # kind -> (its owner's kind, the column)
# ------------------------------------------------------------------------ change tracking
# table -> [(kind, column)]: the entities a write to a row of it changes, and their ids' column
CHANGED_BY: dict[Table, list[tuple[str, str]]] = {}


def dependency_order(registry: Mapping[str, Descriptor]) -> list[str]:
    """Entity names, each after its ``parents`` (depth first, in registry order otherwise)."""
    out: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in out:
            return
        if name in visiting:
            raise ValueError(f"entity parents form a cycle through {name!r}")
        visiting.add(name)
        for parent in registry[name].parents:
            if parent != name:
                visit(parent)
        visiting.discard(name)
        out.append(name)

    for name in registry:
        visit(name)
    return out


def _fill(target, values) -> None:
    target.clear()
    if isinstance(target, dict):
        target.update(values)
    elif isinstance(target, set):
        target.update(values)
    else:
        target.extend(values)


def refresh(registry: Mapping[str, Descriptor]) -> None:
    """Compute every table of this module from ``registry``, in place."""
    specs = list(registry.values())
    ordered = [registry[n] for n in dependency_order(registry)]
    flat = [d for d in specs if d.flat_columns is not None]
    _fill(LABELS, {d.name: d.label for d in specs})
    _fill(FLAT_ENTITIES, [d.name for d in specs if d.flat_row is not None])
    _fill(FLAT_TABLES, {d.name: d.tables for d in specs if d.flat_row is not None})
    _fill(EXPORT_COLUMNS, {d.name: d.export_columns for d in specs if d.export_columns})
    _fill(ROW_BUILDERS, {d.name: d.flat_row for d in specs if d.flat_row is not None})
    _fill(FILTER_FIELDS, {d.name: d.filter_fields for d in specs if d.filter_fields})
    _fill(
        OBJECT_TABLES,
        {el: t for d in specs for el, t in (d.object_tables or {d.element: d.tables}).items()},
    )
    _fill(OBJECT_LISTS, {el: lists for d in specs for el, lists in d.object_lists.items()})
    _fill(FLAT_COLUMNS, {d.name: d.flat_columns for d in flat})
    _fill(FLAT_IMPORTS, [d.name for d in flat])
    _fill(FLAT_ELEMENTS, {d.name: d.element for d in flat})
    _fill(IDENTIFIERS, {d.name: d.identifiers for d in flat if d.identifiers})
    _fill(FILE_PREFIXES, sorted((d.name for d in flat), key=len, reverse=True))
    _fill(FILE_ORDER, [d.name for d in ordered if d.flat_columns is not None])
    _fill(TOP_LEVEL, [d.element for d in specs if d.shape is not None] + list(OPERATIONS))
    shapes = {d.element: d.shape for d in specs if d.shape is not None}
    shapes |= {el: s for d in specs for el, s in d.nested_shapes.items()}
    _fill(SHAPES, shapes)
    _fill(SHAPES_SKIP, {el: s.skip for el, s in shapes.items() if s.skip})
    kinds = {d.element: d.kind for d in specs}
    kinds |= {el: s.kind for d in specs for el, s in d.nested_shapes.items()}
    kinds |= {el: kind for el, (kind, _) in REFERENCE_KINDS.items()}
    _fill(KINDS, kinds)
    tables = {d.kind: d.table for d in specs}
    tables |= {kind: t for d in specs for kind, t in d.key_tables.items()}
    tables |= dict(REFERENCE_KINDS.values())
    _fill(KEY_TABLES, tables)
    _fill(IMPORT_ORDER, [d.kind for d in ordered if d.loader is not None])
    _fill(LOADERS, {d.kind: d.loader for d in specs if d.loader is not None})
    deletable = {d.kind for d in specs if d.deletable}
    deletable |= {kind for d in specs for kind in d.deletable_nested}
    _fill(DELETABLE, deletable | set(REFERENCE_DELETABLE))
    _fill(DISABLEABLE, {d.kind for d in specs if d.disableable} | set(REFERENCE_DISABLEABLE))
    _fill(OWN_KINDS, {d.table: d.kind for d in specs})
    cascade: dict[str, list[tuple[str, Table, str]]] = {}
    for d in specs:
        if d.deleted_with is not None:
            owner, column = d.deleted_with
            cascade.setdefault(registry[owner].kind, []).append((d.kind, d.table, column))
    _fill(CASCADE, cascade)
    owners = {}
    for d in specs:
        if d.deleted_with is not None:
            owners[d.kind] = (registry[d.deleted_with[0]].kind, d.deleted_with[1])
    _fill(CASCADE_OWNERS, owners)
    changed_by: dict[Table, list[tuple[str, str]]] = {}
    for d in specs:
        for table, column in {d.table: "id", **d.changed_by}.items():
            changed_by.setdefault(table, []).append((d.kind, column))
    _fill(CHANGED_BY, changed_by)
