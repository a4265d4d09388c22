"""``<delete>`` and ``<disable>`` elements, and removing what an input no longer holds."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from impexmod.catalog.changes import cascaded
from impexmod.entities.derived import CASCADE_OWNERS, DELETABLE, DISABLEABLE
from impexmod.importing.context import Chunk, load_by
from impexmod.importing.entry import Entry
from impexmod.importing.keys import TABLES, parts
from impexmod.importing.loaders.combinations import delete_combinations
from impexmod.models import Identity


def plan(chunk: Chunk, entries: list[Entry]) -> None:
    """Check that each operation names something it can do."""
    for entry in entries:
        if chunk.dead(entry):
            continue
        operation = entry.flags["operation"]
        allowed = DISABLEABLE if operation == "disable" else DELETABLE
        if entry.kind not in allowed:
            chunk.fail(entry, "type", f"a {entry.kind} cannot be {operation}d")
            continue
        entry.local_id = chunk.match(entry) or chunk.keys.found.get(entry.ref)


def apply(chunk: Chunk, entries: list[Entry]) -> None:
    """Delete or disable what the operations name; an unknown key is skipped with a warning."""
    todo: dict[tuple[str, str], list[int]] = {}
    for entry in entries:
        if chunk.dead(entry):
            continue
        operation = entry.flags["operation"]
        if entry.local_id is None:
            chunk.count(entry.kind, "skipped")
            chunk.warn(entry, "supplier-reference", f"{operation}: no {entry.ref.label()} here")
            continue
        todo.setdefault((operation, entry.kind), []).append(entry.local_id)
        chunk.diff(entry, operation, {})
    for (operation, kind), ids in todo.items():
        if operation == "delete":
            remove(chunk, kind, sorted(set(ids)))
        else:
            disable(chunk, kind, sorted(set(ids)))


def disable(chunk: Chunk, kind: str, ids: list[int]) -> None:
    """Set ``active`` to false on the entities still active."""
    table = TABLES[kind]
    active = [r.id for r in load_by(chunk.conn, table, "id", ids) if r.active]
    for part in parts(active):
        chunk.conn.execute(update(table).where(table.c.id.in_(part)).values(active=False))
    chunk.count(kind, "disabled", len(active))
    chunk.count(kind, "unchanged", len(ids) - len(active))
    chunk.changed(*[(kind, i) for i in active])


def remove(chunk: Chunk, kind: str, ids: list[int]) -> None:
    """Delete entities, recording their deletion (and what goes with a product) for feeds."""
    conn = chunk.conn
    table = TABLES[kind]
    if kind == "combination":
        pairs = [(r.id, r.id_product) for r in load_by(conn, table, "id", ids)]
        delete_combinations(chunk, pairs)
        return
    ids = [r.id for r in load_by(conn, table, "id", ids)]
    chunk.log.deletes.update(cascaded(conn, kind, ids))
    owner = CASCADE_OWNERS.get(kind)
    if owner is not None:  # what lives and dies with its owner changes it
        owner_kind, column = owner
        for row in load_by(conn, table, "id", ids):
            chunk.changed((owner_kind, getattr(row, column)))
    for id_ in ids:
        chunk.log.deletes.add((kind, id_))
    for part in parts(ids):
        conn.execute(delete(table).where(table.c.id.in_(part)))
    chunk.count(kind, "deleted", len(ids))


def absent(conn, kind: str, sources: list[str] | None, seen: set[int]) -> list[int]:
    """Ids of ``kind`` not in ``seen``: among the entities keyed by ``sources``, or all of them."""
    table = TABLES[kind]
    if sources:
        stmt = select(Identity.local_id).where(
            Identity.entity_type == kind, Identity.source.in_(sources)
        )
    else:
        stmt = select(table.c.id)
    return sorted({i for i in conn.execute(stmt).scalars() if i not in seen})
