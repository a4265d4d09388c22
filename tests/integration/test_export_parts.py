"""Large full exports in key-range parts, written by real `impexmod worker` processes on a real
Redis, joined into one feed: the bytes one writer gives, on the local store and on S3 (moto's
server mode on loopback stands in for S3/MinIO)."""

from __future__ import annotations

import os
import re
import socket
import time
import uuid
from contextlib import ExitStack

import pytest
import redis
from sqlalchemy import select, update

from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.export import parts
from impexmod.extensions import db
from impexmod.factories.seed import seed_catalog
from impexmod.models import PartStatus, ProductLang, Run, RunPart
from impexmod.runs import lifecycle
from impexmod.runs.feedstore import get_store
from tests.integration.test_rq_worker import REDIS_URL, _drain, running_worker

PRODUCTS = 400
# What the workers' processes are told: cut from 2 x 40 entities, into 4 parts at most.
SPLIT = {
    "IMPEXMOD_EXPORT_PARTS": "4",
    "IMPEXMOD_EXPORT_PART_MIN": "40",
    "IMPEXMOD_CHUNK_SIZE": "25",
}


@pytest.fixture
def parts_app(app, feed_store):
    """A seeded shop with Redis, a queue of its own, and exports split into 4 parts."""
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not running at {REDIS_URL} (.ci/run starts it)")
    seed_catalog(db.engine, PRODUCTS, seed=3)
    app.config.update(
        REDIS_URL=REDIS_URL,
        QUEUE_NAME=f"impexmod-test-{uuid.uuid4().hex[:8]}",
        EXPORT_PARTS=4,
        EXPORT_PART_MIN=40,
        CHUNK_SIZE=25,
        RUN_STALE_SECONDS=20,
    )
    yield app
    jobs.queue().empty()


def single_pass(app, task) -> bytes:
    """The task's feed as one writer writes it (no Redis: the run is not split)."""
    app.config["REDIS_URL"] = None
    try:
        run = jobs.start_run(task, inline=True)
    finally:
        app.config["REDIS_URL"] = REDIS_URL
    assert run.status == "succeeded", run.error
    assert "Split into" not in run.log
    return feed_bytes(task)


def feed_bytes(task) -> bytes:
    store = get_store()
    with store.open(task.id, store.current(task.id).name) as fh:
        return fh.read()


def masked(data: bytes) -> bytes:
    """A native feed without its generation time and change epoch (two runs differ by them)."""
    data = re.sub(rb'generated-at="[^"]+"', b'generated-at="-"', data, count=1)
    return re.sub(rb'window-to="[^"]+"', b'window-to="-"', data, count=1)


def queued_run(task) -> Run:
    """A run as ``start_run`` queues it, but taken off the queue: this process performs it,
    as a work horse would (so the test can watch the run's own worker from inside). Called
    once the other worker listens (a worker starting would take the run for dead)."""
    run = jobs.start_run(task)
    jobs.queue().empty()
    return run


def listening(worker_block, app):
    """Wait until the `impexmod worker` of ``worker_block`` listens on the app's queue."""
    from rq import Worker

    deadline = time.monotonic() + 60
    while not Worker.all(queue=jobs.queue()):
        assert time.monotonic() < deadline, "the worker did not start listening in 60 s"
        time.sleep(0.1)
    return worker_block


def part_lines(log: str) -> list[str]:
    return re.findall(r"^.*Part \d of 4 \(.*$", log, flags=re.M)


@pytest.mark.redis
@pytest.mark.parametrize("fmt", ["xml", "csv", "jsonl"])
def test_two_workers_write_the_parts_and_the_join_is_the_single_writer_feed(parts_app, fmt):
    task = exporters.create_exporter("Parts", "products", fmt)
    alone = single_pass(parts_app, task)
    took_part_2 = []

    def wait_for_the_other_worker(_run):  # at each of this worker's progress commits
        if took_part_2:
            return
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            db.session.rollback()
            part = db.session.execute(
                select(RunPart).where(RunPart.run_id == run.id, RunPart.number == 1)
            ).scalar_one()
            if part.status != PartStatus.QUEUED:
                took_part_2.append(part.worker)
                return
            time.sleep(0.05)

    with running_worker(parts_app, **SPLIT) as worker:
        listening(worker, parts_app)
        run = queued_run(task)
        with lifecycle.watching(wait_for_the_other_worker):
            status = jobs.execute(run.id)
    db.session.rollback()
    run = db.session.get(Run, run.id)
    assert status == "succeeded", (run.error, run.log)
    joined = feed_bytes(task)
    assert (masked(joined) if fmt == "xml" else joined) == (
        masked(alone) if fmt == "xml" else alone
    )
    assert run.entity_count == PRODUCTS and run.done == PRODUCTS and run.total == PRODUCTS
    assert "Split into 4 parts by id" in run.log
    lines = part_lines(run.log)
    assert len(lines) == 4, run.log
    writers = {line.rsplit(" by ", 1)[1] for line in lines}
    # This process (the run's worker) wrote some; the other worker's work horses the others.
    mine = f"{socket.gethostname()}:{os.getpid()}"
    assert mine in writers and took_part_2[0] in writers - {mine}, lines
    # Nothing of the parts is left: rows, files or objects.
    assert db.session.query(RunPart).count() == 0
    assert get_store().temporaries(task.id) == []


@pytest.mark.redis
def test_a_run_through_two_workers_is_split_and_joined(parts_app):
    task = exporters.create_exporter("Parts", "products", "csv", options={"separator": ","})
    alone = single_pass(parts_app, task)
    run = jobs.start_run(task)
    with ExitStack() as workers:
        for _ in range(2):
            workers.enter_context(running_worker(parts_app, **SPLIT))
        ended = jobs.wait(run, timeout=120)
    assert ended.status == "succeeded", ended.error
    assert "Split into 4 parts by id" in ended.log and len(part_lines(ended.log)) == 4
    assert feed_bytes(task) == alone


@pytest.mark.redis
def test_one_worker_writes_every_part_itself(parts_app):
    """The run's worker takes the parts no other worker has: alone, it still ends the run (the
    part jobs it queued find their parts taken)."""
    task = exporters.create_exporter("Parts", "products", "jsonl")
    alone = single_pass(parts_app, task)
    run = jobs.start_run(task)
    with running_worker(parts_app, **SPLIT):
        ended = jobs.wait(run, timeout=120)
        _drain(parts_app, timeout=60)
    assert ended.status == "succeeded", ended.error
    lines = part_lines(ended.log)
    assert len(lines) == 4 and len({line.rsplit(" by ", 1)[1] for line in lines}) == 1
    assert feed_bytes(task) == alone


@pytest.mark.redis
def test_a_failed_part_fails_the_run_and_leaves_the_previous_feed(parts_app):
    task = exporters.create_exporter("Parts", "products")
    before = single_pass(parts_app, task)
    previous = get_store().current(task.id)
    # The last product's name holds a character XML cannot carry: the last part fails on it.
    last = db.session.execute(select(ProductLang).order_by(ProductLang.id_product.desc())).first()
    db.session.execute(
        update(ProductLang)
        .where(ProductLang.id_product == last[0].id_product)
        .values(name="Broken \x01 name")
    )
    db.session.commit()
    run = jobs.start_run(task)
    with ExitStack() as workers:
        for _ in range(2):
            workers.enter_context(running_worker(parts_app, **SPLIT))
        ended = jobs.wait(run, timeout=120)
    assert ended.status == "failed"
    assert "part 4 of 4 (ids from " in ended.error and "U+0001" in ended.error, ended.error
    assert "the previous feed stays in place" in ended.log
    current = get_store().current(task.id)
    assert current.run_id == previous.run_id and feed_bytes(task) == before
    db.session.rollback()
    assert db.session.query(RunPart).count() == 0
    assert get_store().temporaries(task.id) == []
    # The task is free for the next run.
    assert db.session.get(type(task), task.id).lock_run_id is None


@pytest.mark.redis
def test_an_exporter_edited_while_its_parts_are_written_fails_the_run(parts_app):
    task = exporters.create_exporter("Parts", "products", "csv")
    edited = []

    def edit_then_let_the_other_worker_try(_run):
        if edited:
            return
        task.options = {"separator": "|"}  # as the panel's form would, behind the run's back
        db.session.commit()
        edited.append(True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            db.session.rollback()
            status = db.session.execute(
                select(RunPart.status).where(RunPart.run_id == run.id, RunPart.number == 1)
            ).scalar()
            if status not in (PartStatus.QUEUED, PartStatus.RUNNING):
                return
            time.sleep(0.05)

    with running_worker(parts_app, **SPLIT) as worker:
        listening(worker, parts_app)
        run = queued_run(task)
        with lifecycle.watching(edit_then_let_the_other_worker_try):
            status = jobs.execute(run.id)
    db.session.rollback()
    run = db.session.get(Run, run.id)
    assert status == "failed"
    assert f"exporter {task.id} was edited since run {run.id} started" in run.error, run.error
    assert get_store().current(task.id) is None  # never published
    assert get_store().temporaries(task.id) == []


def test_what_is_split(app):
    """Only full feeds a writer can split, worth two parts, with a queue for other workers."""
    app.config.update(EXPORT_PARTS=4, EXPORT_PART_MIN=100)
    assert [parts.part_count(n) for n in (0, 199, 200, 399, 1000)] == [1, 1, 2, 3, 4]
    app.config["EXPORT_PARTS"] = 1
    assert parts.part_count(10**6) == 1
    for fmt, split in [("xml", True), ("csv", True), ("jsonl", True), ("json", False)]:
        assert parts.splittable(exporters.create_exporter(fmt, "products", fmt)) is split
    assert not parts.splittable(exporters.create_exporter("x", "products", "xlsx"))
    assert not parts.splittable(
        exporters.create_exporter("g", "products", template="google-shopping")
    )
    assert not lifecycle.queues_parts()  # no Redis here: a run writes its feed alone
