"""Inbound update feeds (impexmod.orders.inbound, .events, .shipping; impexmod.feeds.inbound)
on the test database: parsing, dedupe, every bad input, and applying events to shipments and
order states, with the errors recorded and the others applied."""

from __future__ import annotations

import json
import threading

import pytest
from flask import Flask, Response
from itsdangerous import URLSafeSerializer
from sqlalchemy import func, select

from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.factories.orm import OrderFactory, ProductFactory
from impexmod.models import (
    InboundEvent,
    InboundStatus,
    OrderHistory,
    OrderLog,
    Run,
    Shipment,
    ShipmentLine,
)
from impexmod.orders import events, inbound, shipping, states
from impexmod.runs import tasks, tokens
from tests.support import live_server


@pytest.fixture
def shop(app):
    """Three paid orders, one awaiting payment, and an inbound feed."""
    product = ProductFactory()
    for ref in ("ORD1", "ORD2", "ORD3"):
        OrderFactory(reference=ref, products=[product, ProductFactory()], state="Payment accepted")
    OrderFactory(reference="UNPAID", products=[product], state="Awaiting payment")
    db.session.commit()
    states.ensure_standard_transitions()
    return inbound.create_inbound("carrier")


def _settle(task):
    """Wait for the runs the pushes started in threads, then apply anything left."""
    for thread in threading.enumerate():
        if thread.name.startswith(jobs.RUN_THREAD):
            thread.join(60)
    db.session.rollback()
    task = db.session.get(type(task), task.id)
    if inbound.counts(task)[InboundStatus.PENDING]:
        run = jobs.start_run(task, inline=True)
        assert run.status == "succeeded", run.error
    db.session.expire_all()


def _push(client, task, body, content_type="application/json"):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    url = "/inbound/" + inbound.make_token(task)
    return client.post(url, data=data, headers={"Content-Type": content_type})


def _state(reference):
    db.session.expire_all()
    order = states.find_order(reference)
    return db.session.get(states.OrderState, order.current_state).name


def _event(task, event_id):
    return db.session.scalar(
        select(InboundEvent).where(
            InboundEvent.task_id == task.id, InboundEvent.event_id == event_id
        )
    )


# -- parsing ------------------------------------------------------------------------------------


def test_json_bodies_in_three_shapes_and_xml_give_the_same_events():
    one = {"id": "E1", "type": "Shipped", "order": "ORD1", "carrier": "UPS", "tracking": "1Z"}
    assert events.parse(json.dumps(one).encode()) == [one]
    assert events.parse(json.dumps([one]).encode()) == [one]
    assert events.parse(json.dumps({"events": [one]}).encode()) == [one]
    xml = (
        b'<?xml version="1.0"?><events><event id="E1" type="Shipped"><order>ORD1</order>'
        b"<carrier>UPS</carrier><tracking>1Z</tracking></event><!-- c --></events>"
    )
    assert events.parse(xml, "application/xml") == [one]
    good, rejected = events.checked(events.parse(xml))
    assert rejected == []
    assert good[0].payload == {
        "id": "E1",
        "type": "shipped",
        "order": "ORD1",
        "carrier": "UPS",
        "tracking_number": "1Z",
    }
    [event] = events.checked(
        [
            {
                "event_id": 7,
                "type": "delivered",
                "order_id": "12",
                "shipment": "2",
                "timestamp": "2026-12-04T10:00:00+01:00",
            }
        ]  # fmt: skip
    )[0]
    assert event.payload == {
        "id": "7",
        "type": "delivered",
        "order_id": 12,
        "shipment": 2,
        "timestamp": "2026-12-04T09:00:00",
    }


def test_each_bad_event_is_rejected_with_its_index_and_why():
    raws = [
        {"type": "shipped", "order": "ORD1"},
        {"id": "E2", "order": "ORD1"},
        {"id": "E3", "type": "lost", "order": "ORD1"},
        {"id": "E4", "type": "shipped"},
        {"id": "E5", "type": "shipped", "order": "ORD1", "timestamp": "yesterday"},
        {"id": "E6", "type": "tracking", "order": "ORD1"},
        {"id": "E7", "type": "shipped", "order": "ORD1", "shipment": "0"},
        "text",
        {"id": "E9", "type": "shipped", "order": "ORD1"},
    ]
    good, rejected = events.checked(raws)
    assert [e.event_id for e in good] == ["E9"]
    assert [(r.index, r.event_id) for r in rejected] == [
        (0, None), (1, "E2"), (2, "E3"), (3, "E4"), (4, "E5"), (5, "E6"), (6, "E7"), (7, None),
    ]  # fmt: skip
    reasons = [r.reason for r in rejected]
    assert reasons[0] == "no event id (id or event_id)"
    assert reasons[1].startswith("no type")
    assert "'lost' is not one of shipped, delivered, tracking" in reasons[2]
    assert reasons[3].startswith("no order")
    assert "not an ISO 8601" in reasons[4]
    assert "tracking_number" in reasons[5]
    assert "not a shipment number" in reasons[6]
    assert reasons[7] == "not an event object (str)"


@pytest.mark.parametrize(
    "body, content_type, said",
    [
        (b'{"id": "E1",\n "type": }', "application/json", "malformed JSON at line 2, column 10"),
        (b"<events><event id='1'></events>", "text/xml", "malformed XML at line 1, column"),
        (b'"just text"', "application/json", "expected an event object"),
        (b'{"events": 3}', "application/json", '"events" must be a list'),
        (b"\xff\xfe{}", "application/json", "not UTF-8"),
        (b"  ", "application/json", "the body is empty"),
        (
            b'<!DOCTYPE events [<!ENTITY x "boom">]><events><event id="&x;"/></events>',
            "application/xml",
            "a DOCTYPE is not allowed",
        ),
        (
            b'<!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]><events>&x;</events>',
            "application/xml",
            "a DOCTYPE is not allowed",
        ),
        (b"<orders/>", "application/xml", "the root element is <orders>"),
    ],
)
def test_a_malformed_body_is_400_saying_where_and_why_and_stores_nothing(
    client, shop, body, content_type, said
):
    response = _push(client, shop, body, content_type)
    assert response.status_code == 400
    assert said in response.get_json()["error"]
    assert "Traceback" not in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(InboundEvent)) == 0


# -- the endpoint -------------------------------------------------------------------------------


def test_push_is_202_with_counts_and_rejections_and_duplicates_are_stored_once(client, shop):
    body = [
        {"id": "E1", "type": "tracking", "order": "ORD1", "tracking_number": "T1"},
        {"id": "E2", "type": "shipped", "order": "ORD1"},
        {"id": "E2", "type": "shipped", "order": "ORD1"},  # the same event twice in a body
        {"type": "shipped", "order": "ORD1"},
    ]
    first = _push(client, shop, body)
    assert first.status_code == 202
    assert first.get_json() == {
        "accepted": 2,
        "duplicates": 1,
        "rejected": [{"index": 3, "id": None, "reason": "no event id (id or event_id)"}],
    }
    again = _push(client, shop, body[:3])
    assert again.status_code == 202
    assert again.get_json() == {"accepted": 0, "duplicates": 3, "rejected": []}
    _settle(shop)
    assert db.session.scalar(select(func.count()).select_from(InboundEvent)) == 2
    assert _state("ORD1") == "Shipped"
    # The same ids under another feed are other events.
    other = inbound.create_inbound("other carrier")
    assert _push(client, other, body[:1]).get_json()["accepted"] == 1


def test_concurrent_pushes_of_the_same_events_store_each_once(app, shop):
    body = [
        {"id": f"C{i}", "type": "tracking", "order": "ORD1", "tracking": f"T{i}"} for i in range(50)
    ]
    results = []
    barrier = threading.Barrier(6)
    task_id = shop.id  # read here: the test's session is not the threads' to use

    def pusher():
        with app.app_context():
            task = db.session.get(type(shop), task_id)
            barrier.wait()
            good, _ = events.checked(body)
            try:
                results.append(inbound.queue_events(task, good))
            except Exception as exc:  # noqa: BLE001 - shown by the assertion below
                results.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=pusher) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(isinstance(r, tuple) for r in results), results
    assert sum(a for a, _ in results) == 50
    assert sum(d for _, d in results) == 250
    assert db.session.scalar(select(func.count()).select_from(InboundEvent)) == 50


def test_wrong_tampered_rotated_or_feed_tokens_are_the_feed_urls_404(app, client, shop):
    feed_404 = client.get("/feeds/nope/products.xml")
    assert feed_404.status_code == 404
    good = inbound.make_token(shop)
    exporter = exporters.create_exporter("products", "products")
    feed_token = tokens.make_token(exporter)
    inbound_salted_exporter = URLSafeSerializer(app.config["SECRET_KEY"], salt=inbound.SALT).dumps(
        [exporter.id, exporter.token_nonce]
    )
    body = json.dumps({"id": "E1", "type": "shipped", "order": "ORD1"})
    # Tampered inside the signature: its last character carries padding bits, and a change
    # there can decode to the same bytes (a token that still opens, once in a while).
    tampered = good[:-5] + ("A" if good[-5] != "A" else "B") + good[-4:]
    for token in ("nope", tampered, feed_token, inbound_salted_exporter):
        response = client.post(f"/inbound/{token}", data=body, content_type="application/json")
        assert response.status_code == 404
        assert response.data == feed_404.data and response.mimetype == feed_404.mimetype
    # An inbound token never opens a feed URL either.
    assert client.get(f"/feeds/{good}/orders.json").data == feed_404.data
    new_url = inbound.rotate(shop)
    assert client.post(f"/inbound/{good}", data=body).status_code == 404
    assert new_url.endswith(inbound.make_token(shop))
    assert _push(client, shop, body).status_code == 202


def test_an_oversized_body_is_413_with_one_line_and_stores_nothing(app, client, shop):
    app.config["INBOUND_MAX_BYTES"] = 200
    body = [{"id": f"E{i}", "type": "shipped", "order": "ORD1"} for i in range(20)]
    response = _push(client, shop, body)
    assert response.status_code == 413
    assert response.get_json() == {
        "error": "the body is over the limit of 200 bytes: send fewer events"
    }
    assert db.session.scalar(select(func.count()).select_from(InboundEvent)) == 0
    assert _push(client, shop, body[:1]).status_code == 202


def test_the_endpoint_takes_no_csrf_token_and_no_login(app, client, shop):
    app.config.update(WTF_CSRF_ENABLED=True, WTF_CSRF_CHECK_DEFAULT=True)
    response = _push(client, shop, {"id": "E1", "type": "shipped", "order": "ORD1"})
    assert response.status_code == 202, response.data


# -- applying -----------------------------------------------------------------------------------


def test_shipped_then_delivered_moves_the_order_and_logs_each_event(client, shop):
    _push(client, shop, {"id": "T1", "type": "tracking", "order": "ORD1", "carrier": "UPS"})
    _push(client, shop, {"id": "S1", "type": "shipped", "order": "ORD1", "tracking": "1Z9"})
    _settle(shop)
    order = states.find_order("ORD1")
    [shipment] = db.session.scalars(select(Shipment).where(Shipment.id_order == order.id))
    assert (shipment.number, shipment.status, shipment.carrier, shipment.tracking_number) == (
        1, "shipped", "UPS", "1Z9",
    )  # fmt: skip
    # The order's first shipment carries all of its lines.
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(ShipmentLine)
            .where(ShipmentLine.id_shipment == shipment.id)
        )
        == 2
    )
    assert _state("ORD1") == "Shipped"
    _push(client, shop, {"id": "D1", "type": "delivered", "order_id": order.id})
    _settle(shop)
    assert _state("ORD1") == "Delivered"
    logged = db.session.scalars(
        select(OrderLog.message).where(OrderLog.id_order == order.id, OrderLog.kind == "inbound")
    ).all()
    assert [m.split(":")[0] for m in logged] == ["event T1", "event S1", "event D1"]
    moves = db.session.scalars(
        select(OrderLog.message).where(OrderLog.id_order == order.id, OrderLog.kind == "transition")
    ).all()
    assert moves == [
        f"Payment accepted -> Shipped (inbound feed {shop.id})",
        f"Shipped -> Delivered (inbound feed {shop.id})",
    ]
    assert [e.status for e in inbound.events_of(shop)] == ["applied"] * 3


def test_bad_events_are_row_errors_with_nothing_half_written_and_the_others_go_on(client, shop):
    body = [
        {"id": "U1", "type": "shipped", "order": "NOSUCH"},
        {"id": "D1", "type": "delivered", "order": "ORD2"},  # before it shipped
        {"id": "I1", "type": "shipped", "order": "UNPAID", "carrier": "DHL"},  # illegal move
        {"id": "OK1", "type": "shipped", "order": "ORD1"},
        {"id": "S2", "type": "shipped", "order": "ORD3"},
        {"id": "S2b", "type": "shipped", "order": "ORD3"},  # again: already shipped
    ]
    assert _push(client, shop, body).get_json()["accepted"] == 6
    _settle(shop)
    errors = {e.event_id: e.error for e in inbound.events_of(shop, InboundStatus.ERROR)}
    assert errors == {
        "U1": "no order 'NOSUCH'",
        "D1": "delivered before shipped: order ORD2 has no shipment yet",
        "I1": "order UNPAID cannot go from 'Awaiting payment' to 'Shipped': no such transition",
        "S2b": "shipment 1 of order ORD3 is already shipped",
    }
    assert _event(shop, "I1").id_order == states.find_order("UNPAID").id
    # The illegal move's shipment was rolled back with it.
    unpaid = states.find_order("UNPAID").id
    assert (
        db.session.scalar(
            select(func.count()).select_from(Shipment).where(Shipment.id_order == unpaid)
        )
        == 0
    )
    assert _state("UNPAID") == "Awaiting payment"
    assert (_state("ORD1"), _state("ORD2"), _state("ORD3")) == (
        "Shipped",
        "Payment accepted",
        "Shipped",
    )
    run = db.session.scalars(
        select(Run).where(Run.task_id == shop.id).order_by(Run.id.desc())
    ).first()
    assert run.status == "succeeded"
    assert "Row error: event U1: no order 'NOSUCH'" in run.log
    assert len([w for w in run.warnings if w.startswith("Row error")]) >= 1
    described = inbound.describe_inbound(shop)
    assert described["events"] == {"pending": 0, "applied": 2, "error": 4}


def test_an_order_is_completed_only_when_all_its_shipments_are_delivered(client, shop):
    order = states.find_order("ORD1")
    _push(client, shop, [
        {"id": "A", "type": "shipped", "order": "ORD1", "shipment": 1},
        {"id": "B", "type": "shipped", "order": "ORD1", "shipment": 2, "carrier": "GLS"},
        {"id": "C", "type": "delivered", "order": "ORD1", "shipment": 2},
        {"id": "X", "type": "delivered", "order": "ORD1"},  # which one? refused
    ])  # fmt: skip
    _settle(shop)
    numbers = db.session.execute(
        select(Shipment.number, Shipment.status)
        .where(Shipment.id_order == order.id)
        .order_by(Shipment.number)
    ).all()
    assert numbers == [(1, "shipped"), (2, "delivered")]
    assert _state("ORD1") == "Shipped"
    assert "has 2 shipments: the event must say which" in _event(shop, "X").error
    _push(client, shop, {"id": "D", "type": "delivered", "order": "ORD1", "shipment": "1"})
    _settle(shop)
    assert _state("ORD1") == "Delivered"
    # One move to Shipped (the first shipment), one to Delivered (the last delivery).
    assert (
        db.session.scalar(
            select(func.count()).select_from(OrderHistory).where(OrderHistory.id_order == order.id)
        )
        == 3
    )


def test_a_polled_url_is_fetched_and_queued_then_applied(app, shop):
    served = Flask("carrier")
    body = json.dumps({"events": [{"id": "P1", "type": "shipped", "order": "ORD2"}]})
    served.add_url_rule(
        "/events.json", "events", lambda: Response(body, mimetype="application/json")
    )
    with live_server(served) as base:
        feed = inbound.create_inbound("polled", url=f"{base}/events.json")
        run = jobs.start_run(feed, inline=True)
        assert run.status == "succeeded", run.error
        assert "Polled URL: 1 new events, 0 already stored, 0 rejected" in run.log
        again = jobs.start_run(db.session.get(type(feed), feed.id), inline=True)
        assert "Polled URL: 0 new events, 1 already stored" in again.log
    assert _state("ORD2") == "Shipped"
    with pytest.raises(tasks.InvalidTask, match="url: a polled URL starts with http"):
        inbound.create_inbound("bad", url="ftp://x/y")
    with pytest.raises(tasks.InvalidTask, match="^name:"):
        inbound.create_inbound(" ")
    with pytest.raises(tasks.InvalidTask, match="^schedule:"):
        inbound.create_inbound("x", schedule="sometimes")


def test_a_polled_url_that_fails_fails_the_run_and_keeps_the_queue(app, shop):
    feed = inbound.create_inbound("gone", url="http://127.0.0.1:9/events.json")
    db.session.add(
        InboundEvent(
            task_id=feed.id, event_id="Q1", payload={"id": "Q1", "type": "shipped", "order": "ORD3"}
        )
    )
    db.session.commit()
    run = jobs.start_run(feed, inline=True)
    assert run.status == "failed"
    assert "the polled URL could not be read" in run.error
    assert _state("ORD3") == "Shipped"  # what was queued was applied all the same


# -- the CLI ------------------------------------------------------------------------------------


def test_cli_add_list_show_push_run_events_rotate_remove(runner, shop, tmp_path):
    added = runner.invoke(
        args=["orders", "inbound", "add", "courier", "--schedule", "none", "--json"]
    )
    assert added.exit_code == 0, added.output
    feed = json.loads(added.output)
    assert feed["inbound_url"].startswith("http://127.0.0.1:5000/inbound/")
    listed = json.loads(runner.invoke(args=["orders", "inbound", "list", "--json"]).output)
    assert [f["name"] for f in listed] == ["carrier", "courier"]
    file = tmp_path / "events.xml"
    file.write_text(
        '<events><event id="F1" type="shipped"><order>ORD1</order></event>'
        '<event id="F2" type="delivered"><order>ORD1</order></event><event type="x"/></events>'
    )
    pushed = runner.invoke(args=["orders", "inbound", "push", str(feed["id"]), "--file", str(file)])
    assert pushed.exit_code == 0, pushed.output
    assert pushed.output.startswith("2 events queued, 0 already stored, 1 rejected")
    ran = runner.invoke(args=["orders", "inbound", "run", str(feed["id"]), "--wait"])
    assert ran.exit_code == 0, ran.output
    assert ", 2 events applied, 0 row errors" in ran.output
    assert _state("ORD1") == "Delivered"
    shown = json.loads(
        runner.invoke(args=["orders", "inbound", "show", str(feed["id"]), "--json"]).output
    )
    assert shown["events"] == {"pending": 0, "applied": 2, "error": 0}
    listed = runner.invoke(args=["orders", "inbound", "events", str(feed["id"]), "--json"])
    assert [e["event_id"] for e in json.loads(listed.output)] == ["F2", "F1"]
    ships = json.loads(runner.invoke(args=["orders", "shipments", "ORD1", "--json"]).output)
    assert [(s["number"], s["status"], len(s["lines"])) for s in ships] == [(1, "delivered", 2)]
    rotated = runner.invoke(args=["orders", "inbound", "rotate", str(feed["id"])])
    assert rotated.output.strip() != feed["inbound_url"]
    removed = runner.invoke(args=["orders", "inbound", "remove", str(feed["id"])])
    assert removed.exit_code == 0
    assert (
        db.session.scalar(
            select(func.count()).select_from(InboundEvent).where(InboundEvent.task_id == feed["id"])
        )
        == 0
    )


@pytest.mark.parametrize(
    "args, said",
    [
        (["orders", "inbound", "show", "999"], "Error: no inbound feed with id 999"),
        (["orders", "inbound", "add", "x", "--url", "gopher://a"], "Error: url: a polled URL"),
        (["orders", "inbound", "add", "x", "--schedule", "often"], "Error: schedule:"),
        (["orders", "shipments", "NOSUCH"], "Error: no order 'NOSUCH'"),
    ],
)
def test_cli_errors_are_one_line(runner, shop, args, said):
    result = runner.invoke(args=args)
    assert result.exit_code != 0
    assert said in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_cli_push_of_a_malformed_file_says_where(runner, shop, tmp_path):
    file = tmp_path / "bad.json"
    file.write_text('[{"id": "E1"\n, ]')
    result = runner.invoke(args=["orders", "inbound", "push", str(shop.id), "--file", str(file)])
    assert result.exit_code == 1
    assert "bad.json: malformed JSON at line 2, column 3" in result.output


def test_shipping_actor_names_the_feed(shop):
    assert shipping.actor(shop) == f"inbound feed {shop.id}"


def test_events_are_applied_in_the_order_of_the_body_not_of_their_ids(client, shop):
    body = [
        {"id": "z-ship", "type": "shipped", "order": "ORD1"},
        {"id": "a-deliver", "type": "delivered", "order": "ORD1"},
    ]
    assert _push(client, shop, body).get_json()["accepted"] == 2
    _settle(shop)
    assert _state("ORD1") == "Delivered"
