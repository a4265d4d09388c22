"""Retention: old run files (and their gzip twins) go, the file a feed URL serves stays; on the
local store and on an S3 bucket (moto's server on loopback, standing in for S3/MinIO)."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import update

from impexmod.dispatch import jobs, retention
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.models import Run, now
from impexmod.runs import tasks
from impexmod.runs.feedstore import get_store
from impexmod.runs.tokens import feed_url


def age(run: Run, days: int) -> None:
    """Make a run look as if it ended ``days`` days ago."""
    db.session.execute(
        update(Run).where(Run.id == run.id).values(ended_at=now() - timedelta(days=days))
    )
    db.session.commit()


def files(task_id: int) -> set[str]:
    """The run files of a task in the feed store (objects, with S3)."""
    return set(get_store().names(task_id))


def test_old_run_files_are_removed_and_the_removal_recorded(app, feed_store):
    task = exporters.create_exporter("stock", "stock")
    old, older, recent = (jobs.start_run(task, inline=True) for _ in range(3))
    assert files(task.id) == {
        f"run-{r.id}.xml{gz}" for r in (old, older, recent) for gz in ("", ".gz")
    }
    age(old, 31)
    age(older, 45)
    age(recent, 29)

    report = retention.purge_run_files()
    assert sorted(report.removed_runs) == sorted([old.id, older.id])
    assert report.removed_bytes > 0 and report.kept_current == []
    assert files(task.id) == {f"run-{recent.id}.xml", f"run-{recent.id}.xml.gz"}
    for run in (old, older):
        db.session.refresh(run)
        assert run.file_removed_at is not None
        assert "removed by retention (30 days" in run.log.splitlines()[-1]
        described = tasks.describe_run(run)
        assert described["file"] is None and described["file_removed_at"]
    db.session.refresh(recent)
    assert recent.file_removed_at is None and tasks.describe_run(recent)["file"]

    # A second pass has nothing left to do.
    assert retention.purge_run_files().removed_runs == []


def test_the_file_a_feed_url_serves_is_never_removed(app, client, feed_store):
    task = exporters.create_exporter("stock", "stock")
    served = jobs.start_run(task, inline=True)
    task.entity = "no-such-entity"  # every later run fails: the old feed stays served
    db.session.commit()
    assert jobs.start_run(task, inline=True).status == "failed"
    age(served, 400)

    report = retention.purge_run_files()
    assert report.removed_runs == [] and report.kept_current == [served.id]
    assert get_store().current(task.id).name == f"run-{served.id}.xml"
    assert f"run-{served.id}.xml" in files(task.id)
    task.entity = "stock"
    db.session.commit()
    with client.get(feed_url(task).removeprefix(app.config["PUBLIC_URL"])) as response:
        assert response.status_code == 200 and b"<" in response.data


def test_retention_days_are_configurable(app, feed_store):
    app.config["RETENTION_DAYS"] = 7
    task = exporters.create_exporter("stock", "stock")
    old, _ = (jobs.start_run(task, inline=True) for _ in range(2))
    age(old, 8)
    assert retention.purge_run_files().removed_runs == [old.id]


def test_retention_command(app, runner):
    task = exporters.create_exporter("stock", "stock")
    old, _ = (jobs.start_run(task, inline=True) for _ in range(2))
    age(old, 3)
    kept = runner.invoke(args=["retention", "--json"])
    assert kept.exit_code == 0, kept.output
    assert json.loads(kept.output)["removed_runs"] == []
    gone = runner.invoke(args=["retention", "--days", "2"])
    assert gone.exit_code == 0, gone.output
    assert gone.output.startswith("Removed the files of 1 run(s)")
    db.session.refresh(old)
    assert old.file_removed_at is not None
