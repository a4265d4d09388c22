"""The scheduler as an operator runs it: real `impexmod scheduler` and `impexmod worker`
processes, a real Redis, and no manual run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta

import pytest
import redis
from sqlalchemy import update

from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.models import Language, Product, ProductLang, Run, Task, now
from impexmod.runs.feedstore import get_store
from tests.support import process_env

REDIS_URL = os.environ.get("IMPEXMOD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def shop(app):
    """The app with Redis and a queue of its own, and one product to export."""
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not running at {REDIS_URL} (.ci/run starts it)")
    app.config["REDIS_URL"] = REDIS_URL
    app.config["QUEUE_NAME"] = f"impexmod-sched-{uuid.uuid4().hex[:8]}"
    db.session.add(Language(id=1, iso_code="en", name="English"))
    product = Product(reference="TICK-1", price=5)
    db.session.add(product)
    db.session.flush()
    db.session.add(ProductLang(id_product=product.id, id_lang=1, name="Tick", link_rewrite="t"))
    db.session.commit()
    yield app
    jobs.queue().empty()


def env(app) -> dict[str, str]:
    """The environment under which a process sees the same shop as ``app``, ticking fast."""
    # Look often; the slots themselves are computed as in production.
    return process_env(app, IMPEXMOD_SCHEDULER_INTERVAL="1")


@contextmanager
def process(app, *args: str) -> Iterator[subprocess.Popen]:
    """A long-running `impexmod ...` process for the duration of the block."""
    with subprocess.Popen(
        [sys.executable, "-m", "impexmod.cli", *args],
        env=env(app),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def runs_of(task_id: int) -> list[Run]:
    """The task's runs as committed, oldest first."""
    db.session.rollback()
    return db.session.query(Run).filter_by(task_id=task_id).order_by(Run.id).all()


def wait_for(predicate, timeout: float, what: str, procs=()):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        for proc in procs:
            assert proc.poll() is None, f"{proc.args[3:]} died: {proc.stderr.read()[-2000:]}"
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def test_every_minute_task_produces_its_feed_with_no_manual_run(shop):
    """Done when: `exporter add --schedule "*/1 * * * *"` with a scheduler and a worker
    produces the feed within two minutes. Two schedulers run, and the slot is not doubled."""
    added = subprocess.run(
        [sys.executable, "-m", "impexmod.cli", "exporter", "add", "--name", "Every minute"]
        + ["--entity", "products", "--schedule", "*/1 * * * *", "--json"],
        env=env(shop),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    task_id = json.loads(added.stdout)["id"]
    started = time.monotonic()
    with ExitStack() as stack:
        procs = [
            stack.enter_context(process(shop, "scheduler")),
            stack.enter_context(process(shop, "scheduler")),
            stack.enter_context(process(shop, "worker")),
        ]
        done = wait_for(
            lambda: [r for r in runs_of(task_id) if r.status == "succeeded"],
            timeout=120,
            what="the first scheduled run",
            procs=procs,
        )
        # Give the other scheduler time to (wrongly) start the same slot again.
        time.sleep(3)
    assert time.monotonic() - started < 120
    first = done[0]
    assert first.trigger == "schedule" and first.scheduled_for.second == 0
    runs = runs_of(task_id)
    assert all(r.trigger == "schedule" for r in runs)
    assert [r.scheduled_for for r in runs].count(first.scheduled_for) == 1
    current = get_store().current(task_id)
    assert current is not None and current.run_id == first.id
    assert b"TICK-1" in get_store().path(task_id, current.name).read_bytes()


def test_a_restarted_scheduler_catches_up_once(shop):
    task = exporters.create_exporter("nightly", "products", schedule="daily@03:00")
    # The scheduler was down for three days.
    db.session.execute(
        update(Task).where(Task.id == task.id).values(next_run_at=now() - timedelta(days=3))
    )
    db.session.commit()
    with process(shop, "worker") as worker, process(shop, "scheduler") as scheduler:
        wait_for(
            lambda: [r for r in runs_of(task.id) if r.status == "succeeded"],
            timeout=60,
            what="the catch-up run",
            procs=[worker, scheduler],
        )
        time.sleep(3)  # several more ticks
    [run] = runs_of(task.id)
    assert run.trigger == "schedule"
    db.session.refresh(task)
    assert now() < task.next_run_at <= now() + timedelta(days=1)


def test_a_task_still_queued_is_skipped_and_then_runs(shop):
    task = exporters.create_exporter("busy", "products", schedule="*/1 * * * *")
    # A manual run waits in the queue: no worker yet, so it is still going at the slot.
    waiting = jobs.start_run(task)
    db.session.execute(
        update(Task).where(Task.id == task.id).values(next_run_at=now() - timedelta(seconds=1))
    )
    db.session.commit()
    with process(shop, "scheduler") as scheduler:
        [skip] = wait_for(
            lambda: [r for r in runs_of(task.id) if r.status == "skipped"],
            timeout=30,
            what="the skip",
            procs=[scheduler],
        )
    assert skip.trigger == "schedule"
    assert skip.reason == f"run {waiting.id} was still queued"
    with process(shop, "worker") as worker:
        wait_for(
            lambda: "succeeded" in [r.status for r in runs_of(task.id) if r.id == waiting.id],
            timeout=60,
            what="the queued run",
            procs=[worker],
        )
