"""Runs that die: heartbeats, the sweeper, retries, and a crash between commit and publication.

The kill -9 loops (in-process runs of ``impexmod exporter run`` and RQ work horses, at random
moments) are in test_run_kills.py; these tests pin each mechanism on its own.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from impexmod.dispatch import jobs, liveness
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.factories import seed
from impexmod.importing.definition import create_importer
from impexmod.models import Run, Task, now
from impexmod.runs import tasks
from impexmod.runs.feedstore import LocalFeedStore, get_store


@pytest.fixture
def catalog(app):
    seed.seed_catalog(db.engine, products=60)
    return app


def _holder(task: Task, **fields) -> Run:
    """A run holding ``task``, as a process that then died would have left it."""
    run = Run(task_id=task.id, status="running", started_at=now(), heartbeat_at=now(), **fields)
    db.session.add(run)
    db.session.flush()
    db.session.execute(update(Task).where(Task.id == task.id).values(lock_run_id=run.id))
    db.session.commit()
    return run


def _dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def test_a_run_whose_process_died_is_ended_at_once_and_its_task_runs_again(catalog):
    task = exporters.create_exporter("p", "products")
    here = socket.gethostname()
    holder = _holder(task, worker=f"{here}:{_dead_pid()}:1")
    store = get_store()
    store.folder(task.id).mkdir(parents=True)
    leftover = store.folder(task.id) / f".writing-run{holder.id}-abc.tmp"
    leftover.write_bytes(b"x" * 1000)
    run = jobs.start_run(task, inline=True)  # no 15-minute wait: the holder's pid is gone
    assert run.status == "succeeded", run.error
    db.session.refresh(holder)
    assert holder.status == "failed"
    assert "its process (pid" in holder.error and "is gone" in holder.error
    assert not leftover.exists()
    db.session.refresh(task)
    assert task.lock_run_id is None


def test_a_live_process_keeps_its_run_however_old_its_heartbeat(catalog):
    task = exporters.create_exporter("p", "products")
    holder = _holder(task, worker=liveness.process_identity())
    holder.heartbeat_at = now() - timedelta(days=1)
    db.session.commit()
    with pytest.raises(jobs.TaskBusy):
        jobs.start_run(task, inline=True)
    assert liveness.sweep().abandoned == []
    # A pid reused by another process is not the run's process.
    pid, start = os.getpid(), liveness.process_identity().rsplit(":", 1)[1]
    holder.worker = f"{socket.gethostname()}:{pid}:{int(start) + 1}"
    db.session.commit()
    assert liveness.sweep().abandoned == [holder.id]


def test_a_run_on_another_machine_is_dead_only_when_its_heartbeat_is_stale(catalog, app):
    task = exporters.create_exporter("p", "products")
    holder = _holder(task, worker="some-other-host:1234:99")
    assert liveness.sweep().abandoned == []
    holder.heartbeat_at = now() - timedelta(seconds=app.config["RUN_STALE_SECONDS"] + 5)
    db.session.commit()
    assert liveness.sweep().abandoned == [holder.id]
    db.session.refresh(holder)
    assert "stopped answering (no heartbeat since" in holder.error
    assert "The run was abandoned" in holder.log


def test_the_heartbeat_beats_and_notices_when_its_run_was_taken_for_dead(catalog):
    task = exporters.create_exporter("p", "products")
    holder = _holder(task)
    holder.heartbeat_at = before = now() - timedelta(minutes=5)
    db.session.commit()
    with liveness.Heartbeat(holder.id, interval=0.05) as beat:
        time.sleep(0.5)
        db.session.rollback()
        assert db.session.get(Run, holder.id).heartbeat_at > before
        assert not beat.abandoned.is_set()
        liveness.abandon(holder.id, "a test", retry=False)
        deadline = time.monotonic() + 5
        while not beat.abandoned.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert beat.abandoned.is_set()


def test_a_dead_run_is_retried_per_the_tasks_policy(catalog):
    task = exporters.create_exporter("p", "products")
    task.max_retries = 1
    db.session.commit()
    holder = _holder(task, worker=f"{socket.gethostname()}:{_dead_pid()}:1")
    assert liveness.sweep().abandoned == [holder.id]
    retry = db.session.query(Run).filter(Run.id > holder.id).one()
    assert retry.trigger == "retry" and retry.attempt == 2
    assert jobs.wait(retry, timeout=60).status == "succeeded"
    # Its retry dies too: the policy allows one retry, so no third attempt.
    db.session.execute(
        update(Run)
        .where(Run.id == retry.id)
        .values(status="running", worker=f"{socket.gethostname()}:{_dead_pid()}:1")
    )
    db.session.execute(update(Task).where(Task.id == task.id).values(lock_run_id=retry.id))
    db.session.commit()
    assert liveness.sweep().abandoned == [retry.id]
    assert db.session.query(Run).filter(Run.id > retry.id).count() == 0


def test_a_run_taken_for_dead_while_it_works_publishes_nothing(catalog, monkeypatch):
    task = exporters.create_exporter("p", "products")
    first = jobs.start_run(task, inline=True)
    before = get_store().current(task.id)
    place = LocalFeedStore.place

    def place_then_be_swept(self, task_id, run_id, tmp, ext):
        feed = place(self, task_id, run_id, tmp, ext)
        db.session.commit()  # what the run wrote so far (SQLite: one writer at a time)
        with db.engine.begin() as conn:  # as a sweeper elsewhere would
            conn.execute(update(Run).where(Run.id == run_id).values(status="failed"))
        return feed

    monkeypatch.setattr(LocalFeedStore, "place", place_then_be_swept)
    second = jobs.start_run(task, inline=True)
    assert second.status == "failed" and second.error is None  # failed by the "sweeper" only
    assert get_store().current(task.id) == before and before.run_id == first.id
    assert not list(get_store().folder(task.id).glob(f"run-{second.id}.*"))
    db.session.refresh(task)
    assert task.lock_run_id is None


def test_leftover_temporary_files_are_removed_only_when_their_run_is_over(catalog, app):
    task = exporters.create_exporter("p", "products")
    live = _holder(task, worker=liveness.process_identity())
    folder = get_store().folder(task.id)
    folder.mkdir(parents=True)
    mine = folder / f".writing-run{live.id}-a.tmp"
    ended = folder / ".writing-run999999-b.tmp"
    old_unnamed = folder / ".current-c.tmp"
    fresh_unnamed = folder / ".current-d.tmp"
    for path in (mine, ended, old_unnamed, fresh_unnamed):
        path.write_bytes(b"12345")
    long_ago = time.time() - app.config["RUN_STALE_SECONDS"] - 10
    os.utime(old_unnamed, (long_ago, long_ago))
    report = liveness.sweep()
    assert (report.temp_files, report.temp_bytes) == (2, 10)
    assert mine.exists() and fresh_unnamed.exists()
    assert not ended.exists() and not old_unnamed.exists()


CRASH = textwrap.dedent(
    """
    import os, sys
    from impexmod import create_app
    from impexmod.dispatch import jobs
    from impexmod.runs import tasks
    from impexmod.runs import lifecycle
    from impexmod.runs import feedstore
    from impexmod.runs.feedstore import LocalFeedStore

    def crash(*args, **kwargs):
        os._exit(3)  # the process dies here: no cleanup, no exception handler

    replace = feedstore._fsync_replace

    def crash_on_pointer(src, dst):
        if dst.name == "current.json":
            crash()  # its temporary is written, not yet renamed
        replace(src, dst)

    if sys.argv[1] == "before-commit":
        lifecycle.record_end = crash
    elif sys.argv[1] == "mid-point":
        feedstore._fsync_replace = crash_on_pointer
    else:
        LocalFeedStore.point = crash
    with create_app().app_context():
        jobs.start_run(tasks.get_task(int(sys.argv[2])), inline=True)
    """
)


def shop_env(app) -> dict[str, str]:
    """The environment under which another process sees the same shop as ``app``."""
    env = dict(os.environ)
    for name in ("DATABASE_URL", "SECRET_KEY", "SHOP_ID", "FEED_STORE", "REDIS_URL"):
        if app.config.get(name):
            env[f"IMPEXMOD_{name}"] = str(app.config[name])
    env["IMPEXMOD_INSTANCE_PATH"] = app.instance_path
    return env


def _crash(app, where: str, task: Task) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CRASH, where, str(task.id)],
        env=shop_env(app),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3, done.stderr


def _served(client, task: Task) -> bytes:
    response = client.get(tasks.feed_url(task).split("5000", 1)[1])
    assert response.status_code == 200
    data = response.get_data()
    response.close()
    return data


def test_a_crash_between_commit_and_publication_never_serves_an_unrecorded_run(
    catalog, app, client
):
    task = exporters.create_exporter("p", "products")
    first = jobs.start_run(task, inline=True)
    before = _served(client, task)
    assert before == get_store().path(task.id, first.file_key).read_bytes()

    # Killed after the file is in place but before the run's success is committed.
    _crash(app, "before-commit", task)
    db.session.rollback()
    crashed = db.session.query(Run).filter(Run.id > first.id).one()
    assert crashed.status == "running"
    assert _served(client, task) == before  # the URL never served it
    assert liveness.sweep().abandoned == [crashed.id]
    db.session.refresh(crashed)
    assert crashed.status == "failed"
    assert not list(get_store().folder(task.id).glob(f"run-{crashed.id}.*"))
    assert _served(client, task) == before

    # Killed after the success is committed but before the URL switched to it.
    _crash(app, "before-point", task)
    db.session.rollback()
    committed = db.session.query(Run).filter(Run.id > crashed.id).one()
    assert committed.status == "succeeded"
    assert _served(client, task) == before  # still the previous, complete feed
    db.session.refresh(task)
    assert task.lock_run_id == committed.id  # released by the next claim or sweep
    report = liveness.sweep()
    assert report.repointed == [task.id] and report.released == [task.id]
    assert _served(client, task) == get_store().path(task.id, committed.file_key).read_bytes()
    assert get_store().current(task.id).run_id == committed.id
    assert jobs.start_run(task, inline=True).status == "succeeded"

    # Killed in the middle of switching the URL: the pointer's temporary is written, not renamed.
    _crash(app, "mid-point", task)
    db.session.rollback()
    halfway = db.session.query(Run).order_by(Run.id.desc()).first()
    assert halfway.status == "succeeded"
    assert get_store().temporaries(task.id)  # what the killed process left
    report = liveness.sweep()  # at once, not only once stale: its run is over
    assert report.repointed == [task.id] and get_store().temporaries(task.id) == []
    assert get_store().current(task.id).run_id == halfway.id


def test_an_import_taken_for_dead_while_it_works_keeps_the_sweepers_verdict(
    catalog, tmp_path, monkeypatch
):
    from impexmod.importing import runs as import_runs

    feed = tmp_path / "stock.csv"
    feed.write_text("reference;quantity\nNOPE;1\n")
    importer = create_importer("from a file", str(feed), entity="stock")
    real = import_runs.import_file

    def import_then_be_swept(*args, **kwargs):
        report = real(*args, **kwargs)
        db.session.commit()
        with db.engine.begin() as conn:  # as a sweeper elsewhere would
            conn.execute(
                update(Run).where(Run.task_id == importer.id).values(status="failed", error="x")
            )
        return report

    monkeypatch.setattr(import_runs, "import_file", import_then_be_swept)
    run = jobs.start_run(importer, inline=True)
    db.session.rollback()
    assert db.session.get(Run, run.id).status == "failed"
    assert db.session.get(Task, importer.id).lock_run_id is None


def test_impexmod_sweep_ends_dead_runs_and_says_what_it_did(catalog, runner):
    import json

    task = exporters.create_exporter("p", "products")
    holder = _holder(task, worker=f"{socket.gethostname()}:{_dead_pid()}:1")
    result = runner.invoke(args=["sweep", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["abandoned"] == [holder.id]
    result = runner.invoke(args=["sweep"])
    assert result.output.startswith("Abandoned runs [], removed 0 temporary file(s)")
