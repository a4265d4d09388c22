"""Importer definitions: column mappings, data groups, source state, per-run results, errors
and a dry run's diffs.

An importer is a :class:`~impexmod.models.tasks.Task` with ``kind="import"`` (its URL, entity,
format, modes and mapping live in ``task.options``); each execution is a ``Run``. The tables here
hold what a run needs beyond that: saved mappings, the state of an HTTP source between runs
(conditional GET, catch-up cursor), and what each run did per file and entity, with its row errors.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, ForeignKey, Integer, String, Text

from impexmod.extensions import db
from impexmod.models.catalog import now

__all__ = ["ImportDiff", "ImportMapping", "ImportSourceState", "ImportResult", "ImportRowError"]


class ImportMapping(db.Model):
    """A saved column mapping: the headers of a merchant's file -> impexmod's flat columns."""

    __tablename__ = "import_mapping"
    id = Column(Integer, primary_key=True)
    name = Column(String(128), nullable=False, unique=True)
    entity = Column(String(32), nullable=False)
    # {"Their header": "our_column"}; a header mapped to "" is ignored.
    columns = Column(JSON, nullable=False, default=dict)
    # Reader options: delimiter, encoding, sheet, header row.
    options = Column(JSON, nullable=False, default=dict)
    created_at = Column(DateTime, nullable=False, default=now)
    updated_at = Column(DateTime, nullable=False, default=now, onupdate=now)


class ImportSourceState(db.Model):
    """What an importer remembers of its URL between runs."""

    __tablename__ = "import_source_state"
    task_id = Column(Integer, ForeignKey("task.id", ondelete="CASCADE"), primary_key=True)
    url = Column(String(2048), nullable=False)
    # Validators of the last response imported: sent back so an unchanged feed is not re-read.
    etag = Column(String(255))
    last_modified = Column(String(64))
    content_sha256 = Column(String(64))
    # Catch-up: the window-to of the last impexmod delta imported (see docs/importing.md).
    cursor = Column(Integer)
    speaks_cursor = Column(Boolean, nullable=False, default=False)
    fetched_at = Column(DateTime)


class ImportResult(db.Model):
    """What one import run did to one entity type from one file."""

    __tablename__ = "import_result"
    id = Column(Integer, primary_key=True)
    run_id = Column(Integer, ForeignKey("run.id", ondelete="CASCADE"), nullable=False, index=True)
    file = Column(String(255), nullable=False, default="")
    entity = Column(String(32), nullable=False)
    created = Column(Integer, nullable=False, default=0)
    updated = Column(Integer, nullable=False, default=0)
    unchanged = Column(Integer, nullable=False, default=0)
    deleted = Column(Integer, nullable=False, default=0)
    disabled = Column(Integer, nullable=False, default=0)
    skipped = Column(Integer, nullable=False, default=0)
    errors = Column(Integer, nullable=False, default=0)


class ImportRowError(db.Model):
    """One bad row or element of an import run (or a warning about one)."""

    __tablename__ = "import_error"
    id = Column(Integer, primary_key=True)
    run_id = Column(Integer, ForeignKey("run.id", ondelete="CASCADE"), nullable=False, index=True)
    severity = Column(String(8), nullable=False, default="error")  # error | warning
    file = Column(String(255), nullable=False, default="")
    line = Column(Integer)
    path = Column(String(512))
    field = Column(String(64))
    reason = Column(Text, nullable=False)


class ImportDiff(db.Model):
    """What a dry run would change on one entity: ``{"field": [old, new], ...}``."""

    __tablename__ = "import_diff"
    id = Column(Integer, primary_key=True)
    run_id = Column(Integer, ForeignKey("run.id", ondelete="CASCADE"), nullable=False, index=True)
    file = Column(String(255), nullable=False, default="")
    entity = Column(String(32), nullable=False)
    label = Column(String(255), nullable=False, default="")  # how the report names the entity
    action = Column(String(16), nullable=False)  # create | update | delete | disable
    changes = Column(JSON, nullable=False, default=dict)
