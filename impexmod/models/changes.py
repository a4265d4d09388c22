"""The change log that incremental exports read."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, String

from impexmod.extensions import db
from impexmod.models.catalog import now


class EntityChange(db.Model):
    """One entity created, changed or deleted.

    ``epoch`` stays NULL until a run claims the pending changes (see ``impexmod.catalog.changes``):
    a change committed while a run is in progress is claimed by the next run, never lost.
    """

    __tablename__ = "entity_change"
    __table_args__ = (Index("ix_entity_change_type_epoch", "entity_type", "epoch", "entity_id"),)
    id = Column(Integer, primary_key=True)
    entity_type = Column(String(32), nullable=False)
    entity_id = Column(Integer, nullable=False)
    op = Column(String(8), nullable=False, default="upsert")  # upsert | delete
    # For deletions, the key the entity was published under: it can no longer be looked up.
    reference = Column(String(128))
    source = Column(String(128))
    epoch = Column(Integer, index=True)
    changed_at = Column(DateTime, nullable=False, default=now)


class ChangeEpoch(db.Model):
    """A single-row counter; claiming changes locks it, which orders claims across runs."""

    __tablename__ = "change_epoch"
    id = Column(Integer, primary_key=True)
    value = Column(Integer, nullable=False, default=0)
