"""Identity: (source, entity type, supplier reference) -> local id."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, String, UniqueConstraint

from impexmod.extensions import db
from impexmod.models.catalog import now


class Identity(db.Model):
    """One key a source uses for one of our entities.

    ``source`` is ``supplier:<name>`` for a supplier's references (shared by every shop that
    imported that supplier) or ``shop:<shop id>`` for a shop's own ids.
    """

    __tablename__ = "identity"
    __table_args__ = (
        UniqueConstraint("source", "entity_type", "reference"),
        Index("ix_identity_entity_local", "entity_type", "local_id"),
    )
    id = Column(Integer, primary_key=True)
    source = Column(String(128), nullable=False)
    entity_type = Column(String(32), nullable=False)
    reference = Column(String(128), nullable=False)
    local_id = Column(Integer, nullable=False)
    date_add = Column(DateTime, nullable=False, default=now)
    date_upd = Column(DateTime, nullable=False, default=now, onupdate=now)
