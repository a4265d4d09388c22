"""kill -9 at random moments: of `impexmod exporter run` (in-process runs) and of RQ work horses
and whole workers. After each kill: no run left running, no task held, no temporary file left,
and the feed URL serves a complete feed of a run recorded as succeeded."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager

import pytest
import redis
from lxml import etree

from impexmod.dispatch import jobs, liveness
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.factories import seed
from impexmod.models import Run, RunStatus, Task
from impexmod.runs.feedstore import get_store
from tests.integration.test_run_liveness import shop_env

KILLS = 20
REDIS_URL = os.environ.get("IMPEXMOD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def catalog(app):
    # Big enough for an export to take about a second, so that kills land inside it.
    seed.seed_catalog(db.engine, products=1500)
    return app


def _check_nothing_left(task: Task) -> None:
    """The invariants every kill must leave."""
    db.session.rollback()
    active = db.session.query(Run).filter(Run.status.in_(RunStatus.active())).all()
    assert active == [], [(r.id, r.status, r.worker) for r in active]
    assert db.session.get(Task, task.id).lock_run_id is None
    folder = get_store().folder(task.id)
    temporary = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert temporary == []
    current = get_store().current(task.id)
    served = db.session.get(Run, current.run_id)
    assert served.status == "succeeded" and served.file_key == current.name
    path = get_store().path(task.id, current.name)
    assert path.stat().st_size == current.size
    etree.parse(str(path))  # complete and well-formed
    # No file of a run that did not succeed is kept.
    for kept in folder.glob("run-*"):
        run_id = int(kept.name.split("-")[1].split(".")[0])
        assert db.session.get(Run, run_id).status == "succeeded", kept.name


def _wait_ended(run_id: int, timeout: float = 60) -> Run:
    """Poll the run's row (and nothing else) until it has ended and freed its task (which it
    does right after recording its end)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()
        run = db.session.get(Run, run_id)
        if run.status not in RunStatus.active():
            if db.session.get(Task, run.task_id).lock_run_id != run_id:
                return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} still {run.status} after {timeout} s")


def _wait_for_run_after(run_id: int, timeout: float, said) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()
        if db.session.query(Run).filter(Run.id > run_id).count():
            return
        time.sleep(0.02)
    raise AssertionError(f"no run started after run {run_id} in {timeout} s: {said()}")


def test_kill_9_of_in_process_runs_at_random_moments(catalog, app, tmp_path):
    task = exporters.create_exporter("p", "products")
    assert jobs.start_run(task, inline=True).status == "succeeded"
    rng = random.Random(12)
    killed_running = 0
    with (tmp_path / "cli.err").open("w+") as errors:
        for i in range(KILLS):
            db.session.rollback()
            newest = db.session.query(Run).order_by(Run.id.desc()).first().id
            errors.seek(0)
            errors.truncate()
            cli = subprocess.Popen(
                [sys.executable, "-m", "impexmod.cli", "exporter", "run", str(task.id)],
                env=shop_env(app),
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
            if i % 5 == 0:
                time.sleep(rng.uniform(0.0, 0.8))  # during start-up, before or as the run is queued
            else:
                _wait_for_run_after(newest, 30, lambda: errors.seek(0) or errors.read())
                time.sleep(rng.uniform(0.0, 0.6))  # the export takes about a second
            cli.send_signal(signal.SIGKILL)
            cli.wait()
            db.session.rollback()
            last = db.session.query(Run).order_by(Run.id.desc()).first()
            killed_running += last.status in RunStatus.active()
            # The next claim (or the scheduler's sweep) ends the dead run and frees the task.
            liveness.sweep()
            _check_nothing_left(task)
    # The machine's speed varies: most kills land inside a run, a quarter at least must.
    assert killed_running >= KILLS // 4, "too few kills landed inside a run"
    abandoned = db.session.query(Run).filter(Run.error.like("%is gone%")).count()
    assert abandoned == killed_running
    assert jobs.start_run(task, inline=True).status == "succeeded"


@pytest.fixture
def rq_catalog(catalog):
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not running at {REDIS_URL} (.ci/run starts it)")
    catalog.config["REDIS_URL"] = REDIS_URL
    catalog.config["QUEUE_NAME"] = f"impexmod-kill-{uuid.uuid4().hex[:8]}"
    yield catalog
    jobs.queue().empty()


@contextmanager
def worker_process(app):
    """An `impexmod worker`, in its own process group (a kill takes its work horse too)."""
    env = shop_env(app)
    env["IMPEXMOD_QUEUE_NAME"] = app.config["QUEUE_NAME"]
    worker = subprocess.Popen(
        [sys.executable, "-m", "impexmod.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield worker
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(30)


def _horse_pid(run_id: int, timeout: float) -> int | None:
    """The pid of the process executing the run, once it has started (None if it ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()
        run = db.session.get(Run, run_id)
        if run.worker:
            return int(run.worker.rsplit(":", 2)[1])
        if run.status not in RunStatus.active():
            return None
        time.sleep(0.05)
    return None


@pytest.mark.redis
def test_kill_9_of_rq_work_horses_and_workers_at_random_moments(rq_catalog):
    app = rq_catalog
    task = exporters.create_exporter("p", "products")
    assert jobs.start_run(task, inline=True).status == "queued"
    rng = random.Random(7)
    horses = workers = 0
    worker = worker_process(app)
    process = worker.__enter__()
    try:
        _wait_ended(db.session.query(Run).one().id)
        for i in range(KILLS):
            run = jobs.start_run(task)
            pid = _horse_pid(run.id, timeout=30)
            time.sleep(rng.uniform(0.0, 0.6))
            if i % 4 == 3:
                # The whole worker and its horse: the next worker's start sweeps the run.
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(30)
                worker.__exit__(None, None, None)
                workers += 1
                worker = worker_process(app)
                process = worker.__enter__()
                ended = _wait_ended(run.id)
            else:
                if pid is not None:
                    try:
                        os.kill(pid, signal.SIGKILL)
                        horses += 1
                    except ProcessLookupError:
                        pass  # it had finished
                ended = _wait_ended(run.id)  # the worker's handler marks it, no sweep needed
            if ended.status == "failed":
                assert "The run was abandoned" in ended.error, ended.error
            _check_nothing_left(task)
    finally:
        worker.__exit__(None, None, None)
    assert horses >= KILLS // 4 and workers == KILLS // 4
    failed = db.session.query(Run).filter(Run.status == "failed").count()
    assert failed >= KILLS // 4, "too few kills landed inside a run"


@pytest.mark.redis
def test_a_worker_refuses_a_job_of_another_instance(rq_catalog):
    app = rq_catalog
    task = exporters.create_exporter("p", "products")
    run = jobs.start_run(task)
    assert run.job_id.startswith(f"impexmod-testshop-run-{run.id}-")
    env = shop_env(app)
    env.update(IMPEXMOD_SHOP_ID="othershop", IMPEXMOD_QUEUE_NAME=app.config["QUEUE_NAME"])
    done = subprocess.run(
        [sys.executable, "-m", "impexmod.cli", "worker", "--burst"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"refused run {run.id} of instance 'testshop'" in done.stderr
    db.session.rollback()
    untouched = db.session.get(Run, run.id)
    assert untouched.status == "queued" and untouched.worker is None
    # Without a queue name given, two instances never share a queue.
    assert jobs.queue_name() == app.config["QUEUE_NAME"]
    app.config["QUEUE_NAME"] = None
    assert jobs.queue_name() == "impexmod-testshop"
