"""Changing a saved exporter (the panel's edit form); creating one is in impexmod.runs.tasks."""

from __future__ import annotations

import secrets

from impexmod.dispatch.slots import next_slot
from impexmod.extensions import db
from impexmod.models import Task, now
from impexmod.runs.tasks import (
    InvalidTask,
    validate_exporter,
    validate_notifications,
    validate_schedule,
)


def update_exporter(
    task: Task,
    name: str,
    entity: str,
    fmt: str,
    strategy: str,
    schedule: str | None = None,
    timezone: str | None = None,
    notify_success: bool = False,
    notify_emails: str | None = None,
    webhook_url: str | None = None,
    *,
    options: dict | None = None,
    template: str | None = None,
    stylesheet: str | None = None,
    filters: list[dict] | None = None,
    filter_match: str | None = "all",
) -> Task:
    """Validate and save an exporter's new definition; its feed URL's token is kept."""
    if task.kind != "export":
        raise InvalidTask("kind", "only exporters are edited with this form")
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
    shape = ("entity", "format", "options", "template", "stylesheet", "filters", "filter_match")
    before = tuple(getattr(task, k) for k in shape)
    after = (entity, *(chosen[k] for k in shape[1:]))
    if before != after:
        # The partner never got this entity, shape or selection: the next incremental run
        # starts complete.
        task.last_epoch = None
    task.name = name.strip()
    task.entity, task.strategy = entity, strategy
    for key, value in chosen.items():
        setattr(task, key, value)
    task.schedule, task.timezone = schedule_text, zone
    task.next_run_at = next_slot(task, now())
    task.notify_success = notify_success
    task.notify_emails = (notify_emails or "").strip() or None
    task.webhook_url = webhook_url or None
    if webhook_url and not task.webhook_secret:
        task.webhook_secret = secrets.token_hex(32)
    db.session.commit()
    return task
