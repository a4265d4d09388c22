"""Schedules: parsing the merchant's text and finding the next slot in the task's timezone.

A schedule is one of ``none``, ``daily@HH:MM``, ``weekly@DAY@HH:MM``, ``monthly@D@HH:MM`` or a
five-field cron expression. Slots are wall-clock times of the task's timezone, turned into UTC
instants one by one, so a daily 02:30 task stays at 02:30 local time across daylight saving:

- a wall time that does not exist (clocks skip forward over it) runs at the same distance past
  the gap: 02:30 on the spring-forward night in Paris runs at 03:30 CEST;
- a wall time that happens twice (clocks go back) runs at its first occurrence only, except for
  cron expressions whose hour field is a wildcard (``*/5 * * * *``), which run at every real
  occurrence, as cron itself does.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

from impexmod.messages import msg

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
KINDS = ("none", "daily", "weekly", "monthly", "cron")
# Zone offsets differ by at most a few hours between two instants of the same wall time:
# looking this far around a candidate is enough to find the earliest real instant.
_SLACK = timedelta(hours=3)
_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")


class InvalidSchedule(ValueError):
    """A schedule or timezone that cannot be used; ``message`` says why (an English Message,
    translated by the panel)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule; ``text`` is its canonical spelling."""

    kind: str
    text: str
    at: time | None = None
    weekday: int | None = None  # 0 = Monday
    day: int | None = None  # 1..31; past the month's end means its last day
    cron: str | None = None

    @property
    def is_none(self) -> bool:
        """True for a manual-only task."""
        return self.kind == "none"

    def next_after(self, after: datetime, tz: ZoneInfo) -> datetime | None:
        """The first slot strictly after ``after``, as an aware UTC datetime (None: never)."""
        if self.is_none:
            return None
        after = _as_utc(after)
        start = after.astimezone(tz).replace(tzinfo=None) - _SLACK
        both_folds = self.kind == "cron" and self.cron.split()[1].startswith("*")
        best: datetime | None = None
        best_wall: datetime | None = None
        for wall in self._walls(start):
            if best_wall is not None and wall > best_wall + _SLACK:
                break
            for instant in _instants(wall, tz, both_folds):
                if instant > after and (best is None or instant < best):
                    best, best_wall = instant, wall
        return best

    def _walls(self, start: datetime) -> Iterator[datetime]:
        """Wall-clock slots (naive, local) from ``start`` on, in order."""
        if self.kind == "cron":
            it = croniter(self.cron, start - timedelta(minutes=1))
            while True:
                yield it.get_next(datetime)
        day = start.date()
        while True:
            slot = self._slot_on(day)
            if slot is not None and slot >= start:
                yield slot
            day += timedelta(days=1)

    def _slot_on(self, day: date) -> datetime | None:
        if self.kind == "weekly" and day.weekday() != self.weekday:
            return None
        if self.kind == "monthly":
            last = calendar.monthrange(day.year, day.month)[1]
            if day.day != min(self.day, last):
                return None
        return datetime.combine(day, self.at)


def _as_utc(moment: datetime) -> datetime:
    # Naive datetimes are UTC, as stored in the database.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _instants(wall: datetime, tz: ZoneInfo, both_folds: bool) -> list[datetime]:
    """The UTC instants a local wall time stands for (see the module docstring)."""
    first = wall.replace(tzinfo=tz, fold=0)
    second = wall.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return [first.astimezone(UTC)]
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != wall:
        # In a gap, fold=0 reads the wall time with the offset from before the change,
        # which lands as far past the gap as the time was into it.
        return [first.astimezone(UTC)]
    if both_folds:
        return [first.astimezone(UTC), second.astimezone(UTC)]
    return [first.astimezone(UTC)]


def _parse_hhmm(text: str, what: str) -> time:
    match = _HHMM.match(text.strip())
    if not match:
        raise InvalidSchedule(
            msg("%(kind)s: expected a time as HH:MM, got %(text)s", kind=what, text=repr(text))
        )
    hour, minute = int(match[1]), int(match[2])
    if hour > 23 or minute > 59:
        raise InvalidSchedule(
            msg(
                "%(kind)s: %(text)s is not a time of day (00:00 to 23:59)",
                kind=what,
                text=repr(text),
            )
        )
    return time(hour, minute)


def _parse_weekday(text: str) -> int:
    word = text.strip().lower()
    key = word[:3]
    # "mon", "Monday", "MON" and "monday" all name Monday; "mo" or "mondays" do not.
    if key not in WEEKDAYS or not _DAY_NAMES[WEEKDAYS.index(key)].startswith(word):
        raise InvalidSchedule(
            msg(
                "weekly: unknown day %(day)s; use one of %(days)s",
                day=repr(text),
                days=", ".join(WEEKDAYS),
            )
        )
    return WEEKDAYS.index(key)


def _parse_cron(text: str) -> Schedule:
    fields = text.split()
    if len(fields) != 5:
        raise InvalidSchedule(
            msg(
                "a cron expression has five fields (minute hour day-of-month month "
                "day-of-week), got %(count)s in %(text)s; or use none, daily@HH:MM, "
                "weekly@DAY@HH:MM, monthly@D@HH:MM",
                count=len(fields),
                text=repr(text),
            )
        )
    expr = " ".join(fields)
    try:
        # A valid expression that never matches (30 February) fails here, not in the scheduler.
        croniter(expr, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        raise InvalidSchedule(
            msg("cron expression %(cron)s never matches a date", cron=repr(expr))
        ) from None
    except (CroniterBadCronError, CroniterError, ValueError, KeyError) as exc:
        raise InvalidSchedule(
            msg("invalid cron expression %(cron)s: %(error)s", cron=repr(expr), error=str(exc))
        ) from None
    return Schedule(kind="cron", text=expr, cron=expr)


def parse_schedule(text: str | None) -> Schedule:
    """Parse a schedule; raise InvalidSchedule saying what is wrong."""
    raw = (text or "").strip()
    if raw.lower() in ("", "none", "manual"):
        return Schedule(kind="none", text="none")
    if "@" not in raw:
        return _parse_cron(raw)
    kind, _, rest = raw.partition("@")
    kind = kind.strip().lower()
    parts = rest.split("@")
    if kind == "daily" and len(parts) == 1:
        at = _parse_hhmm(parts[0], "daily")
        return Schedule(kind="daily", text=f"daily@{at:%H:%M}", at=at)
    if kind == "weekly" and len(parts) == 2:
        weekday = _parse_weekday(parts[0])
        at = _parse_hhmm(parts[1], "weekly")
        return Schedule(
            kind="weekly", text=f"weekly@{WEEKDAYS[weekday]}@{at:%H:%M}", at=at, weekday=weekday
        )
    if kind == "monthly" and len(parts) == 2:
        day_text = parts[0].strip()
        if not day_text.isdigit() or not 1 <= int(day_text) <= 31:
            raise InvalidSchedule(
                msg("monthly: the day must be 1 to 31, got %(day)s", day=repr(day_text))
            )
        at = _parse_hhmm(parts[1], "monthly")
        day = int(day_text)
        return Schedule(kind="monthly", text=f"monthly@{day}@{at:%H:%M}", at=at, day=day)
    raise InvalidSchedule(
        msg(
            "%(text)s is not a schedule; use none, daily@HH:MM, weekly@DAY@HH:MM, "
            "monthly@D@HH:MM or a five-field cron expression",
            text=repr(raw),
        )
    )


def parse_timezone(name: str | None) -> ZoneInfo:
    """The IANA timezone called ``name``; raise InvalidSchedule if there is none."""
    if not name or not name.strip():
        raise InvalidSchedule(msg("a timezone is required, such as Europe/Paris"))
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(
            msg("unknown timezone %(name)s; use an IANA name such as Europe/Paris", name=repr(name))
        ) from None


def upcoming(schedule: Schedule, tz: ZoneInfo, now: datetime, count: int = 3) -> list[datetime]:
    """The next ``count`` slots after ``now``, in the task's timezone (for previews)."""
    slots: list[datetime] = []
    moment = now
    while len(slots) < count:
        nxt = schedule.next_after(moment, tz)
        if nxt is None:
            break
        slots.append(nxt.astimezone(tz))
        moment = nxt
    return slots
