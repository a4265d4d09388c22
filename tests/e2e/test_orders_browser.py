"""The orders channel end to end, as a merchant drives it: in a real browser (Playwright on
Debian's Chromium), with a real `impexmod worker` on Redis, real receivers on loopback and a
carrier pushing its events with curl.

The merchant pays an order on its page; the ERP receiver (answering 500 first) gets it once,
its retry carrying the same idempotency key; the warehouse flag waits on "Orders to approve"
until the merchant approves it there, then the warehouse receiver gets it once. The carrier's
"shipped" then "delivered" events move the order to Shipped then Delivered, and the order page
shows the history, the flags served, the shipment and every export and inbound event. Runs in
English and in French (the ids the test clicks are the same; the words it reads are not).
"""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
import redis
from sqlalchemy import select

from impexmod.admin import users
from impexmod.dispatch import jobs
from impexmod.extensions import db
from impexmod.factories.orm import OrderFactory, ProductFactory, ensure_order_states
from impexmod.models import FlagStatus, OrderFlag, OrderState
from impexmod.orders import exporter, flags, inbound, states
from tests.e2e.test_admin_browser import EMAIL, PASSWORD, sign_in
from tests.e2e.test_order_exporter_http import _wait_for
from tests.integration.test_rq_worker import REDIS_URL, running_worker
from tests.order_receiver import receiving
from tests.support import live_server

pytestmark = pytest.mark.needs("chromium")

WORDS = {
    "en": {"locale": "en-GB", "Shipments": "Shipments", "Export flags": "Export flags"},
    "fr": {"locale": "fr-FR", "Shipments": "Expéditions", "Export flags": "Indicateurs d’export"},
}


@pytest.fixture
def served(app):
    """The shop on Redis (a queue of its own), served on loopback, with a merchant, the
    standard order flow (paying sets ``erp``) and an inbound carrier feed; yields its URL."""
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not running at {REDIS_URL} (.ci/run starts it)")
    app.config["REDIS_URL"] = REDIS_URL
    app.config["QUEUE_NAME"] = f"impexmod-test-{uuid.uuid4().hex[:8]}"
    users.create_user(EMAIL, PASSWORD)
    ensure_order_states(db.session)
    db.session.commit()
    states.ensure_standard_transitions()
    flags.define("erp", "ERP")
    flags.define("warehouse", "Warehouse", needs_approval=True)
    states.allow("Awaiting payment", "Payment accepted", ["erp"])
    with live_server(app) as base:
        app.config["PUBLIC_URL"] = base
        yield base
    jobs.queue().empty()


@pytest.fixture(params=list(WORDS))
def lang(request) -> str:
    """The browser's language: the test runs in both."""
    return request.param


def _flag(order_id: int, name: str) -> str | None:
    return db.session.scalar(
        select(OrderFlag.status).where(OrderFlag.id_order == order_id, OrderFlag.flag == name)
    )


def _state(order_id: int) -> str:
    db.session.rollback()
    order = states.find_order(str(order_id))
    return db.session.get(OrderState, order.current_state).name


def _curl(url: str, body: dict) -> int:
    out = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H",
         "Content-Type: application/json", "--data-binary", json.dumps(body), url],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return int(out.stdout)


def test_paid_in_the_panel_sent_to_the_erp_approved_sent_to_the_warehouse_then_delivered(
    browser, served, app, lang
):
    order = OrderFactory(
        reference=f"WEB{lang.upper()}", products=[ProductFactory()], state="Awaiting payment"
    )
    other = OrderFactory(reference=f"KEEP{lang.upper()}", state="Awaiting payment")
    db.session.commit()
    order_id, other_id, reference = order.id, other.id, order.reference
    carrier = inbound.create_inbound("Carrier", schedule="none")
    inbound_url = inbound.inbound_url(carrier)
    context = browser.new_context(
        viewport={"width": 1366, "height": 900}, base_url=served, locale=WORDS[lang]["locale"]
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    with (
        receiving(script=[500, 200]) as erp,
        receiving(secret="the-warehouse-secret") as warehouse,
        running_worker(app, IMPEXMOD_ORDER_EXPORT_BACKOFF="0.05"),
    ):
        exporter.create_order_exporter(
            "ERP", "erp", url=erp.url, secret=erp.secret, next_flags=["warehouse"]
        )
        exporter.create_order_exporter(
            "Warehouse", "warehouse", url=warehouse.url, secret=warehouse.secret
        )
        sign_in(page)

        # Paid on the order page: the flag's exporter runs on the worker and sends it.
        page.goto(f"/admin/orders/details/?id={order_id}")
        page.select_option("#move-state", "Payment accepted")
        page.click("#move-submit")
        page.wait_for_selector("#current-state:has-text('Payment accepted')")
        _wait_for(lambda: _flag(order_id, "erp") == FlagStatus.SENT, what="the ERP send")
        assert [p.answered for p in erp.posts] == [500, 200]  # retried after the 500
        assert erp.posts[0].headers["Idempotency-Key"] == erp.posts[1].headers["Idempotency-Key"]
        assert list(erp.keys.values()) == [1] and all(erp.signed(p) for p in erp.posts)
        assert erp.posts[1].headers["Content-Type"].startswith("application/xml")
        assert f"<reference>{reference}</reference>".encode() in erp.posts[1].body

        # The chain set the warehouse flag, which waits for the merchant's approval.
        _wait_for(lambda: _flag(order_id, "warehouse") == FlagStatus.HELD, what="the held flag")
        assert warehouse.posts == []
        page.goto("/admin/orders-to-approve/")
        row = page.locator("#orders-to-approve tbody tr", has_text=reference)
        row.locator("input[name='flag_id']").check()
        page.click("#approve-selected")
        page.wait_for_selector("#nothing-to-approve")
        _wait_for(
            lambda: _flag(order_id, "warehouse") == FlagStatus.SENT, what="the warehouse send"
        )
        assert len(warehouse.posts) == 1 and warehouse.signed(warehouse.posts[0])
        assert warehouse.posts[0].headers["X-Impexmod-Flag"] == "warehouse"

        # The carrier pushes its events with curl; the worker applies them.
        shipped = {"id": "c1", "type": "shipped", "order": reference, "tracking": "TRK1"}
        assert _curl(inbound_url, shipped | {"carrier": "La Poste"}) == 202
        _wait_for(lambda: _state(order_id) == "Shipped", what="the order shipped")
        assert _curl(inbound_url, {"id": "c2", "type": "delivered", "order": reference}) == 202
        _wait_for(lambda: _state(order_id) == "Delivered", what="the order delivered")

        page.goto(f"/admin/orders/details/?id={order_id}")
        assert page.inner_text("#current-state") == "Delivered"
        history = page.inner_text("#order-history")
        for name in ("Awaiting payment", "Payment accepted", "Shipped", "Delivered"):
            assert name in history
        assert page.locator("#order-flags tr[data-status='sent']").count() == 2
        assert WORDS[lang]["Export flags"] in page.content()
        assert WORDS[lang]["Shipments"] in page.content()
        shipment = page.inner_text("#order-shipments tbody")
        assert "La Poste" in shipment and "TRK1" in shipment
        activity = page.locator("#order-activity tr[data-kind='inbound-event']")
        assert activity.count() == 2
        assert "applied" in page.inner_text("#order-activity")
    context.close()
    # Exactly once at each receiver, and the order nobody paid was never sent.
    assert list(erp.keys.values()) == [1] and len(warehouse.keys) == 1
    assert _flag(other_id, "erp") is None and _state(other_id) == "Awaiting payment"
