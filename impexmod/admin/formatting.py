"""Jinja filters that turn stored values into what a merchant reads."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app

STATUS_STYLES = {
    "queued": "secondary",
    "running": "primary",
    "succeeded": "success",
    "failed": "danger",
    "skipped": "warning",
}


def shop_zone() -> ZoneInfo:
    """The timezone the panel shows times in (IMPEXMOD_TIMEZONE, else UTC)."""
    try:
        return ZoneInfo(str(current_app.config.get("TIMEZONE") or "UTC"))
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def local_time(moment: datetime | None, with_seconds: bool = False) -> str:
    """A stored naive UTC time in the shop's timezone, e.g. ``2026-11-22 19:36``."""
    if moment is None:
        return ""
    local = moment.replace(tzinfo=UTC).astimezone(shop_zone())
    return local.strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")


def human_size(size: int | None) -> str:
    """Bytes as 512 B, 12.3 KB, 4.5 MB."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def human_duration(seconds: float | None) -> str:
    """Seconds as 0.4 s, 12 s, 3 min 05 s, 1 h 02 min."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds:.2f} s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def schedule_text(schedule: str | None) -> str:
    """A task's schedule as shown: "manual" when it has none."""
    return "manual" if not schedule or schedule == "none" else schedule


def status_style(status: str | None) -> str:
    """The Bootstrap colour of a run status badge."""
    return STATUS_STYLES.get(status or "", "secondary")


def percent(done: int | None, total: int | None) -> int:
    """Progress in whole percent (0 while the total is unknown)."""
    if not total:
        return 0
    return max(0, min(100, int(100 * (done or 0) / total)))


def init_app(app: Flask) -> None:
    """Register the filters."""
    app.add_template_filter(local_time, "local_time")
    app.add_template_filter(human_size, "human_size")
    app.add_template_filter(human_duration, "human_duration")
    app.add_template_filter(schedule_text, "schedule_text")
    app.add_template_filter(status_style, "status_style")
    app.add_template_global(percent, "percent")
