"""Recurring importers: what one is (its URL, entity, format, modes, source, credentials,
mapping), checked, created and changed. Their runs are in impexmod.importing.runs; the
schedule and notifications of a task of any kind are checked and set by impexmod.runs.tasks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete

from impexmod.extensions import db
from impexmod.importing.context import Options
from impexmod.importing.outcomes import describe_import_run
from impexmod.importing.validation import (
    ENTITIES,
    MODES,
    InvalidImporter,
    check_name,
    check_options,
    check_url,
    parse_modes,
)
from impexmod.messages import msg
from impexmod.models import ImportSourceState, Task, TaskKind
from impexmod.runs import tasks
from impexmod.runs.tokens import new_nonce


def options_for(modes, **extra: Any) -> Options:
    """Import options from a list of modes and keyword settings."""
    modes = parse_modes(modes)
    return Options(
        create="create" in modes,
        update="update" in modes,
        delete="delete" in modes,
        disable="disable" in modes,
        **extra,
    )


def create_importer(
    name: str,
    url: str,
    entity: str | None = None,
    fmt: str | None = None,
    modes: str | list = "create,update",
    source: str | None = None,
    username: str | None = None,
    password: str | None = None,
    catch_up: bool = True,
    mapping: str | None = None,
    group: list[dict] | None = None,
    *,
    schedule: str | None = None,
    timezone: str | None = None,
    notify_success: bool = False,
    notify_emails: str | None = None,
    webhook_url: str | None = None,
) -> Task:
    """Save a recurring importer of ``url``; nothing is saved when a field is refused
    (InvalidImporter, or tasks.InvalidTask for the schedule and notifications)."""
    name, url, chosen, when = _checked(
        name, url, entity, fmt, modes, source, mapping,
        schedule, timezone, notify_emails, webhook_url,
    )  # fmt: skip
    username = (username or "").strip() or None
    task = Task(
        kind=TaskKind.IMPORT,
        name=name,
        entity=chosen["entity"],
        format=chosen["format"],
        strategy="full",
        options={
            "url": url,
            "modes": chosen["modes"],
            "source": chosen["source"],
            "username": username,
            "catch_up": catch_up,
            "mapping": chosen["mapping"],
            # A data group's descriptors: [{"pattern", "entity", "format", "mapping"}].
            "group": group,
        },
        token_nonce=new_nonce(),
    )
    _set_password(task, (password or None) if username else None)
    tasks.apply_when(task, when, notify_success, notify_emails, webhook_url)
    db.session.add(task)
    db.session.commit()
    return task


def update_importer(
    task: Task,
    name: str,
    url: str,
    entity: str | None = None,
    fmt: str | None = None,
    modes: str | list = "create,update",
    source: str | None = None,
    username: str | None = None,
    password: str | None = None,
    mapping: str | None = None,
    *,
    schedule: str | None = None,
    timezone: str | None = None,
    notify_success: bool = False,
    notify_emails: str | None = None,
    webhook_url: str | None = None,
) -> Task:
    """Validate and save an importer's new definition; nothing is saved when a field is refused.

    A blank ``password`` keeps the stored one (it is never shown back); a blank ``username``
    drops both. Changing what is imported or how (URL, entity, format, modes, source, mapping)
    makes the next run import the source whole, as if it had never seen it.
    """
    if task.kind != TaskKind.IMPORT:
        raise InvalidImporter("kind", msg("only importers are edited with this form"))
    name, url, chosen, when = _checked(
        name, url, entity, fmt, modes, source, mapping,
        schedule, timezone, notify_emails, webhook_url,
    )  # fmt: skip
    opts = dict(task.options or {})
    # What decides the input and how it is read: changed, the source is read whole again.
    shape = ("url", "modes", "source", "mapping")
    before = (task.entity, task.format, *(opts.get(k) for k in shape))
    username = (username or "").strip() or None
    stored = stored_password(task) if username else None
    opts.pop("password", None)  # written by a version that kept it in clear (migration 0009)
    opts.update(
        url=url,
        modes=chosen["modes"],
        source=chosen["source"],
        mapping=chosen["mapping"],
        username=username,
    )
    _set_password(task, (password or stored) if username else None)
    task.name = name
    task.entity, task.format = chosen["entity"], chosen["format"]
    # A new dict: the JSON column is saved when it is replaced, not when it is changed in place.
    task.options = opts
    tasks.apply_when(task, when, notify_success, notify_emails, webhook_url)
    if before != (task.entity, task.format, *(opts.get(k) for k in shape)):
        db.session.execute(delete(ImportSourceState).where(ImportSourceState.task_id == task.id))
    db.session.commit()
    return task


def stored_password(task: Task) -> str | None:
    """The importer's HTTP Basic auth password, decrypted (None without one)."""
    return (task.secrets or {}).get("password") or None


def _set_password(task: Task, password: str | None) -> None:
    # Encrypted at rest (Task.secrets), never in the options that descriptions show.
    rest = {k: v for k, v in (task.secrets or {}).items() if k != "password"}
    if password:
        rest["password"] = password
    task.secrets = rest or None


def _checked(name, url, entity, fmt, modes, source, mapping, schedule, timezone, emails, webhook):
    """Every field of an importer checked, before anything is saved."""
    return (
        check_name(name),
        check_url(url),
        check_options(entity, fmt, modes, source, mapping),
        tasks.check_when(schedule, timezone, emails, webhook),
    )


def importer_fields(task: Task) -> dict[str, Any]:
    """An importer's definition as ``update_importer`` takes it (the password left out)."""
    opts = task.options or {}
    return {
        "name": task.name,
        "url": opts.get("url") or "",
        "entity": task.entity,
        "fmt": task.format,
        "modes": opts.get("modes") or "create,update",
        "source": opts.get("source"),
        "username": opts.get("username"),
        "password": None,
        "mapping": opts.get("mapping"),
        "schedule": task.schedule or "none",
        "timezone": task.timezone,
        "notify_success": bool(task.notify_success),
        "notify_emails": task.notify_emails,
        "webhook_url": task.webhook_url,
    }


def describe_importer(task: Task) -> dict[str, Any]:
    """An importer as plain data, with its last run's counts (never its password)."""
    last = tasks.last_run(task)
    opts = task.options or {}
    return {
        "id": task.id,
        "kind": task.kind,
        "name": task.name,
        "url": opts.get("url"),
        "entity": task.entity,
        "format": task.format,
        "modes": opts.get("modes"),
        "source": opts.get("source"),
        "mapping": opts.get("mapping"),
        "username": opts.get("username"),
        "has_password": bool(stored_password(task)),
        "schedule": task.schedule,
        "timezone": task.timezone,
        "next_run_at": task.next_run_at.isoformat() if task.next_run_at else None,
        "last_run": describe_import_run(last) if last else None,
    }


__all__ = [
    "ENTITIES",
    "InvalidImporter",
    "MODES",
    "create_importer",
    "describe_importer",
    "importer_fields",
    "options_for",
    "parse_modes",
    "stored_password",
    "update_importer",
]
