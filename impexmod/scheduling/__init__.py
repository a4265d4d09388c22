"""Recurring tasks: schedules, their next slots, and the scheduler that starts due runs."""

from __future__ import annotations

from impexmod.scheduling.schedule import (
    InvalidSchedule,
    Schedule,
    parse_schedule,
    parse_timezone,
    upcoming,
)

__all__ = ["InvalidSchedule", "Schedule", "parse_schedule", "parse_timezone", "upcoming"]
