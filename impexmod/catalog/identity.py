"""Identity service: which key an entity is published under, and what a key resolves to.

An entity registered by an importer (or seeded with a supplier reference) is published under
that reference, with its source; any other entity under its local id, with this shop as source.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import current_app
from sqlalchemy import select
from sqlalchemy.engine import Connection

from impexmod.catalog.idsql import rows_in
from impexmod.models import Identity

Key = tuple[str, str]  # (reference, source)


def shop_source() -> str:
    """This shop's source name, under which its own ids are published."""
    return f"shop:{current_app.config['SHOP_ID']}"


def supplier_source(name: str) -> str:
    """The source name of a supplier's references."""
    return f"supplier:{name}"


def _prefer(rows: Iterable) -> dict[int, Key]:
    # A supplier's reference beats a shop's: it is the key other shops can share.
    out: dict[int, Key] = {}
    for local_id, reference, source in rows:
        if local_id not in out or (
            source.startswith("supplier:") and not out[local_id][1].startswith("supplier:")
        ):
            out[local_id] = (reference, source)
    return out


def key_of(conn: Connection, kind: str, local_id: int) -> Key:
    """The key one entity is published under."""
    return KeyResolver(conn, shop_source()).load(kind, [local_id]).key(kind, local_id)


def register(conn: Connection, source: str, kind: str, reference: str, local_id: int) -> None:
    """Record that ``source`` calls our entity ``local_id`` by ``reference``."""
    conn.execute(
        Identity.__table__.insert().values(
            source=source, entity_type=kind, reference=reference, local_id=local_id
        )
    )


def resolve(conn: Connection, source: str, kind: str, reference: str) -> int | None:
    """The local id that ``source``'s ``reference`` names, if any."""
    if source == shop_source():
        return int(reference) if reference.isdigit() else None
    return conn.execute(
        select(Identity.local_id).where(
            Identity.source == source,
            Identity.entity_type == kind,
            Identity.reference == reference,
        )
    ).scalar_one_or_none()


class KeyResolver:
    """Keys of the entities of one chunk, fetched in one query per entity type."""

    def __init__(self, conn: Connection, shop: str):
        self.conn = conn
        self.shop = shop
        self._keys: dict[str, dict[int, Key]] = {}

    def load(self, kind: str, ids: Iterable[int]) -> KeyResolver:
        """Fetch the registered keys of ``ids`` (replacing the previous chunk's)."""
        ids = sorted({i for i in ids if i})
        stmt = select(Identity.local_id, Identity.reference, Identity.source).where(
            Identity.entity_type == kind
        )
        found = _prefer(rows_in(self.conn, stmt, Identity.local_id, ids))
        self._keys[kind] = found
        return self

    def key(self, kind: str, local_id: int) -> Key:
        """The (reference, source) of one entity: its registered key, or its id here."""
        return self._keys.get(kind, {}).get(local_id) or (str(local_id), self.shop)
