"""Task services of every kind: schedules and notifications, list, describe, rotate, delete.

An exporter's definition is in impexmod.export.definition, an importer's in
impexmod.importing.definition; both check and set their schedule and notifications here.
"""

from __future__ import annotations

import secrets
from typing import Any

from impexmod.extensions import db
from impexmod.messages import msg
from impexmod.models import Run, Task, TaskDestination, TaskKind, now
from impexmod.runs import feedcache
from impexmod.runs.feedstore import get_store
from impexmod.runs.history import describe_run
from impexmod.runs.schedule import InvalidSchedule, parse_schedule, parse_timezone
from impexmod.runs.slots import default_timezone, local_iso, next_slot
from impexmod.runs.tokens import feed_url, new_nonce

# Exporters and importers; "manual" tasks are the panel's one-off exports (impexmod.export.manual).
RECURRING_KINDS = TaskKind.recurring()


class InvalidTask(ValueError):
    """A task definition that cannot be saved; ``field`` names the culprit, ``message`` says
    why (in English; a Message the panel translates, impexmod.messages)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class TaskNotFound(LookupError):
    """No task has that id."""


def validate_schedule(schedule: str | None, timezone: str | None = None) -> tuple[str, str]:
    """Check a schedule and timezone; return their canonical text or raise InvalidTask."""
    try:
        parsed = parse_schedule(schedule)
    except InvalidSchedule as exc:
        raise InvalidTask("schedule", exc.message) from None
    zone = (timezone or "").strip() or default_timezone()
    try:
        parse_timezone(zone)
    except InvalidSchedule as exc:
        raise InvalidTask("timezone", exc.message) from None
    return parsed.text, zone


def validate_notifications(emails: str | None, webhook_url: str | None) -> None:
    """Check notification targets; raise InvalidTask naming the bad field."""
    for address in (emails or "").split(","):
        address = address.strip()
        if address and ("@" not in address or " " in address or len(address) > 254):
            raise InvalidTask(
                "notify_emails",
                msg("%(address)s is not an e-mail address", address=repr(address)),
            )
    if len(emails or "") > 512:
        raise InvalidTask("notify_emails", msg("at most %(count)s characters", count=512))
    if webhook_url and not webhook_url.startswith(("http://", "https://")):
        raise InvalidTask("webhook_url", msg("a webhook URL starts with http:// or https://"))
    if len(webhook_url or "") > 512:
        raise InvalidTask("webhook_url", msg("at most %(count)s characters", count=512))


def check_when(
    schedule: str | None,
    timezone: str | None,
    notify_emails: str | None,
    webhook_url: str | None,
) -> tuple[str, str]:
    """Check a task's schedule, timezone and notification targets (InvalidTask naming the
    first bad field, the schedule first); return the schedule and timezone as stored."""
    when = validate_schedule(schedule, timezone)
    validate_notifications(notify_emails, webhook_url)
    return when


def _apply_schedule(task: Task, when: tuple[str, str]) -> None:
    task.schedule, task.timezone = when
    task.next_run_at = next_slot(task, now())


def _apply_notifications(
    task: Task, notify_success: bool, notify_emails: str | None, webhook_url: str | None
) -> None:
    task.notify_success = bool(notify_success)
    task.notify_emails = (notify_emails or "").strip() or None
    task.webhook_url = (webhook_url or "").strip() or None
    if task.webhook_url and not task.webhook_secret:  # a webhook gets a signing secret once
        task.webhook_secret = secrets.token_hex(32)


def apply_when(
    task: Task,
    when: tuple[str, str],
    notify_success: bool = False,
    notify_emails: str | None = None,
    webhook_url: str | None = None,
) -> None:
    """Set a task's schedule (``when``, from ``check_when``; its next run computed from now)
    and who hears about its runs; the caller commits."""
    _apply_schedule(task, when)
    _apply_notifications(task, notify_success, notify_emails, webhook_url)


def set_schedule(task: Task, schedule: str | None, timezone: str | None = None) -> Task:
    """Change a task's schedule and timezone; its next run is computed from now."""
    _apply_schedule(task, validate_schedule(schedule, timezone))
    db.session.commit()
    return task


def set_notifications(
    task: Task,
    notify_success: bool = False,
    notify_emails: str | None = None,
    webhook_url: str | None = None,
    new_secret: bool = False,
) -> Task:
    """Change who hears about the task's runs; a webhook gets a signing secret once (again
    with ``new_secret``, which kills the old one)."""
    validate_notifications(notify_emails, webhook_url)
    if new_secret:
        task.webhook_secret = None
    _apply_notifications(task, notify_success, notify_emails, webhook_url)
    db.session.commit()
    return task


def get_task(task_id: int) -> Task:
    """The task with this id, or TaskNotFound."""
    task = db.session.get(Task, task_id)
    if task is None:
        raise TaskNotFound(f"no task with id {task_id}")
    return task


def list_tasks(kind: str | None = None) -> list[Task]:
    """Every recurring task (or every task of one kind), oldest first."""
    query = db.session.query(Task).order_by(Task.id)
    if kind:
        query = query.filter(Task.kind == kind)
    else:
        query = query.filter(Task.kind.in_(RECURRING_KINDS))
    return query.all()


def rotate_token(task: Task) -> str:
    """Give the task a new feed URL; the old one answers 404 from now on."""
    task.token_nonce = new_nonce()
    db.session.commit()
    feedcache.forget(task.id)
    return feed_url(task)


def delete_task(task: Task) -> None:
    """Delete a task, its runs and its stored files."""
    task_id = task.id
    db.session.query(Run).filter(Run.task_id == task_id).delete()
    db.session.delete(task)
    db.session.commit()
    feedcache.forget(task_id)
    get_store().remove_task(task_id)


def last_run(task: Task) -> Run | None:
    """The task's most recent run."""
    return db.session.query(Run).filter(Run.task_id == task.id).order_by(Run.id.desc()).first()


def describe(task: Task) -> dict[str, Any]:
    """A task as plain data, with its feed URL and last run."""
    return {
        "id": task.id,
        "kind": task.kind,
        "name": task.name,
        "entity": task.entity,
        "format": task.format,
        "strategy": task.strategy,
        "options": task.options or {},
        "template": task.template,
        "stylesheet": task.stylesheet,
        "filters": task.filters or [],
        "filter_match": task.filter_match or "all",
        "feed_url": feed_url(task),
        "schedule": task.schedule or "none",
        "timezone": task.timezone or default_timezone(),
        "next_run_at": local_iso(task, task.next_run_at),
        "destinations": [describe_destination(d) for d in destinations_of(task)],
        "last_run": describe_run(last_run(task)),
    }


def destinations_of(task: Task) -> list[TaskDestination]:
    """The task's destinations, in their order (exporters only have some)."""
    return (
        db.session.query(TaskDestination)
        .filter(TaskDestination.task_id == task.id)
        .order_by(TaskDestination.position, TaskDestination.id)
        .all()
    )


def describe_destination(row: TaskDestination) -> dict[str, Any]:
    """A destination as plain data, its secrets named but never shown."""
    return {
        "id": row.id,
        "kind": row.kind,
        "label": row.label,
        "enabled": bool(row.enabled),
        "settings": dict(row.settings or {}),
        "secrets": sorted(row.get_secrets()),
        "learned": dict(row.learned or {}),
    }
