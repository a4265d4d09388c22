"""Task services: define, list, describe, rotate and delete exporters."""

from __future__ import annotations

import secrets
from typing import Any

from impexmod import entities
from impexmod.dispatch.schedule import InvalidSchedule, parse_schedule, parse_timezone
from impexmod.dispatch.slots import default_timezone, local_iso, next_slot
from impexmod.export import output, selection
from impexmod.export.writers import FORMATS  # noqa: F401 (the CLI and the panel list them)
from impexmod.extensions import db
from impexmod.feeds.tokens import feed_url, new_nonce
from impexmod.models import Run, Task, now
from impexmod.runs.feedstore import get_store

STRATEGIES = ("full", "incremental")
# Exporters and importers; "manual" tasks are the panel's one-off exports (impexmod.export.manual).
RECURRING_KINDS = ("export", "import")


class InvalidTask(ValueError):
    """A task definition that cannot be saved; ``field`` names the culprit."""

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
        raise InvalidTask("schedule", str(exc)) from None
    zone = (timezone or "").strip() or default_timezone()
    try:
        parse_timezone(zone)
    except InvalidSchedule as exc:
        raise InvalidTask("timezone", str(exc)) from None
    return parsed.text, zone


def validate_notifications(emails: str | None, webhook_url: str | None) -> None:
    """Check notification targets; raise InvalidTask naming the bad field."""
    for address in (emails or "").split(","):
        address = address.strip()
        if address and ("@" not in address or " " in address or len(address) > 254):
            raise InvalidTask("notify_emails", f"{address!r} is not an e-mail address")
    if len(emails or "") > 512:
        raise InvalidTask("notify_emails", "at most 512 characters")
    if webhook_url and not webhook_url.startswith(("http://", "https://")):
        raise InvalidTask("webhook_url", "a webhook URL starts with http:// or https://")
    if len(webhook_url or "") > 512:
        raise InvalidTask("webhook_url", "at most 512 characters")


def validate_exporter(
    name: str,
    entity: str,
    fmt: str | None,
    strategy: str,
    schedule: str | None = None,
    timezone: str | None = None,
    *,
    options: dict | None = None,
    template: str | None = None,
    stylesheet: str | None = None,
    filters: list[dict] | None = None,
    filter_match: str | None = "all",
) -> dict[str, Any]:
    """Check an exporter definition; return its output and selection normalised, or raise
    InvalidTask naming the first bad field."""
    if not name or not name.strip():
        raise InvalidTask("name", "a name is required")
    if len(name) > 128:
        raise InvalidTask("name", "at most 128 characters")
    if entity not in entities.ENTITY_NAMES:
        raise InvalidTask("entity", f"choose one of {', '.join(entities.ENTITY_NAMES)}")
    try:
        fmt, options = output.validate_output(entity, fmt, options, template, stylesheet)
    except output.InvalidOutput as exc:
        raise InvalidTask(exc.field, exc.message) from None
    if strategy not in STRATEGIES:
        raise InvalidTask("strategy", f"choose one of {', '.join(STRATEGIES)}")
    try:
        chosen = selection.check(entity, filters, filter_match)
    except selection.InvalidFilter as exc:
        raise InvalidTask("filter", str(exc)) from None
    validate_schedule(schedule, timezone)
    return {
        "format": fmt,
        "options": options,
        "template": (template or "").strip() or None,
        "stylesheet": (stylesheet or "").strip() or None,
        "filters": chosen.filters or None,
        "filter_match": chosen.match,
    }


def create_exporter(
    name: str,
    entity: str,
    fmt: str | None = None,
    strategy: str = "full",
    options: dict | None = None,
    schedule: str | None = None,
    timezone: str | None = None,
    notify_success: bool = False,
    notify_emails: str | None = None,
    webhook_url: str | None = None,
    *,
    template: str | None = None,
    stylesheet: str | None = None,
    filters: list[dict] | None = None,
    filter_match: str | None = "all",
    max_retries: int = 0,
) -> Task:
    """Save a new exporter; its feed URL answers 404 until its first run."""
    chosen = validate_exporter(
        name,
        entity,
        fmt,
        strategy,
        schedule,
        timezone,
        options=options,
        template=template,
        stylesheet=stylesheet,
        filters=filters,
        filter_match=filter_match,
    )
    validate_notifications(notify_emails, webhook_url)
    schedule_text, zone = validate_schedule(schedule, timezone)
    task = Task(
        kind="export",
        name=name.strip(),
        entity=entity,
        strategy=strategy,
        token_nonce=new_nonce(),
        schedule=schedule_text,
        timezone=zone,
        notify_success=notify_success,
        notify_emails=(notify_emails or "").strip() or None,
        webhook_url=webhook_url or None,
        webhook_secret=secrets.token_hex(32) if webhook_url else None,
        max_retries=max_retries,
        **chosen,
    )
    task.next_run_at = next_slot(task, now())
    db.session.add(task)
    db.session.commit()
    return task


# What a full companion must share with its incremental exporter: the same file, whole.
COMPANION_SHAPE = ("entity", "format", "template", "stylesheet", "filters", "filter_match")


def companion_mismatch(task: Task, companion: Task) -> str | None:
    """Why ``companion`` cannot be the full feed of ``task``, or None if it can."""
    if companion.kind != "export" or companion.strategy != "full":
        return f"task {companion.id} is not a full exporter"
    for name in (*COMPANION_SHAPE, "options"):
        if (getattr(companion, name) or None) != (getattr(task, name) or None):
            return f"exporter {companion.id} differs in its {name.replace('_', ' ')}"
    return None


def set_full_companion(task: Task, companion_id: int | None) -> Task:
    """Name the full exporter whose feed an incremental exporter's clients fall back on when
    their cursor has expired (None: none); raise InvalidTask if it does not match."""
    if companion_id is None:
        task.full_companion_id = None
        db.session.commit()
        return task
    if task.kind != "export" or task.strategy != "incremental":
        raise InvalidTask("full_companion", "only an incremental exporter has a full companion")
    companion = db.session.get(Task, companion_id)
    if companion is None:
        raise InvalidTask("full_companion", f"no task {companion_id}")
    why = companion_mismatch(task, companion)
    if why:
        raise InvalidTask("full_companion", f"{why}: it must list the same entities the same way")
    task.full_companion_id = companion.id
    db.session.commit()
    return task


def set_schedule(task: Task, schedule: str | None, timezone: str | None = None) -> Task:
    """Change a task's schedule and timezone; its next run is computed from now."""
    task.schedule, task.timezone = validate_schedule(schedule, timezone)
    task.next_run_at = next_slot(task, now())
    db.session.commit()
    return task


def set_notifications(
    task: Task,
    notify_success: bool = False,
    notify_emails: str | None = None,
    webhook_url: str | None = None,
) -> Task:
    """Change who hears about the task's runs; a webhook gets a signing secret once."""
    validate_notifications(notify_emails, webhook_url)
    task.notify_success = notify_success
    task.notify_emails = (notify_emails or "").strip() or None
    task.webhook_url = webhook_url or None
    if webhook_url and not task.webhook_secret:
        task.webhook_secret = secrets.token_hex(32)
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
    return feed_url(task)


def delete_task(task: Task) -> None:
    """Delete a task, its runs and its stored files."""
    task_id = task.id
    db.session.query(Run).filter(Run.task_id == task_id).delete()
    db.session.delete(task)
    db.session.commit()
    get_store().remove_task(task_id)


def last_run(task: Task) -> Run | None:
    """The task's most recent run."""
    return db.session.query(Run).filter(Run.task_id == task.id).order_by(Run.id.desc()).first()


def describe_run(run: Run | None) -> dict[str, Any] | None:
    """A run as plain data (CLI JSON, panel)."""
    if run is None:
        return None
    return {
        "id": run.id,
        "task_id": run.task_id,
        "status": run.status,
        "trigger": run.trigger,
        "strategy": run.strategy,
        "queued_at": run.queued_at.isoformat() if run.queued_at else None,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "ended_at": run.ended_at.isoformat() if run.ended_at else None,
        "duration": run.duration,
        "total": run.total,
        "done": run.done,
        "entity_count": run.entity_count,
        "deleted_count": run.deleted_count,
        "bytes": run.bytes,
        "warnings": run.warnings or [],
        "error": run.error,
        "reason": run.reason,
        "scheduled_for": run.scheduled_for.isoformat() if run.scheduled_for else None,
        "file": run.file_key if run.file_removed_at is None else None,
        "file_removed_at": run.file_removed_at.isoformat() if run.file_removed_at else None,
        "log": (run.log or "").splitlines(),
    }


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
        "last_run": describe_run(last_run(task)),
    }
