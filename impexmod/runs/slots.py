"""A task's schedule in its timezone: the next slot as stored (naive UTC) and as shown."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import current_app

from impexmod.models import Task
from impexmod.runs.schedule import (
    InvalidSchedule,
    Schedule,
    parse_schedule,
    parse_timezone,
)


def default_timezone() -> str:
    """The timezone of tasks that do not name one (IMPEXMOD_TIMEZONE)."""
    return str(current_app.config.get("TIMEZONE") or "Europe/Paris")


def task_zone(task: Task) -> ZoneInfo:
    """The timezone the task's schedule is read in."""
    return parse_timezone(task.timezone or default_timezone())


def task_schedule(task: Task) -> Schedule:
    """The task's parsed schedule."""
    return parse_schedule(task.schedule)


def next_slot(task: Task, after: datetime) -> datetime | None:
    """The task's first slot after ``after``, naive UTC with whole seconds (None: manual)."""
    slot = task_schedule(task).next_after(after, task_zone(task))
    if slot is None:
        return None
    # Stored as naive UTC like every other time column, in whole seconds so that the
    # conditional UPDATE that claims it compares equal on every database.
    return slot.astimezone(UTC).replace(tzinfo=None, microsecond=0)


def local_iso(task: Task, moment: datetime | None) -> str | None:
    """A stored naive UTC time as ISO 8601 with its offset, in the task's timezone."""
    if moment is None:
        return None
    try:
        zone = task_zone(task)
    except InvalidSchedule:
        zone = UTC  # a timezone broken behind the services' back must not break listings
    return moment.replace(tzinfo=UTC).astimezone(zone).isoformat()
