"""Field template services: save, change, list, delete, export and import named field
mappings (impexmod.export.mapping), reusable by any flat exporter through ``--template``.

Everything is validated before anything is written, in one commit: a bad template is never
half-saved. Sources are checked against the flat columns of this shop's languages.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from impexmod.export import mapping
from impexmod.export.mapping import MappingError
from impexmod.extensions import db
from impexmod.messages import msg
from impexmod.models import FieldTemplate, Language, Task, TaskKind

# Predefined templates, reserved even before their modules register in platforms.TEMPLATES.
RESERVED_NAMES = (
    "shopify",
    "woocommerce",
    "prestashop",
    "google-shopping",
    "google-shopping-tsv",
    "amazon",
)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
EXPORT_KEYS = ("name", "entity", "description", "columns")


class InvalidTemplate(ValueError):
    """A template that cannot be saved; ``field`` names the culprit (name, entity, columns...),
    ``message`` says why (in English; a Message the panel translates, impexmod.messages)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class TemplateNotFound(LookupError):
    """No saved field template has that name."""


class TemplateInUse(ValueError):
    """The template is named by exporters, which would break without it."""


def reserved_names() -> list[str]:
    """Names a saved template may not take: the predefined templates'."""
    from impexmod.export.platforms import TEMPLATES

    return sorted(set(RESERVED_NAMES) | set(TEMPLATES))


def shop_languages() -> list[str]:
    """The iso codes of the shop's languages, in the order flat columns list them."""
    return list(db.session.execute(select(Language.iso_code).order_by(Language.id)).scalars())


# ---------------------------------------------------------------------------------- checking


def _find(name: str) -> FieldTemplate | None:
    return db.session.execute(
        select(FieldTemplate).where(FieldTemplate.name == name)
    ).scalar_one_or_none()


def _check_name(name: Any, current: FieldTemplate | None = None) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidTemplate("name", msg("a name is required"))
    name = name.strip()
    if not NAME.fullmatch(name):
        raise InvalidTemplate(
            "name",
            msg(
                "%(name)s: up to 64 letters, digits, '-', '_' or '.', starting with a letter or "
                "digit",
                name=repr(name),
            ),
        )
    if name.lower() in reserved_names():
        raise InvalidTemplate(
            "name", msg("%(name)s is a predefined template: choose another name", name=repr(name))
        )
    # Case-insensitive, as MariaDB's unique index is: "Feed" and "feed" would clash there.
    clash = db.session.execute(
        select(FieldTemplate).where(func.lower(FieldTemplate.name) == name.lower())
    ).scalar_one_or_none()
    if clash is not None and clash is not current:
        raise InvalidTemplate(
            "name", msg("a template named %(name)s already exists", name=repr(clash.name))
        )
    return name


def _check_entity(entity: Any) -> str:
    entities = mapping.mappable_entities()
    if entity not in entities:
        raise InvalidTemplate(
            "entity",
            msg(
                "%(entity)s cannot be mapped; choose one of %(choices)s",
                entity=repr(entity),
                choices=", ".join(entities),
            ),
        )
    return entity


def _check_description(description: Any) -> str | None:
    if description is None:
        return None
    if not isinstance(description, str):
        raise InvalidTemplate("description", msg("a description is a text"))
    if len(description.strip()) > 255:
        raise InvalidTemplate("description", msg("at most %(count)s characters", count=255))
    return description.strip() or None


def check_columns(entity: str, columns: Any) -> list[dict]:
    """Validate columns for ``entity`` against this shop's flat columns; return them canonical."""
    available = mapping.available_columns(entity, shop_languages())
    try:
        return mapping.check_columns(columns, available)
    except MappingError as exc:
        raise InvalidTemplate("columns", exc.args[0]) from None  # a Message


def users(name: str) -> list[Task]:
    """The exporters whose template is ``name``."""
    return list(
        db.session.execute(
            select(Task)
            .where(Task.kind == TaskKind.EXPORT, Task.template == name)
            .order_by(Task.id)
        ).scalars()
    )


def _in_use_message(name: str, tasks: list[Task], entity: str | None = None) -> str:
    """Why template ``name`` cannot be deleted (or map ``entity``): the exporters naming it."""
    said = dict(name=name, exporters=", ".join(f"{t.id} ({t.name})" for t in tasks))
    several = len(tasks) > 1
    if entity is None:
        if several:
            return msg(
                "cannot delete template %(name)s: used by exporters %(exporters)s; "
                "give them another template first",
                **said,
            )
        return msg(
            "cannot delete template %(name)s: used by exporter %(exporters)s; "
            "give them another template first",
            **said,
        )
    if several:
        return msg(
            "cannot map %(entity)s with template %(name)s: used by exporters %(exporters)s; "
            "give them another template first",
            entity=entity,
            **said,
        )
    return msg(
        "cannot map %(entity)s with template %(name)s: used by exporter %(exporters)s; "
        "give them another template first",
        entity=entity,
        **said,
    )


def _save(template: FieldTemplate) -> FieldTemplate:
    db.session.add(template)
    try:
        db.session.commit()
    except IntegrityError:  # a same-named template saved meanwhile
        db.session.rollback()
        raise InvalidTemplate(
            "name", msg("a template named %(name)s already exists", name=repr(template.name))
        ) from None
    return template


# ---------------------------------------------------------------------------------- services


def get_template(name: str) -> FieldTemplate:
    """The saved template of that name, or TemplateNotFound."""
    template = _find(name)
    if template is None:
        known = ", ".join(mapping.saved_names()) or "none yet"
        raise TemplateNotFound(f"no field template named {name!r} (saved: {known})")
    return template


def list_templates() -> list[FieldTemplate]:
    """Every saved template, by name."""
    return list(db.session.execute(select(FieldTemplate).order_by(FieldTemplate.name)).scalars())


def create_template(
    name: str, entity: str, columns: Any, description: str | None = None
) -> FieldTemplate:
    """Save a new template; raise InvalidTemplate naming the first bad field."""
    name = _check_name(name)
    entity = _check_entity(entity)
    template = FieldTemplate(
        name=name,
        entity=entity,
        description=_check_description(description),
        columns=check_columns(entity, columns),
    )
    return _save(template)


def update_template(
    name: str,
    *,
    columns: Any = None,
    entity: str | None = None,
    description: str | None = None,
) -> FieldTemplate:
    """Change a template's columns, entity or description (what is not given stays)."""
    template = get_template(name)
    entity = _check_entity(entity) if entity is not None else template.entity
    if entity != template.entity:
        tasks = [t for t in users(name) if t.entity != entity]
        if tasks:
            raise TemplateInUse(_in_use_message(name, tasks, entity))
    checked = check_columns(entity, columns if columns is not None else template.columns)
    if description is not None:
        template.description = _check_description(description)
    template.entity = entity
    template.columns = checked
    return _save(template)


def delete_template(name: str) -> None:
    """Delete a template; refused (TemplateInUse) while an exporter names it."""
    template = get_template(name)
    tasks = users(name)
    if tasks:
        raise TemplateInUse(_in_use_message(name, tasks))
    db.session.delete(template)
    db.session.commit()


def describe(template: FieldTemplate) -> dict[str, Any]:
    """A template for listings (JSON-ready)."""
    return {
        "name": template.name,
        "entity": template.entity,
        "description": template.description,
        "headers": [c["header"] for c in template.columns],
        "used_by": [t.id for t in users(template.name)],
        "updated_at": template.updated_at.isoformat(timespec="seconds"),
    }


def export_template(name: str) -> dict[str, Any]:
    """The portable JSON object of a template: name, entity, description, columns."""
    template = get_template(name)
    return {
        "name": template.name,
        "entity": template.entity,
        "description": template.description,
        "columns": template.columns,
    }


def dumps(document: dict[str, Any]) -> str:
    """A template document as the JSON text exported to files (stable, readable, UTF-8)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def parse_document(data: str | bytes | dict) -> dict[str, Any]:
    """A template document from JSON text (or an already parsed object), structurally checked."""
    if isinstance(data, bytes | bytearray):
        try:
            data = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidTemplate(
                "file", msg("not UTF-8 text (byte %(byte)s)", byte=exc.start)
            ) from None
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise InvalidTemplate(
                "file",
                msg(
                    "not JSON: %(error)s at line %(line)s, column %(column)s",
                    error=exc.msg,
                    line=exc.lineno,
                    column=exc.colno,
                ),
            ) from None
    if not isinstance(data, dict):
        raise InvalidTemplate(
            "file",
            msg('a template file is a JSON object {"name", "entity", "description", "columns"}'),
        )
    for key in data:
        if key not in EXPORT_KEYS:
            raise InvalidTemplate(
                "file",
                f"unknown key {key!r}{mapping.suggest(str(key), EXPORT_KEYS)}; "
                f"a template file has {', '.join(EXPORT_KEYS)}",
            )
    for key in ("name", "entity", "columns"):
        if key not in data:
            raise InvalidTemplate(key, msg("the file has no %(key)s", key=repr(key)))
    return data


def import_template(data: str | bytes | dict, replace: bool = False) -> FieldTemplate:
    """Save the template of an exported document; a same-named one is overwritten only with
    ``replace`` (and not if exporters of another entity use it)."""
    document = parse_document(data)
    name = document["name"]
    existing = _find(name.strip()) if isinstance(name, str) else None
    if existing is None:
        return create_template(
            name, document["entity"], document["columns"], document.get("description")
        )
    if not replace:
        raise InvalidTemplate(
            "name", f"a template named {existing.name!r} already exists (replace it with --replace)"
        )
    return update_template(
        existing.name,
        columns=document["columns"],
        entity=document["entity"],
        description=document.get("description") or "",
    )
