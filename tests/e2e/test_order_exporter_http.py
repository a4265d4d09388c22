"""Order exporters end to end: real `impexmod worker` processes on a real Redis, runs started
by the flags themselves, real receivers on loopback answering 200, then 500, then nothing.

An order paid is POSTed once to the ERP; a 500 is retried without a duplicate; a receiver that
hangs is given up after the timeout and the order sent again with the same key; after approval
the chain's warehouse exporter sends each order once. Two workers running two exporters on the
same flag send each of 200 orders exactly once."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest
import redis
from sqlalchemy import func, select

from impexmod.dispatch import jobs
from impexmod.extensions import db
from impexmod.factories.orm import OrderFactory, ensure_order_states
from impexmod.models import FlagStatus, Order, OrderFlag, Run
from impexmod.orders import exporter, flags, states
from impexmod.runs import lifecycle
from tests.integration.test_rq_worker import REDIS_URL, running_worker
from tests.order_receiver import receiving

FAST = {"IMPEXMOD_ORDER_EXPORT_BACKOFF": "0.05"}


@pytest.fixture
def rq_shop(app):
    """The app on Redis with a queue of its own; orders and the ERP-then-warehouse flags."""
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not running at {REDIS_URL} (.ci/run starts it)")
    app.config["REDIS_URL"] = REDIS_URL
    app.config["QUEUE_NAME"] = f"impexmod-test-{uuid.uuid4().hex[:8]}"
    ensure_order_states(db.session)
    db.session.commit()
    states.ensure_standard_transitions()
    flags.define("erp", "ERP")
    flags.define("warehouse", "Warehouse", needs_approval=True)
    states.allow("Awaiting payment", "Payment accepted", ["erp"])
    yield app
    jobs.queue().empty()


def _wait_for(condition, timeout=90, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _status(order_id, flag="erp"):
    return db.session.scalar(
        select(OrderFlag.status).where(OrderFlag.id_order == order_id, OrderFlag.flag == flag)
    )


def _no_active_run():
    return not db.session.scalar(
        select(func.count()).select_from(Run).where(Run.status.in_(("queued", "running")))
    )


def test_paid_orders_reach_the_erp_once_then_the_warehouse_after_approval(rq_shop):
    orders = [OrderFactory(reference=f"E2E{n}", state="Awaiting payment") for n in range(3)]
    db.session.commit()
    ids = [o.id for o in orders]
    with (
        receiving(script=[200, 500, 200, "hang", 200]) as erp,
        receiving(secret="the-warehouse-secret") as warehouse,
        running_worker(rq_shop, **FAST),
    ):
        first = exporter.create_order_exporter(
            "ERP", "erp", url=erp.url, secret=erp.secret, timeout=1, next_flags=["warehouse"]
        )
        exporter.create_order_exporter(
            "Warehouse", "warehouse", url=warehouse.url, secret=warehouse.secret, batch=10
        )
        for order_id in ids:  # one at a time: the receiver's script is in this order
            states.move(order_id, "Payment accepted", actor="panel")
            _wait_for(lambda i=order_id: _status(i) == FlagStatus.SENT, what="the ERP send")
        assert [p.answered for p in erp.posts] == [200, 500, 200, "hang", 200]
        assert all(erp.signed(p) for p in erp.posts)
        assert sorted(erp.keys.values()) == [1, 1, 1]  # no order twice
        keys = [p.headers["Idempotency-Key"] for p in erp.posts]
        assert keys[1] == keys[2] and keys[3] == keys[4]  # retries carry the same key
        runs = db.session.scalars(select(Run).where(Run.task_id == first.id)).all()
        assert {r.trigger for r in runs} == {"flag"} and {r.status for r in runs} == {"succeeded"}
        log = "".join(r.log for r in runs)
        assert "HTTP 500: Internal error" in log and "no answer within 1 s (timed out)" in log

        # The chain: held on the approval list, nothing sent to the warehouse yet.
        _wait_for(_no_active_run, what="the runs to end")
        assert warehouse.posts == []
        held = flags.held("warehouse")
        assert sorted(f.id_order for f in held) == sorted(ids)
        flags.approve([f.id for f in held], actor="merchant")
        _wait_for(
            lambda: all(_status(i, "warehouse") == FlagStatus.SENT for i in ids),
            what="the warehouse sends",
        )
        _wait_for(_no_active_run, what="the runs to end")
        assert sorted(warehouse.keys.values()) == [1, 1, 1]
        assert all(warehouse.signed(p) for p in warehouse.posts)
        assert all(p.headers["X-Impexmod-Flag"] == "warehouse" for p in warehouse.posts)


def test_two_workers_and_two_exporters_on_one_flag_send_each_order_exactly_once(rq_shop):
    count = 200
    for n in range(count):
        OrderFactory(reference=f"MANY{n}", state="Payment accepted")
    db.session.commit()
    for order_id in db.session.scalars(select(Order.id)).all():
        flags.set_flags(order_id, ["erp"], set_by="test")
    db.session.commit()
    with (
        receiving(delay=0.02) as erp,
        running_worker(rq_shop, **FAST),
        running_worker(rq_shop, **FAST),
    ):
        tasks = [
            exporter.create_order_exporter(
                name, "erp", url=erp.url, secret=erp.secret, on_flag=False
            )
            for name in ("ERP A", "ERP B")
        ]
        runs = [lifecycle.start(task) for task in tasks]
        # A forced third run while both go: the task is busy, the flags are shared out.
        with pytest.raises(lifecycle.TaskBusy):
            lifecycle.start(tasks[0])
        for run in runs:
            finished = jobs.wait(run, timeout=180)
            assert finished.status == "succeeded", finished.error
        db.session.rollback()
        sent = [db.session.get(Run, r.id).entity_count for r in runs]
    # How the two runs shared the orders depends on when each worker took its job; what is
    # checked is that together they sent each order once.
    assert sum(sent) == count, sent
    assert len(erp.posts) == count
    assert len(erp.keys) == count and set(erp.keys.values()) == {1}
    statuses = db.session.scalars(select(OrderFlag.status)).all()
    assert statuses == [FlagStatus.SENT] * count


def test_a_send_cut_off_by_a_killed_work_horse_is_sent_again_with_the_same_key(rq_shop):
    order = OrderFactory(reference="KILLED", state="Awaiting payment")
    db.session.commit()
    with receiving(script=["hang"]) as erp, running_worker(rq_shop, **FAST):
        task = exporter.create_order_exporter(
            "ERP", "erp", url=erp.url, secret=erp.secret, timeout=60, on_flag=False
        )
        states.move(order.id, "Payment accepted", actor="panel")
        run = lifecycle.start(task)
        _wait_for(lambda: len(erp.posts) == 1, what="the first post")
        db.session.rollback()
        horse = int(db.session.get(Run, run.id).worker.rsplit(":", 2)[1])
        os.kill(horse, signal.SIGKILL)  # mid-send: the receiver has the order, no answer
        killed = jobs.wait(run, timeout=60)
        assert killed.status == "failed" and "abandoned" in killed.error
        assert _status(order.id) == FlagStatus.SENDING  # claimed by a dead run
        again = jobs.wait(lifecycle.start(task), timeout=60)
        assert again.status == "succeeded" and again.entity_count == 1
        assert "1 order(s) claimed by runs that died are sent again" in again.log
    first, second = erp.posts
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert list(erp.keys.values()) == [1]
    assert _status(order.id) == FlagStatus.SENT
