"""Reading entities for a feed: all of them by key range, or those changed in a window.

A selection (impexmod.export.selection) adds its condition to the id queries, so paging stays
by key range. In a window, a changed entity that no longer matches the selection has left it:
it is not loaded, and the feed lists it as a deletion (see docs/selection.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from impexmod.catalog import changes
from impexmod.catalog.identity import KeyResolver
from impexmod.entities import Descriptor
from impexmod.entities.base import chunks
from impexmod.export.selection import Selection
from impexmod.models import EntityChange


@dataclass
class Batch:
    """One chunk of a feed: ids to load, and keys of entities deleted since the last run.

    ``left`` holds the ids of entities that exist but left the selection: they are not loaded,
    so the runner writes them as deletions, under the key that ``deleted`` gives.
    """

    ids: list[int]
    deleted: dict[int, tuple[str | None, str | None]] = field(default_factory=dict)
    left: set[int] = field(default_factory=set)

    @property
    def load_ids(self) -> list[int]:
        """The ids whose entities the feed lists (every id but those that left)."""
        return [i for i in self.ids if i not in self.left] if self.left else self.ids


# A key range of ids: ``lo`` included, ``hi`` excluded; None leaves that end open.
Span = tuple[int | None, int | None]


def _condition(descriptor: Descriptor, selection: Selection | None):
    return selection.where(descriptor.name) if selection else None


def _full_where(descriptor: Descriptor, selection: Selection | None, span: Span | None) -> list:
    """The conditions of a full feed: the selection's, and the key range of a part."""
    where = []
    cond = _condition(descriptor, selection)
    if cond is not None:
        where.append(cond)
    if span is not None:
        id_col = descriptor.table.c.id
        lo, hi = span
        if lo is not None:
            where.append(id_col >= lo)
        if hi is not None:
            where.append(id_col < hi)
    return where


def count_all(
    conn: Connection,
    descriptor: Descriptor,
    selection: Selection | None = None,
    span: Span | None = None,
) -> int:
    """How many entities a full feed (or the key range ``span`` of it) lists."""
    stmt = select(func.count()).select_from(descriptor.table)
    return conn.execute(stmt.where(*_full_where(descriptor, selection, span))).scalar_one()


def boundaries(
    conn: Connection, descriptor: Descriptor, selection: Selection | None, total: int, parts: int
) -> list[int]:
    """The ids that cut a full feed of ``total`` entities into ``parts`` key ranges of about
    the same count (the first id of each range but the first)."""
    id_col = descriptor.table.c.id
    where = _full_where(descriptor, selection, None)
    cuts = []
    for k in range(1, parts):
        stmt = select(id_col).where(*where).order_by(id_col).offset(k * total // parts).limit(1)
        found = conn.execute(stmt).scalar()
        if found is not None and (not cuts or found > cuts[-1]):
            cuts.append(found)
    return cuts


def count_changed(
    conn: Connection,
    descriptor: Descriptor,
    after: int,
    upto: int,
    selection: Selection | None = None,
) -> int:
    """How many entities an incremental feed goes through: those changed in ``(after, upto]``,
    and those whose product changed when the selection is on the product."""
    total = conn.execute(
        select(func.count(func.distinct(EntityChange.entity_id))).where(
            EntityChange.entity_type == descriptor.kind,
            EntityChange.epoch > after,
            EntityChange.epoch <= upto,
        )
    ).scalar_one()
    moved = _product_changed(descriptor, selection, after, upto)
    if moved is not None:
        stmt = select(func.count()).select_from(descriptor.table).where(*moved)
        total += conn.execute(stmt).scalar_one()
    return total


def all_batches(
    conn: Connection,
    descriptor: Descriptor,
    size: int,
    selection: Selection | None = None,
    span: Span | None = None,
) -> Iterator[Batch]:
    """Every (selected) entity id, in the key range ``span`` if given, by chunks (no OFFSET:
    each chunk starts after the last)."""
    for ids in _pages(conn, descriptor, size, _full_where(descriptor, selection, span)):
        yield Batch(ids=ids)


def changed_batches(
    conn: Connection,
    descriptor: Descriptor,
    after: int,
    upto: int,
    size: int,
    selection: Selection | None = None,
) -> Iterator[Batch]:
    """The entities changed in ``(after, upto]``; the deleted ones carry their last key, and
    those that left the selection are marked ``left``.

    When the selection is on the product (a combination's ``category``, ``active``...), the
    entities whose product changed follow, so that they enter or leave the selection with it.
    """
    cond = _condition(descriptor, selection)
    for rows in changes.changed_ids(conn, descriptor.kind, after, upto, size):
        batch = Batch(ids=[r[0] for r in rows])
        batch.deleted = {r[0]: (r[1], r[2]) for r in rows if r[3] == "delete"}
        if cond is not None:
            _mark_left(conn, descriptor, cond, batch)
        yield batch
    moved = _product_changed(descriptor, selection, after, upto)
    if moved is not None:
        for ids in _pages(conn, descriptor, size, moved):
            batch = Batch(ids=ids)
            _mark_left(conn, descriptor, cond, batch)
            yield batch


def _pages(conn: Connection, descriptor: Descriptor, size: int, where) -> Iterator[list[int]]:
    """Ids of the entity's table meeting ``where``, by key ranges of ``size``."""
    id_col = descriptor.table.c.id
    last = None
    while True:
        stmt = select(id_col).where(*where).order_by(id_col).limit(size)
        if last is not None:
            stmt = stmt.where(id_col > last)
        ids = list(conn.execute(stmt).scalars())
        if not ids:
            return
        last = ids[-1]
        yield ids


def _window(kind: str, after: int, upto: int):
    return select(EntityChange.entity_id).where(
        EntityChange.entity_type == kind, EntityChange.epoch > after, EntityChange.epoch <= upto
    )


def _product_changed(descriptor: Descriptor, selection: Selection | None, after: int, upto: int):
    """The conditions for "not changed itself, but its product was", when the selection is on
    the product; None otherwise."""
    table = descriptor.table
    if not selection or "id_product" not in table.c:
        return None
    if not selection.follows_product(descriptor.name):
        return None
    return (
        table.c.id_product.in_(_window("product", after, upto)),
        table.c.id.not_in(_window(descriptor.kind, after, upto)),
    )


def _mark_left(conn: Connection, descriptor: Descriptor, cond, batch: Batch) -> None:
    """Mark the entities of the batch that exist but that the selection no longer matches."""
    id_col = descriptor.table.c.id
    live = [i for i in batch.ids if i not in batch.deleted]
    matching: set[int] = set()
    for part in chunks(live):
        matching.update(conn.execute(select(id_col).where(id_col.in_(part), cond)).scalars())
    batch.left = set(live) - matching
    if batch.left:
        # The deletion names the entity by the key its earlier feeds used.
        keys = KeyResolver(conn, "").load(descriptor.kind, batch.left)
        for entity_id in batch.left:
            ref, source = keys.key(descriptor.kind, entity_id)
            batch.deleted[entity_id] = (ref, source or None)
