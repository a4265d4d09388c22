"""Runs through a real Redis and a real `impexmod worker` process."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager

import pytest
import redis

from impexmod.cli.worker import PUBSUB_WAKE, Worker
from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.models import Language, Product, ProductLang, Run
from impexmod.runs.feedstore import get_store
from tests.support import process_env as worker_env

REDIS_URL = os.environ.get("IMPEXMOD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def rq_app(app):
    """The app with Redis configured and a queue of its own."""
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not running at {REDIS_URL} (.ci/run starts it)")
    app.config["REDIS_URL"] = REDIS_URL
    app.config["QUEUE_NAME"] = f"impexmod-test-{uuid.uuid4().hex[:8]}"
    db.session.add(Language(id=1, iso_code="en", name="English"))
    product = Product(reference="RQ-1", price=5)
    db.session.add(product)
    db.session.flush()
    db.session.add(
        ProductLang(id_product=product.id, id_lang=1, name="Queued", link_rewrite="queued")
    )
    db.session.commit()
    yield app
    jobs.queue().empty()


def impexmod(app, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the ``impexmod`` command in a separate process against the app's shop."""
    return subprocess.run(
        [sys.executable, "-m", "impexmod.cli", *args],
        env=worker_env(app),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextmanager
def running_worker(app, **env: str):
    """A long-running `impexmod worker` process (with ``env`` added to its environment) for
    the duration of the block; at its end the worker is left to finish what was queued, then
    stopped (its log is shown if it will not)."""
    with (
        tempfile.TemporaryFile() as log,
        subprocess.Popen(
            [sys.executable, "-m", "impexmod.cli", "worker"],
            env=worker_env(app, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
        ) as worker,
    ):
        try:
            yield worker
        finally:
            # A warm shutdown waits for the job at hand: let the queue drain first, so that a
            # loaded machine's slow job is not mistaken for a worker that will not stop.
            _drain(app, timeout=120)
            worker.terminate()
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
                log.seek(0)
                tail = log.read()[-4000:].decode(errors="replace")
                pytest.fail(f"the worker did not stop within 60 s of SIGTERM; its log:\n{tail}")


def _drain(app, timeout: float) -> None:
    """Wait until the app's queue has no job waiting or running (or ``timeout`` passes)."""
    from rq.registry import StartedJobRegistry

    with app.app_context():
        q = jobs.queue()
        started = StartedJobRegistry(queue=q)
        deadline = time.monotonic() + timeout
        while (q.count or started.count) and time.monotonic() < deadline:
            time.sleep(0.2)


def test_run_is_queued_then_executed_by_a_burst_worker(rq_app):
    task = exporters.create_exporter("rq", "products")
    run = jobs.start_run(task, inline=True)
    assert run.status == "queued" and run.job_id
    assert jobs.queue().count == 1
    with pytest.raises(jobs.TaskBusy):
        jobs.start_run(task)

    done = impexmod(rq_app, "worker", "--burst")
    assert done.returncode == 0, done.stderr

    finished = jobs.wait(run, timeout=30)
    assert finished.status == "succeeded", finished.error
    assert finished.entity_count == 1
    current = get_store().current(task.id)
    assert current is not None and current.run_id == run.id
    assert b"RQ-1" in get_store().path(task.id, current.name).read_bytes()
    # The task is free again.
    again = jobs.start_run(task)
    assert again.status == "queued"


def test_cli_run_wait_returns_when_the_worker_is_done(rq_app):
    task = exporters.create_exporter("rq", "products")
    with running_worker(rq_app):
        result = impexmod(rq_app, "exporter", "run", str(task.id), "--wait", "--json")
    assert result.returncode == 0, result.stderr
    assert '"status": "succeeded"' in result.stdout
    db.session.rollback()
    assert db.session.query(Run).filter_by(task_id=task.id).one().status == "succeeded"


def test_cli_run_wait_exits_non_zero_when_the_run_fails(rq_app):
    task = exporters.create_exporter("rq", "products")
    task.entity = "no-such-entity"  # a definition broken behind the service's back
    db.session.commit()
    with running_worker(rq_app):
        result = impexmod(rq_app, "exporter", "run", str(task.id), "--wait")
    assert result.returncode == 1
    assert "failed" in result.stdout and "unknown entity" in result.stdout


@pytest.mark.redis
def test_a_worker_stops_at_once_when_its_listener_has_read_the_unsubscribe_reply(rq_app):
    """The race that hung a CI run: RQ's pub/sub thread reads the UNSUBSCRIBE reply before it is
    told to stop, then sleeps a minute, which redis-py 8.2's ``stop()`` waits out (RQ's own
    worker takes 60 s here; impexmod's must not)."""
    worker = Worker([jobs.queue()], connection=redis.Redis.from_url(REDIS_URL))
    worker.subscribe()
    worker.pubsub.unsubscribe()
    time.sleep(PUBSUB_WAKE / 2)  # the thread has the reply and is back waiting
    started = time.monotonic()
    worker.unsubscribe()
    assert time.monotonic() - started < 3 * PUBSUB_WAKE
    assert not worker.pubsub_thread.is_alive()
