"""Jinja filters that turn stored values into what a merchant reads, in the panel's language.

English keeps the ISO dates and plain numbers the panel always showed (2026-11-22 19:36, 1,234,
12.50); other languages take their Babel formats (22/11/2026 19:36, 1 234, 12,50 in French).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_datetime, get_date_format
from babel.numbers import format_decimal
from flask import Flask, current_app
from flask_babel import get_locale
from flask_babel import gettext as _

from impexmod.admin.i18n import lazy_gettext as _l

STATUS_STYLES = {
    "queued": "secondary",
    "running": "primary",
    "succeeded": "success",
    "failed": "danger",
    "skipped": "warning",
}
STATUS_LABELS = {
    "queued": _l("queued"),
    "running": _l("running"),
    "succeeded": _l("succeeded"),
    "failed": _l("failed"),
    "skipped": _l("skipped"),
}

TRIGGER_LABELS = {
    "manual": _l("manual"),
    "schedule": _l("schedule"),
    "retry": _l("retry"),
}

STRATEGY_NAMES = {
    "full": _l("full"),
    "incremental": _l("incremental"),
    "dry run": _l("dry run"),
}
ACTION_LABELS = {
    "create": _l("create"),
    "update": _l("update"),
    "delete": _l("delete"),
    "disable": _l("disable"),
}


def _locale():
    return get_locale() or "en"


def _english() -> bool:
    locale = get_locale()
    return locale is None or locale.language == "en"


def format_number(value: int | float | Decimal | None) -> str:
    """A count with the locale's grouping: 12,345 (English), 12 345 (French)."""
    if value is None:
        return ""
    return format_decimal(value, locale=_locale())


def format_amount(value: float | Decimal | None) -> str:
    """An amount with two decimals and the locale's separator: 12.50, 12,50."""
    if value is None:
        return ""
    return format_decimal(value, format="0.00", locale=_locale())


def _decimal(value: float, pattern: str) -> str:
    return format_decimal(value, format=pattern, locale=_locale())


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
    if _english():
        return local.strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")
    time = "HH:mm:ss" if with_seconds else "HH:mm"
    return format_datetime(local, f"{_date_pattern()} {time}", locale=_locale())


def catalog_time(moment: datetime | None) -> str:
    """A catalog date as the shop stores it (no timezone), in the panel's language."""
    if moment is None:
        return ""
    if _english():
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return format_datetime(moment, f"{_date_pattern()} HH:mm:ss", locale=_locale())


def format_decimal_value(value: Decimal | float | None) -> str:
    """A stored decimal as it is (all its places), with the locale's separator."""
    if value is None:
        return ""
    if _english():
        return str(value)
    return format_decimal(value, format="0.######", locale=_locale())


def _date_pattern() -> str:
    """The locale's short date with a four-digit year (French: dd/MM/yyyy)."""
    pattern = get_date_format("short", locale=_locale()).pattern
    while "yy" in pattern:
        pattern = pattern.replace("yy", "y")
    return pattern.replace("y", "yyyy")


def slot_label(slot: datetime) -> str:
    """A schedule's next run time with its weekday and zone: Mon 2026-11-23 06:00 CET."""
    if _english():
        return slot.strftime("%a %Y-%m-%d %H:%M %Z")
    text = format_datetime(slot, f"EEE {_date_pattern()} HH:mm", locale=_locale())
    return f"{text} {slot.strftime('%Z')}"


def human_size(size: int | None) -> str:
    """Bytes as 512 B, 12.3 KB, 4.5 MB."""
    if size is None:
        return ""
    value = float(size)
    units = (_("B"), _("KB"), _("MB"), _("GB"))
    for index, unit in enumerate(units):
        if value < 1024 or index == len(units) - 1:
            return f"{int(value)} {unit}" if index == 0 else f"{_decimal(value, '0.0')} {unit}"
        value /= 1024
    return f"{size} {units[0]}"


def human_duration(seconds: float | None) -> str:
    """Seconds as 0.4 s, 12 s, 3 min 05 s, 1 h 02 min."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{_decimal(seconds, '0.00')} s"
    if seconds < 10:
        return f"{_decimal(seconds, '0.0')} s"
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
    return _("manual") if not schedule or schedule == "none" else schedule


def status_style(status: str | None) -> str:
    """The Bootstrap colour of a run status badge."""
    return STATUS_STYLES.get(status or "", "secondary")


def status_label(status: str | None) -> str:
    """A run status as the merchant reads it, in the panel's language."""
    label = STATUS_LABELS.get(status or "")
    return str(label) if label is not None else (status or "")


def trigger_label(trigger: str | None) -> str:
    """What started a run (manual, schedule, retry), in the panel's language."""
    label = TRIGGER_LABELS.get(trigger or "")
    return str(label) if label is not None else (trigger or "")


def entity_label(entity: str | None) -> str:
    """An entity name (``specific_prices``) as the merchant reads it (Specific prices)."""
    from impexmod.admin.forms import ENTITY_LABELS

    label = ENTITY_LABELS.get(entity or "")
    return str(label) if label is not None else (entity or "").replace("_", " ")


def strategy_label(strategy: str | None) -> str:
    """An export strategy (full, incremental; dry run for uploads), in the panel's language."""
    label = STRATEGY_NAMES.get(strategy or "")
    return str(label) if label is not None else (strategy or "")


def action_label(action: str | None) -> str:
    """What an import does to an entry (create, update, delete, disable)."""
    label = ACTION_LABELS.get(action or "")
    return str(label) if label is not None else (action or "")


def modes_text(modes: str | None) -> str:
    """An importer's modes ("create,update") as a list in the panel's language."""
    return ", ".join(action_label(m) for m in (modes or "").split(",") if m)


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
    app.add_template_filter(status_label, "status_label")
    app.add_template_filter(format_number, "number")
    app.add_template_filter(format_amount, "amount")
    app.add_template_global(percent, "percent")
    for function in (trigger_label, entity_label, strategy_label, action_label, modes_text):
        app.add_template_global(function, function.__name__)
