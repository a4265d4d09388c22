"""Resolving keys to local ids in bulk (a few queries per chunk), and registering new keys."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from impexmod.entities import derived
from impexmod.importing.bulk import insert_values, select_in
from impexmod.importing.entry import OWN, Ref
from impexmod.models import Identity, now

TABLES = derived.KEY_TABLES  # kind -> its table: from the entity specs
IN_LIMIT = 900  # bound parameters per IN list (SQLite's historic limit is 999)


def parts(values: list, size: int = IN_LIMIT):
    """Split a list for IN clauses."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


class KeyIndex:
    """Local ids of the refs of one chunk; ``ambiguous`` holds identifier refs with 2+ matches."""

    def __init__(self, conn: Connection, shop: str):
        self.conn = conn
        self.shop = shop
        self.found: dict[Ref, int] = {}
        self.ambiguous: set[Ref] = set()

    def resolve(self, refs: Iterable[Ref]) -> None:
        """Look every ref up: identity rows, local ids, identifier fields."""
        by_source: dict[tuple[str, str], set[str]] = defaultdict(set)
        local: dict[str, set[int]] = defaultdict(set)
        by_field: dict[tuple[str, str], set[str]] = defaultdict(set)
        for ref in refs:
            if ref is None or ref in self.found:
                continue
            if ref.field:
                by_field[(ref.kind, ref.field)].add(ref.value)
            elif ref.source in (OWN, self.shop):
                if ref.reference.isdigit():
                    local[ref.kind].add(int(ref.reference))
            else:
                by_source[(ref.kind, ref.source)].add(ref.reference)
        for (kind, source), references in by_source.items():
            self._identity(kind, source, sorted(references))
        for kind, ids in local.items():
            for id_ in self._existing(kind, sorted(ids)):
                self.found[Ref(kind, str(id_), OWN)] = id_
                self.found[Ref(kind, str(id_), self.shop)] = id_
        for (kind, field), values in by_field.items():
            self._by_field(kind, field, sorted(v for v in values if v))

    def _existing(self, kind: str, ids: list[int]) -> set[int]:
        return {r[0] for r in select_in(self.conn, TABLES[kind], ["id"], {}, "id", ids)}

    def _identity(self, kind: str, source: str, references: list[str]) -> None:
        rows = select_in(
            self.conn,
            Identity.__table__,
            ["reference", "local_id"],
            {"source": source, "entity_type": kind},
            "reference",
            references,
        )
        if kind not in TABLES:
            return
        alive = self._existing(kind, sorted({local_id for _, local_id in rows}))
        stale = [reference for reference, local_id in rows if local_id not in alive]
        for reference, local_id in rows:
            if local_id in alive:
                self.found[Ref(kind, reference, source)] = local_id
        # A key left behind by an entity deleted outside impexmod names nothing any more.
        for part in parts(stale):
            self.conn.execute(
                delete(Identity).where(
                    Identity.source == source,
                    Identity.entity_type == kind,
                    Identity.reference.in_(part),
                )
            )

    def _by_field(self, kind: str, field: str, values: list[str]) -> None:
        table = TABLES.get(kind)
        if table is None or field not in table.c:
            return
        column = table.c[field]
        matches: dict[str, list[int]] = defaultdict(list)
        for part in parts(values):
            for value, id_ in self.conn.execute(
                select(column, table.c.id).where(column.in_(part)).order_by(table.c.id)
            ).all():
                matches[str(value)].append(id_)
        for value, ids in matches.items():
            ref = Ref(kind, field=field, value=value)
            self.found[ref] = ids[0]
            if len(ids) > 1:
                self.ambiguous.add(ref)


def register(conn: Connection, shop: str, keys: Iterable[tuple[str, str, str, int]]) -> None:
    """Record (source, kind, reference) -> local id for keys we did not know (bulk insert)."""
    rows = {}
    for source, kind, reference, local_id in keys:
        if source in (OWN, shop) or not reference:
            continue
        rows[(source, kind, reference)] = local_id
    if not rows:
        return
    stamp = now()
    # Keys are registered only after a lookup found nothing, but a duplicate within one input
    # (two elements, one key) must not break the unique constraint.
    grouped: dict[tuple[str, str], list[str]] = defaultdict(list)
    for source, kind, reference in rows:
        grouped[(source, kind)].append(reference)
    existing = set()
    for (source, kind), references in grouped.items():
        where = {"source": source, "entity_type": kind}
        for (reference,) in select_in(
            conn, Identity.__table__, ["reference"], where, "reference", sorted(references)
        ):
            existing.add((source, kind, reference))
    # In the order they came: which of two keys of one entity is published depends on it.
    new = [(s, k, r, i, stamp, stamp) for (s, k, r), i in rows.items() if (s, k, r) not in existing]
    insert_values(
        conn,
        Identity.__table__,
        ["source", "entity_type", "reference", "local_id", "date_add", "date_upd"],
        new,
    )
