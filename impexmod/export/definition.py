"""Exporters: what one is (entity, output, selection, strategy), checked, created and changed.

The schedule and notifications of a task of any kind are checked and set by
impexmod.runs.tasks; runs of an exporter go through impexmod.export.runner.
"""

from __future__ import annotations

from typing import Any

from impexmod import entities
from impexmod.export import output, selection
from impexmod.export.writers import FORMATS  # noqa: F401 (the CLI and the panel list them)
from impexmod.extensions import db
from impexmod.messages import msg
from impexmod.models import Task, TaskKind
from impexmod.runs.tasks import InvalidTask, apply_when, check_when, validate_schedule
from impexmod.runs.tokens import new_nonce

STRATEGIES = ("full", "incremental")


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
        raise InvalidTask("name", msg("a name is required"))
    if len(name) > 128:
        raise InvalidTask("name", msg("at most %(count)s characters", count=128))
    if entity not in entities.ENTITY_NAMES:
        raise InvalidTask(
            "entity", msg("choose one of %(choices)s", choices=", ".join(entities.ENTITY_NAMES))
        )
    try:
        fmt, options = output.validate_output(entity, fmt, options, template, stylesheet)
    except output.InvalidOutput as exc:
        raise InvalidTask(exc.field, exc.message) from None
    if strategy not in STRATEGIES:
        raise InvalidTask(
            "strategy", msg("choose one of %(choices)s", choices=", ".join(STRATEGIES))
        )
    try:
        chosen = selection.check(entity, filters, filter_match)
    except selection.InvalidFilter as exc:
        raise InvalidTask("filter", exc.args[0] if exc.args else str(exc)) from None
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
    *,
    max_retries: int = 0,
    **definition: Any,
) -> Task:
    """Save a new exporter (``definition``: the keywords of _define); its feed URL answers 404
    until its first run."""
    task = Task(kind=TaskKind.EXPORT, token_nonce=new_nonce(), max_retries=max_retries)
    _define(task, name, entity, fmt, strategy, **definition)
    db.session.add(task)
    db.session.commit()
    return task


def update_exporter(
    task: Task, name: str, entity: str, fmt: str, strategy: str, **definition: Any
) -> Task:
    """Validate and save an exporter's new definition; its feed URL's token is kept."""
    if task.kind != TaskKind.EXPORT:
        raise InvalidTask("kind", msg("only exporters are edited with this form"))
    _define(task, name, entity, fmt, strategy, **definition)
    db.session.commit()
    return task


def _define(
    task: Task,
    name: str,
    entity: str,
    fmt: str | None,
    strategy: str,
    *,
    schedule: str | None = None,
    timezone: str | None = None,
    notify_success: bool = False,
    notify_emails: str | None = None,
    webhook_url: str | None = None,
    **output: Any,
) -> None:
    """Check a whole exporter definition, then set it on ``task`` (nothing is set if it fails);
    ``output``: the options, template, stylesheet, filters and filter_match of
    validate_exporter."""
    chosen = validate_exporter(name, entity, fmt, strategy, schedule, timezone, **output)
    when = check_when(schedule, timezone, notify_emails, webhook_url)
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
    apply_when(task, when, notify_success, notify_emails, webhook_url)


# What a full companion must share with its incremental exporter: the same file, whole.
COMPANION_SHAPE = ("entity", "format", "template", "stylesheet", "filters", "filter_match")


def companion_mismatch(task: Task, companion: Task) -> str | None:
    """Why ``companion`` cannot be the full feed of ``task``, or None if it can."""
    if companion.kind != TaskKind.EXPORT or companion.strategy != "full":
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
    if task.kind != TaskKind.EXPORT or task.strategy != "incremental":
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
