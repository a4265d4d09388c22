"""Schedules on tasks: validation naming the field, next run as ISO 8601 with its offset,
and the exporter commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from impexmod.export import definition as exporters
from impexmod.models import now
from impexmod.runs import tasks


def test_a_scheduled_exporter_knows_its_next_run(app):
    task = exporters.create_exporter("nightly", "stock", schedule="daily@2:30")
    assert (task.schedule, task.timezone) == ("daily@02:30", "Europe/Paris")
    assert now() < task.next_run_at <= now() + timedelta(days=1, hours=1)
    described = tasks.describe(task)
    assert described["schedule"] == "daily@02:30"
    assert described["timezone"] == "Europe/Paris"
    local = datetime.fromisoformat(described["next_run_at"])
    # An ISO 8601 time with the offset of Paris at that time, at 02:30 or 03:30 (DST night).
    assert local.utcoffset() == local.astimezone(ZoneInfo("Europe/Paris")).utcoffset()
    assert (local.hour, local.minute) in ((2, 30), (3, 30))
    assert local.astimezone(UTC).replace(tzinfo=None) == task.next_run_at


def test_the_default_timezone_comes_from_the_configuration(app):
    app.config["TIMEZONE"] = "America/New_York"
    task = exporters.create_exporter("ny", "stock", schedule="weekly@fri@17:00")
    assert task.timezone == "America/New_York"
    local = datetime.fromisoformat(tasks.describe(task)["next_run_at"])
    assert (local.weekday(), local.hour) == (4, 17)
    assert local.utcoffset() in (timedelta(hours=-5), timedelta(hours=-4))


def test_manual_tasks_have_no_next_run(app):
    described = tasks.describe(exporters.create_exporter("manual", "stock"))
    assert (described["schedule"], described["next_run_at"]) == ("none", None)


@pytest.mark.parametrize(
    ("schedule", "timezone", "field", "says"),
    [
        ("daily@25:00", None, "schedule", "not a time of day"),
        ("every day", None, "schedule", "five fields"),
        ("monthly@0@01:00", None, "schedule", "1 to 31"),
        ("daily@01:00", "Mars/Olympus", "timezone", "unknown timezone"),
    ],
)
def test_bad_schedules_name_the_field(app, schedule, timezone, field, says):
    with pytest.raises(tasks.InvalidTask) as caught:
        exporters.create_exporter("bad", "stock", schedule=schedule, timezone=timezone)
    assert caught.value.field == field and says in caught.value.message


def test_changing_the_schedule_moves_the_next_run(app):
    task = exporters.create_exporter("t", "stock", schedule="daily@02:30")
    tasks.set_schedule(task, "*/1 * * * *", "UTC")
    assert task.timezone == "UTC"
    assert task.next_run_at <= now() + timedelta(minutes=1)
    tasks.set_schedule(task, "none")
    assert task.next_run_at is None


def test_exporter_add_with_a_schedule_and_list(app, runner):
    added = runner.invoke(
        args=[
            "exporter",
            "add",
            "--name",
            "Stock",
            "--entity",
            "stock",
            "--schedule",
            "monthly@31@06:00",
            "--timezone",
            "Europe/Paris",
        ]
    )
    assert added.exit_code == 0, added.output
    assert "Schedule monthly@31@06:00 (Europe/Paris): next run 20" in added.output
    listed = runner.invoke(args=["exporter", "list", "--json"])
    [entry] = json.loads(listed.output)
    assert entry["schedule"] == "monthly@31@06:00" and entry["timezone"] == "Europe/Paris"
    local = datetime.fromisoformat(entry["next_run_at"])
    assert local.tzinfo is not None and (local.hour, local.minute) == (6, 0)
    text = runner.invoke(args=["exporter", "list"])
    assert f"monthly@31@06:00, next {entry['next_run_at']}" in text.output


def test_exporter_add_rejects_a_bad_schedule_naming_the_option(app, runner):
    result = runner.invoke(
        args=["exporter", "add", "--name", "x", "--entity", "stock", "--schedule", "daily@9"]
    )
    assert result.exit_code == 2
    assert "--schedule" in result.output and "HH:MM" in result.output
    result = runner.invoke(
        args=["exporter", "add", "--name", "x", "--entity", "stock", "--timezone", "Nowhere"]
    )
    assert result.exit_code == 2 and "--timezone" in result.output
