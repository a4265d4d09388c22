"""Reading entities for a feed: all of them by key range, or those changed in a window."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from impexmod import changes
from impexmod.entities import Descriptor
from impexmod.models import EntityChange


@dataclass
class Batch:
    """One chunk of a feed: ids to load, and keys of entities deleted since the last run."""

    ids: list[int]
    deleted: dict[int, tuple[str | None, str | None]] = field(default_factory=dict)


def count_all(conn: Connection, descriptor: Descriptor, selection=None) -> int:
    """How many entities a full feed lists."""
    return conn.execute(select(func.count()).select_from(descriptor.table)).scalar_one()


def count_changed(conn: Connection, descriptor: Descriptor, after: int, upto: int) -> int:
    """How many entities changed in the window ``(after, upto]``."""
    return conn.execute(
        select(func.count(func.distinct(EntityChange.entity_id))).where(
            EntityChange.entity_type == descriptor.kind,
            EntityChange.epoch > after,
            EntityChange.epoch <= upto,
        )
    ).scalar_one()


def all_batches(
    conn: Connection, descriptor: Descriptor, size: int, selection=None
) -> Iterator[Batch]:
    """Every entity id, by key ranges (no OFFSET: each chunk starts after the last id seen)."""
    id_col = descriptor.table.c.id
    last = None
    while True:
        stmt = select(id_col).order_by(id_col).limit(size)
        if last is not None:
            stmt = stmt.where(id_col > last)
        ids = conn.execute(stmt).scalars().all()
        if not ids:
            return
        last = ids[-1]
        yield Batch(ids=list(ids))


def changed_batches(
    conn: Connection, descriptor: Descriptor, after: int, upto: int, size: int, selection=None
) -> Iterator[Batch]:
    """The entities changed in ``(after, upto]``; the deleted ones carry their last key."""
    for rows in changes.changed_ids(conn, descriptor.kind, after, upto, size):
        batch = Batch(ids=[r[0] for r in rows])
        batch.deleted = {r[0]: (r[1], r[2]) for r in rows if r[3] == "delete"}
        yield batch
