"""Field-mapping templates: choose, order, rename and transform the columns of a flat export.

(Foundation stub: the mapping engine lands with the field-template work.)
"""

from __future__ import annotations

from impexmod.extensions import db
from impexmod.models import FieldTemplate


def saved_names() -> list[str]:
    """Names of the saved field templates, alphabetically."""
    return list(
        db.session.execute(db.select(FieldTemplate.name).order_by(FieldTemplate.name)).scalars()
    )


def load_mapping(name: str):
    """The saved field template of that name as a mapping, or None."""
    return None
