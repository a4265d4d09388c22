"""Inbound update feeds over real HTTP on loopback: pushed with curl and with Python clients,
applied by a real `impexmod worker` process through Redis (and, without Redis, by runs in
threads of the web process). 1,000 events from 20 concurrent clients, with duplicates re-sent,
are stored once and applied once."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid

import pytest
import redis
import requests
from sqlalchemy import func, select

from impexmod.dispatch import jobs
from impexmod.extensions import db
from impexmod.factories.orm import OrderFactory, ProductFactory
from impexmod.models import (
    InboundEvent,
    InboundStatus,
    Order,
    OrderHistory,
    OrderLog,
    OrderState,
    Run,
    Shipment,
    Task,
)
from impexmod.orders import inbound, states
from tests.integration.test_rq_worker import running_worker
from tests.support import live_server

REDIS_URL = os.environ.get("IMPEXMOD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CLIENTS, ORDERS_EACH = 20, 10  # 200 orders, 5 events each: 1,000 events


def curl(url: str, body: bytes, content_type: str, *extra: str) -> tuple[int, str]:
    """POST ``body`` with curl; the status and the body of the answer."""
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            "-H",
            f"Content-Type: {content_type}",
            *extra,
            "--data-binary",
            "@-",
            "-w",
            "\n%{http_code}",
            url,
        ],  # fmt: skip
        input=body,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    text, _, code = done.stdout.decode().rpartition("\n")
    return int(code), text


def _order_events(reference: str) -> list[dict]:
    """The life of an order in two parcels: tracked, both shipped, both delivered."""
    return [
        {"id": f"{reference}-t", "type": "tracking", "order": reference, "shipment": 1,
         "carrier": "UPS", "tracking_number": f"1Z{reference}"},
        {"id": f"{reference}-s1", "type": "shipped", "order": reference, "shipment": 1},
        {"id": f"{reference}-s2", "type": "shipped", "order": reference, "shipment": 2,
         "carrier": "GLS"},
        {"id": f"{reference}-d1", "type": "delivered", "order": reference, "shipment": 1},
        {"id": f"{reference}-d2", "type": "delivered", "order": reference, "shipment": 2,
         "timestamp": "2026-12-04T12:00:00Z"},
    ]  # fmt: skip


def _as_xml(events: list[dict]) -> bytes:
    parts = ["<events>"]
    for event in events:
        fields = "".join(f"<{k}>{v}</{k}>" for k, v in event.items() if k != "id")
        parts.append(f'<event id="{event["id"]}">{fields}</event>')
    parts.append("</events>")
    return "".join(parts).encode()


def _count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def shop(app):
    """Standard states and transitions, 200 paid orders, an inbound feed with no schedule."""
    product = ProductFactory()
    for n in range(CLIENTS * ORDERS_EACH):
        OrderFactory(reference=f"R{n:04d}", products=[product], state="Payment accepted")
    db.session.commit()
    states.ensure_standard_transitions()
    return inbound.create_inbound("courier", schedule="none")


def _wait_until_applied(task_id: int, expected: int, timeout: float = 300) -> None:
    """Wait for the runs to empty the queue; start one more if a push's run was refused as
    busy just as the previous one ended (what the feed's schedule does in production)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()
        task = db.session.get(Task, task_id)
        done = _count(
            InboundEvent, InboundEvent.task_id == task_id, InboundEvent.status != "pending"
        )
        if done >= expected:
            return
        if task.lock_run_id is None:
            try:
                jobs.start_run(task, trigger="schedule")
            except jobs.TaskBusy:
                pass
        time.sleep(0.5)
    pytest.fail(f"{done} of {expected} events applied after {timeout} s")


@pytest.fixture
def rq_app(app):
    """The app with Redis and a queue of its own (runs go to a worker process)."""
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not running at {REDIS_URL} (.ci/run starts it)")
    app.config["REDIS_URL"] = REDIS_URL
    app.config["QUEUE_NAME"] = f"impexmod-test-{uuid.uuid4().hex[:8]}"
    yield app
    jobs.queue().empty()


def test_1000_events_from_20_concurrent_clients_are_applied_exactly_once(rq_app, shop):
    task_id = shop.id
    answers: list[dict] = []
    failures: list[str] = []
    lock = threading.Lock()
    with live_server(rq_app) as base, running_worker(rq_app):
        rq_app.config["PUBLIC_URL"] = base
        url = inbound.inbound_url(shop)
        start = threading.Barrier(CLIENTS)

        def client(c: int) -> None:
            session = requests.Session()
            batches = [
                _order_events(f"R{n:04d}") for n in range(c * ORDERS_EACH, (c + 1) * ORDERS_EACH)
            ]
            # Every client sends two of its batches again, and one of the next client's: the
            # same events twice, sometimes at the same moment from two clients.
            neighbour = _order_events(f"R{((c + 1) % CLIENTS) * ORDERS_EACH:04d}")
            sends = batches[:5] + [batches[1], neighbour] + batches[5:] + [batches[7]]
            start.wait()
            for i, batch in enumerate(sends):
                try:
                    if c < 2:  # two of the clients are curl
                        code, text = curl(url, json.dumps(batch).encode(), "application/json")
                        answer = json.loads(text)
                    elif c % 2:
                        got = session.post(url, data=_as_xml(batch), timeout=60,
                                           headers={"Content-Type": "application/xml"})  # fmt: skip
                        code, answer = got.status_code, got.json()
                    else:
                        got = session.post(url, json={"events": batch}, timeout=60)
                        code, answer = got.status_code, got.json()
                except Exception as exc:  # noqa: BLE001 - reported by the test below
                    with lock:
                        failures.append(f"client {c} send {i}: {exc!r}")
                    continue
                with lock:
                    if code != 202:
                        failures.append(f"client {c} send {i}: {code} {answer}")
                    answers.append(answer)
            session.close()

        threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        assert failures == []
        _wait_until_applied(task_id, 1000)
    db.session.rollback()
    # Stored once: every event accepted exactly once, every re-send counted as a duplicate.
    assert sum(a["accepted"] for a in answers) == 1000
    assert sum(a["duplicates"] for a in answers) == CLIENTS * 3 * 5
    assert all(a["rejected"] == [] for a in answers)
    assert _count(InboundEvent, InboundEvent.task_id == task_id) == 1000
    errors = db.session.scalars(
        select(InboundEvent.error).where(InboundEvent.status == InboundStatus.ERROR).limit(5)
    ).all()
    assert errors == []
    assert _count(InboundEvent, InboundEvent.status == InboundStatus.APPLIED) == 1000
    # Applied once: two shipments per order, both delivered; one move to Shipped, one to
    # Delivered; one inbound log row per event.
    orders = CLIENTS * ORDERS_EACH
    assert _count(Shipment) == 2 * orders
    assert _count(Shipment, Shipment.status == "delivered") == 2 * orders
    assert _count(Shipment, Shipment.carrier == "UPS", Shipment.number == 1) == orders
    delivered = states.state_named("Delivered").id
    assert _count(Order, Order.current_state == delivered) == orders
    assert _count(OrderHistory) == 3 * orders
    assert _count(OrderLog, OrderLog.kind == "inbound") == 1000
    assert _count(OrderLog, OrderLog.kind == "transition") == 2 * orders
    runs = db.session.scalars(select(Run).where(Run.task_id == task_id)).all()
    assert runs and all(r.status == "succeeded" for r in runs), [(r.id, r.error) for r in runs]
    assert sum(r.entity_count for r in runs) == 1000
    # Applied by the worker process, not by this one.
    assert all(r.worker and str(os.getpid()) not in r.worker.split(":")[1] for r in runs)


def test_curl_moves_an_order_to_shipped_then_completed_and_bad_input_is_refused(app, shop):
    feed_token = "nope"
    with live_server(app) as base:
        app.config["PUBLIC_URL"] = base
        url = inbound.inbound_url(shop)
        code, text = curl(
            url, b'{"id": "e1", "type": "shipped", "order": "R0000"}', "application/json"
        )
        assert (code, json.loads(text)) == (202, {"accepted": 1, "duplicates": 0, "rejected": []})
        _wait_until_applied(shop.id, 1)
        assert _state("R0000") == "Shipped"
        xml = b'<events><event id="e2"><type>delivered</type><order>R0000</order></event></events>'
        assert curl(url, xml, "application/xml")[0] == 202
        _wait_until_applied(shop.id, 2)
        assert _state("R0000") == "Delivered"
        # A wrong token: the feed URLs' 404, byte for byte.
        feed_404 = requests.get(f"{base}/feeds/{feed_token}/products.xml", timeout=10)
        code, text = curl(f"{base}/inbound/{feed_token}", b"{}", "application/json")
        assert (code, text) == (404, feed_404.text) == (404, "Not found\n")
        # Malformed: where and why.
        code, text = curl(url, b'[{"id": "e3",\n  "type" "shipped"}]', "application/json")
        assert code == 400
        assert json.loads(text)["error"].startswith("malformed JSON at line 2, column 10:")
        # Oversized, announced or sent chunked: 413 with one line.
        app.config["INBOUND_MAX_BYTES"] = 1000
        big = json.dumps([{"id": f"b{i}", "type": "shipped", "order": "R0001"} for i in range(40)])
        for extra in ((), ("-H", "Transfer-Encoding: chunked")):
            code, text = curl(url, big.encode(), "application/json", *extra)
            assert code == 413, text
            assert json.loads(text) == {
                "error": "the body is over the limit of 1,000 bytes: send fewer events"
            }
        # A body far over the limit is cut off, still with a 413.
        code, text = curl(url, b"[" + b" " * 5_000_000 + b"]", "application/json")
        assert code == 413
    assert _count(InboundEvent) == 2
    assert _state("R0001") == "Payment accepted"


def _state(reference: str) -> str:
    db.session.rollback()
    order = states.find_order(reference)
    return db.session.get(OrderState, order.current_state).name
