"""Change tracking for incremental exports.

Every write made through the ORM is recorded in ``entity_change`` by session events; bulk
writers (importers) call :func:`record` themselves. A run claims the pending changes by giving
them the next epoch (:func:`claim_epoch`); an incremental run exports the changes whose epoch lies
after the one its previous successful run claimed. Claims are serialised by a lock on the epoch
counter, so a change committed during a run stays unclaimed and goes to the next run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from flask import Flask
from sqlalchemy import delete, event, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from impexmod.catalog import identity
from impexmod.catalog.idsql import chunks
from impexmod.entities import derived
from impexmod.extensions import db
from impexmod.models import ChangeEpoch, EntityChange, Identity, now

Change = tuple[str, int]


def _touched(obj) -> list[Change]:
    """The entities that a write to ``obj`` changes (a combination changes its product too);
    the specs say which (``Descriptor.changed_by``). An image's names change nothing: the
    image row's own change names the product."""
    table = getattr(type(obj), "__table__", None)
    changed = ((kind, getattr(obj, column)) for kind, column in derived.CHANGED_BY.get(table, ()))
    return [(kind, id_) for kind, id_ in changed if id_]  # 0: stock of no combination


def _own(obj) -> Change | None:
    """The entity that ``obj`` *is*, if deleting it deletes an exported entity."""
    kind = derived.OWN_KINDS.get(getattr(type(obj), "__table__", None))
    return (kind, obj.id) if kind else None


def cascaded(conn: Connection, kind: str, ids: Iterable[int]) -> list[Change]:
    """Exported entities that the database deletes along with these (a product's combinations,
    stock and specific prices: ``deleted_with`` in their specs)."""
    out: list[Change] = []
    ids = sorted(set(ids))
    for dependent, table, column in derived.CASCADE.get(kind, ()):
        for part in chunks(ids):
            found = conn.execute(select(table.c.id).where(table.c[column].in_(part))).scalars()
            out.extend((dependent, i) for i in found)
    return out


_COLUMNS = ("entity_type", "entity_id", "op", "reference", "source", "changed_at")


def record(conn: Connection, upserts: Iterable[Change] = (), deletes: Iterable[Change] = ()):
    """Record changes written outside the ORM (bulk loaders); deletions drop identity rows."""
    table = EntityChange.__table__
    processors = [table.c[n].type._cached_bind_processor(conn.dialect) for n in _COLUMNS]
    stamp = now()
    if processors[-1] is not None:
        stamp = processors[-1](stamp)  # one value for every row: converted once
    # In (type, id) order: the change log's indexes then grow at their ends.
    rows = [(k, i, "upsert", None, None, stamp) for k, i in sorted(set(upserts))]
    by_kind: dict[str, list[int]] = {}
    for kind, entity_id in sorted(set(deletes)):
        by_kind.setdefault(kind, []).append(entity_id)
    for kind, ids in by_kind.items():
        # A deletion carries the key the entity was published under: once its identity rows
        # are gone, nothing else can name it in the next incremental feed.
        keys = identity.KeyResolver(conn, identity.shop_source()).load(kind, ids)
        for entity_id in ids:
            reference, source = keys.key(kind, entity_id)
            rows.append((kind, entity_id, "delete", reference, source, stamp))
        for start in range(0, len(ids), 900):
            conn.execute(
                delete(Identity).where(
                    Identity.entity_type == kind, Identity.local_id.in_(ids[start : start + 900])
                )
            )
    if not rows:
        return
    heads = processors[:-1]
    if any(heads):
        rows = [
            tuple(v if f is None or v is None else f(v) for v, f in zip(row, heads, strict=False))
            + row[-1:]
            for row in rows
        ]
    # The driver's executemany: Core's per-row parameter handling cost more than the database
    # does, and an import records a row per entity it writes.
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle in ("qmark", "numeric") else "%s"
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in _COLUMNS)})"
        f" VALUES ({', '.join([mark] * len(_COLUMNS))})"
    )
    for start in range(0, len(rows), 5000):
        conn.exec_driver_sql(sql, rows[start : start + 5000])


def _before_flush(session: Session, _ctx, _instances) -> None:
    deletes: list[Change] = []
    if session.deleted:
        conn = session.connection()
        for obj in session.deleted:
            own = _own(obj)
            if own:
                deletes.append(own)
                deletes.extend(cascaded(conn, own[0], [own[1]]))
    session.info["impexmod_deletes"] = deletes


def _after_flush(session: Session, _ctx) -> None:
    deletes = set(session.info.pop("impexmod_deletes", []))
    upserts: set[Change] = set()
    for obj in list(session.new) + list(session.dirty) + list(session.deleted):
        if obj in session.dirty and not session.is_modified(obj, include_collections=False):
            continue
        upserts.update(c for c in _touched(obj) if c[1] is not None)
    upserts -= deletes
    if upserts or deletes:
        record(session.connection(), upserts, deletes)


def init_app(app: Flask) -> None:
    """Install the session events that record ORM writes (once per process)."""
    if not event.contains(Session, "before_flush", _before_flush):
        event.listen(Session, "before_flush", _before_flush)
        event.listen(Session, "after_flush", _after_flush)


def claim_epoch() -> int:
    """Give every unclaimed change the next epoch, commit, and return that epoch."""
    with db.engine.begin() as conn:
        current = conn.execute(
            select(ChangeEpoch.value).where(ChangeEpoch.id == 1).with_for_update()
        ).scalar_one_or_none()
        if current is None:
            conn.execute(insert(ChangeEpoch).values(id=1, value=0))
            current = 0
        epoch = current + 1
        conn.execute(update(ChangeEpoch).where(ChangeEpoch.id == 1).values(value=epoch))
        conn.execute(update(EntityChange).where(EntityChange.epoch.is_(None)).values(epoch=epoch))
    return epoch


def changed_ids(
    conn: Connection, kind: str, after: int, upto: int, chunk: int
) -> Iterator[list[tuple[int, str | None, str | None, str]]]:
    """Yield, in id order and by chunks, (id, reference, source, last op) changed in the window."""
    last_id = -1
    while True:
        ids = (
            conn.execute(
                select(EntityChange.entity_id)
                .where(
                    EntityChange.entity_type == kind,
                    EntityChange.epoch > after,
                    EntityChange.epoch <= upto,
                    EntityChange.entity_id > last_id,
                )
                .group_by(EntityChange.entity_id)
                .order_by(EntityChange.entity_id)
                .limit(chunk)
            )
            .scalars()
            .all()
        )
        if not ids:
            return
        last_id = ids[-1]
        # The latest change of each entity wins: a product deleted, then recreated, is upserted.
        latest = (
            select(func.max(EntityChange.id))
            .where(
                EntityChange.entity_type == kind,
                EntityChange.epoch > after,
                EntityChange.epoch <= upto,
                EntityChange.entity_id.in_(ids),
            )
            .group_by(EntityChange.entity_id)
        )
        rows = conn.execute(
            select(
                EntityChange.entity_id, EntityChange.reference, EntityChange.source, EntityChange.op
            )
            .where(EntityChange.id.in_(latest))
            .order_by(EntityChange.entity_id)
        ).all()
        yield [tuple(r) for r in rows]
