"""Field-mapping templates and uploaded XSLT stylesheets, both reusable across exporters."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, Integer, String, Text, false
from sqlalchemy.dialects import mysql

from impexmod.extensions import db
from impexmod.models.catalog import now

__all__ = ["FieldTemplate", "Stylesheet"]

# A stylesheet may be larger than MariaDB's TEXT (64 KiB).
LongText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


class FieldTemplate(db.Model):
    """A named field mapping: which columns a flat export writes, named and transformed how."""

    __tablename__ = "field_template"
    id = Column(Integer, primary_key=True)
    name = Column(String(64), nullable=False, unique=True)
    entity = Column(String(32), nullable=False)
    description = Column(String(255))
    # [{"header": ..., "source" | "value" | "concat": ..., "transforms": [...]}, ...]
    columns = Column(JSON, nullable=False, default=list)
    created_at = Column(DateTime, nullable=False, default=now)
    updated_at = Column(DateTime, nullable=False, default=now, onupdate=now)


class Stylesheet(db.Model):
    """An XSLT stylesheet uploaded by a merchant (checked to compile when saved)."""

    __tablename__ = "stylesheet"
    id = Column(Integer, primary_key=True)
    name = Column(String(64), nullable=False, unique=True)
    content = Column(LongText, nullable=False)
    # Applied chunk by chunk of entities (no whole document in memory), results joined.
    record_wise = Column(Boolean, nullable=False, default=False, server_default=false())
    created_at = Column(DateTime, nullable=False, default=now)
    updated_at = Column(DateTime, nullable=False, default=now, onupdate=now)
