"""Saved column mappings (``ImportMapping``): the headers of a merchant's file -> our columns."""

from __future__ import annotations

from impexmod.extensions import db
from impexmod.models import ImportMapping


def saved_mappings() -> list[ImportMapping]:
    """Every saved mapping, by name."""
    return db.session.query(ImportMapping).order_by(ImportMapping.name).all()


def find_mapping(name: str) -> ImportMapping | None:
    """The saved mapping of that name, if any."""
    return db.session.query(ImportMapping).filter_by(name=name).one_or_none()
