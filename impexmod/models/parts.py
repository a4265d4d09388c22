"""The key-range parts of a large full export, written by several workers in parallel and
joined into one feed (impexmod.export.parts). A part row lives only while its run does."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)

from impexmod.extensions import db

__all__ = ["PartStatus", "RunPart"]


class PartStatus:
    """The values of ``run_part.status``."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class RunPart(db.Model):
    """One key range of a run's feed: ids ``lo`` (included) to ``hi`` (excluded; None for the
    last), who writes it, how far it is, and where its body sits in its file once done."""

    __tablename__ = "run_part"
    __table_args__ = (UniqueConstraint("run_id", "number"),)
    id = Column(Integer, primary_key=True)
    run_id = Column(Integer, ForeignKey("run.id", ondelete="CASCADE"), nullable=False)
    number = Column(Integer, nullable=False)  # 0 for the first range
    lo = Column(BigInteger)  # None: from the first id
    hi = Column(BigInteger)  # None: to the last id
    status = Column(String(16), nullable=False, default=PartStatus.QUEUED)
    worker = Column(String(128))
    heartbeat_at = Column(DateTime)
    # What every part writes the same way: the feed's root attributes (its generated-at
    # included, so the parts join into the bytes one writer would give) and the fingerprint
    # of the exporter's definition when the run started (a part refuses an edited exporter).
    root = Column(JSON, nullable=False)
    fingerprint = Column(String(64), nullable=False)
    total = Column(Integer)
    done = Column(Integer, nullable=False, default=0)
    written = Column(Integer, nullable=False, default=0)
    deleted = Column(Integer, nullable=False, default=0)
    # Offsets in the part's file: the end of its head (the XML declaration and root, the CSV
    # header) and the end of its body (where the closing tag starts); its size.
    head = Column(BigInteger)
    body_end = Column(BigInteger)
    size = Column(BigInteger)
    warnings = Column(JSON)
    error = Column(Text)
