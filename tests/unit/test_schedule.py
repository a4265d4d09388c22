"""Schedule parsing and next-slot computation, with an explicit clock."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from impexmod.runs.schedule import InvalidSchedule, parse_schedule, parse_timezone, upcoming

PARIS = ZoneInfo("Europe/Paris")


def utc(text: str) -> datetime:
    """An aware UTC datetime from 'YYYY-MM-DD HH:MM'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def slots(schedule: str, after: str, count: int, tz: ZoneInfo = PARIS) -> list[str]:
    """The next slots as local ISO strings with their offsets."""
    return [s.isoformat() for s in upcoming(parse_schedule(schedule), tz, utc(after), count)]


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", "none"),
        ("none", "none"),
        ("daily@2:30", "daily@02:30"),
        ("DAILY@23:59", "daily@23:59"),
        ("weekly@Monday@09:00", "weekly@mon@09:00"),
        ("weekly@sun@00:00", "weekly@sun@00:00"),
        ("monthly@31@08:15", "monthly@31@08:15"),
        ("*/1  *  * * *", "*/1 * * * *"),
        ("0 9 * * mon-fri", "0 9 * * mon-fri"),
    ],
)
def test_parse_gives_canonical_text(text, canonical):
    assert parse_schedule(text).text == canonical


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("daily@24:00", "daily: '24:00' is not a time of day"),
        ("daily@9h", "daily: expected a time as HH:MM"),
        ("weekly@funday@09:00", "weekly: unknown day 'funday'"),
        ("weekly@09:00", "is not a schedule"),
        ("monthly@0@08:00", "monthly: the day must be 1 to 31"),
        ("monthly@32@08:00", "monthly: the day must be 1 to 31"),
        ("hourly@10", "is not a schedule"),
        ("* * * *", "five fields"),
        ("0 0 * * * *", "five fields"),
        ("61 * * * *", "invalid cron expression"),
        ("0 0 30 2 *", "never matches"),
    ],
)
def test_bad_schedules_say_why(text, says):
    with pytest.raises(InvalidSchedule, match=says.replace("*", r"\*")):
        parse_schedule(text)


def test_bad_timezone_is_named():
    with pytest.raises(InvalidSchedule, match="unknown timezone 'Europe/Pariss'"):
        parse_timezone("Europe/Pariss")
    with pytest.raises(InvalidSchedule, match="unknown timezone"):
        parse_timezone("../etc/passwd")
    assert parse_timezone("America/New_York").key == "America/New_York"


def test_none_never_runs():
    assert parse_schedule("none").next_after(utc("2026-01-01 00:00"), PARIS) is None


def test_daily_is_strictly_after_now():
    assert slots("daily@02:30", "2026-01-10 01:29", 2) == [
        "2026-01-10T02:30:00+01:00",
        "2026-01-11T02:30:00+01:00",
    ]
    # Exactly at the slot: that slot is taken, the next one is tomorrow.
    assert slots("daily@02:30", "2026-01-10 01:30", 1) == ["2026-01-11T02:30:00+01:00"]


def test_daily_on_the_spring_forward_day_runs_once_past_the_gap():
    # 2026-03-29: Paris clocks jump from 02:00 CET to 03:00 CEST; 02:30 does not exist.
    got = slots("daily@02:30", "2026-03-28 12:00", 3)
    assert got == [
        "2026-03-29T03:30:00+02:00",
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]
    # Asked right after it ran (as the scheduler does), it does not run again that day.
    nxt = parse_schedule("daily@02:30").next_after(utc("2026-03-29 01:30:05"), PARIS)
    assert nxt == utc("2026-03-30 00:30")


def test_daily_on_the_fall_back_day_runs_once_at_the_first_occurrence():
    # 2026-10-25: Paris clocks go back from 03:00 CEST to 02:00 CET; 02:30 happens twice.
    got = slots("daily@02:30", "2026-10-24 12:00", 3)
    assert got == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
        "2026-10-27T02:30:00+01:00",
    ]
    # Asked during the repeated hour, after the first 02:30: the second 02:30 is not a slot.
    nxt = parse_schedule("daily@02:30").next_after(utc("2026-10-25 00:30:05"), PARIS)
    assert nxt == utc("2026-10-26 01:30")


def test_daily_at_a_wall_time_stays_put_across_dst():
    # 09:00 local all year: 08:00 UTC in winter, 07:00 UTC in summer.
    assert [
        s.astimezone(UTC).hour
        for s in upcoming(parse_schedule("daily@09:00"), PARIS, utc("2026-03-27 06:00"), 3)
    ] == [8, 8, 7]
    assert [
        s.astimezone(UTC).hour
        for s in upcoming(parse_schedule("daily@09:00"), PARIS, utc("2026-10-24 06:00"), 3)
    ] == [7, 8, 8]


def test_weekly():
    # 2026-03-29 is a Sunday; the next Monday is the 30th, in summer time.
    assert slots("weekly@mon@09:00", "2026-03-29 10:00", 3) == [
        "2026-03-30T09:00:00+02:00",
        "2026-04-06T09:00:00+02:00",
        "2026-04-13T09:00:00+02:00",
    ]
    # On the day itself, before the time: today; after it: in a week.
    assert slots("weekly@mon@09:00", "2026-03-30 06:59", 1) == ["2026-03-30T09:00:00+02:00"]
    assert slots("weekly@mon@09:00", "2026-03-30 07:00", 1) == ["2026-04-06T09:00:00+02:00"]


def test_weekly_on_the_fall_back_sunday():
    assert slots("weekly@sun@02:30", "2026-10-20 00:00", 2) == [
        "2026-10-25T02:30:00+02:00",
        "2026-11-01T02:30:00+01:00",
    ]


def test_monthly_past_the_end_of_the_month_means_its_last_day():
    assert slots("monthly@31@08:00", "2026-01-31 12:00", 4) == [
        "2026-02-28T08:00:00+01:00",
        "2026-03-31T08:00:00+02:00",
        "2026-04-30T08:00:00+02:00",
        "2026-05-31T08:00:00+02:00",
    ]
    assert slots("monthly@30@08:00", "2026-02-01 00:00", 2) == [
        "2026-02-28T08:00:00+01:00",
        "2026-03-30T08:00:00+02:00",
    ]


@pytest.mark.parametrize(
    ("day", "in_february"),
    [(28, "2028-02-28"), (29, "2028-02-29"), (30, "2028-02-29"), (31, "2028-02-29")],
)
def test_monthly_in_a_leap_february(day, in_february):
    got = slots(f"monthly@{day}@08:00", "2028-02-01 00:00", 2)
    assert got[0] == f"{in_february}T08:00:00+01:00"
    assert got[1].startswith(f"2028-03-{day:02d}T08:00:00")


def test_monthly_29_in_a_common_february_runs_on_the_28th():
    assert slots("monthly@29@08:00", "2027-02-01 00:00", 2) == [
        "2027-02-28T08:00:00+01:00",
        "2027-03-29T08:00:00+02:00",
    ]


def test_monthly_on_a_dst_night():
    # The 29th of March 2026 at 02:30 does not exist: it runs at 03:30 that night.
    assert slots("monthly@29@02:30", "2026-03-01 00:00", 2) == [
        "2026-03-29T03:30:00+02:00",
        "2026-04-29T02:30:00+02:00",
    ]


def test_cron_every_minute():
    assert slots("*/1 * * * *", "2026-06-01 10:00:20", 3) == [
        "2026-06-01T12:01:00+02:00",
        "2026-06-01T12:02:00+02:00",
        "2026-06-01T12:03:00+02:00",
    ]


def test_cron_fixed_hour_behaves_like_daily_across_dst():
    assert slots("30 2 * * *", "2026-03-28 12:00", 2) == [
        "2026-03-29T03:30:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]
    assert slots("30 2 * * *", "2026-10-24 12:00", 2) == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]


def test_cron_wildcard_hour_runs_through_the_repeated_hour():
    # Every 30 minutes keeps running every 30 real minutes when 02:00-03:00 happens twice.
    assert slots("*/30 * * * *", "2026-10-24 23:00", 6) == [
        "2026-10-25T01:30:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]


def test_cron_wildcard_hour_skips_the_missing_hour_without_doubling():
    got = slots("*/30 * * * *", "2026-03-28 23:50", 5)
    assert got == [
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T01:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:30:00+02:00",
        "2026-03-29T04:00:00+02:00",
    ]


def test_cron_weekdays_and_month_days():
    # 09:00 on weekdays; 2026-05-01 is a Friday.
    assert slots("0 9 * * mon-fri", "2026-05-01 08:00", 2) == [
        "2026-05-04T09:00:00+02:00",
        "2026-05-05T09:00:00+02:00",
    ]
    assert slots("0 0 29 2 *", "2026-01-01 00:00", 2) == [
        "2028-02-29T00:00:00+01:00",
        "2032-02-29T00:00:00+01:00",
    ]


def test_other_timezones():
    ny = ZoneInfo("America/New_York")
    # New York springs forward on 2026-03-08 at 02:00.
    assert slots("daily@02:30", "2026-03-07 12:00", 2, ny) == [
        "2026-03-08T03:30:00-04:00",
        "2026-03-09T02:30:00-04:00",
    ]
    assert slots("daily@00:00", "2026-06-01 00:00", 1, ZoneInfo("Asia/Tokyo")) == [
        "2026-06-02T00:00:00+09:00"
    ]


def test_naive_times_are_utc():
    s = parse_schedule("daily@02:30")
    assert s.next_after(datetime(2026, 1, 10, 1, 0), PARIS) == utc("2026-01-10 01:30")
