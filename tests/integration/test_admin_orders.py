"""The panel's orders channel: the order page (state, history, flags, shipments, activity),
moving an order from it, and Advanced Importer > Orders to approve."""

from __future__ import annotations

import pytest

from impexmod.extensions import db
from impexmod.factories.orm import OrderFactory
from impexmod.models import FlagStatus, Shipment
from impexmod.orders import flags, states
from tests.integration.test_admin_auth import signed_in


@pytest.fixture
def order_id(app):
    order = OrderFactory(reference="PANEL1", state="Awaiting payment")
    db.session.add(Shipment(id_order=order.id, number=1, tracking_number="TRK-42"))
    db.session.commit()
    states.ensure_standard_transitions()
    flags.define("erp", "ERP")
    flags.define("warehouse", "Warehouse", needs_approval=True)
    states.allow("Awaiting payment", "Payment accepted", ["erp"])
    states.allow("Payment accepted", "Processing in progress", ["warehouse"])
    return order.id


def _page(panel, order_id) -> str:
    return panel.get(f"/admin/orders/details/?id={order_id}").get_data(as_text=True)


def test_the_order_page_moves_the_order_and_shows_its_channel(app, order_id):
    panel = signed_in(app)
    page = _page(panel, order_id)
    assert 'id="current-state">Awaiting payment<' in page
    assert '<option value="Payment accepted">' in page
    assert "TRK-42" in page
    path = f"/admin/orders/move/?id={order_id}"
    moved = panel.post(
        path,
        data={"state": "Payment accepted", "expected": "Awaiting payment"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Order PANEL1 moved from Awaiting payment to Payment accepted. Flags set: erp." in moved
    assert 'id="current-state">Payment accepted<' in moved
    assert 'data-flag="erp" data-status="ready"' in moved
    assert "Awaiting payment -&gt; Payment accepted (panel:" in moved
    # A form read before the move: the order is no longer where it was, a clear conflict.
    stale = panel.post(
        path, data={"state": "Canceled", "expected": "Awaiting payment"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "is no longer in &#39;Awaiting payment&#39;" in stale
    illegal = panel.post(path, data={"state": "Delivered"}, follow_redirects=True)
    assert "cannot go from &#39;Payment accepted&#39; to &#39;Delivered&#39;" in illegal.get_data(
        as_text=True
    )
    db.session.expire_all()
    assert states.find_order(order_id).current_state == states.state_named("Payment accepted").id


def test_a_move_without_the_csrf_token_is_refused(app, order_id):
    panel = signed_in(app)
    response = panel.client.post(
        f"/admin/orders/move/?id={order_id}", data={"state": "Payment accepted"}
    )
    assert response.status_code == 400
    db.session.expire_all()
    assert states.find_order(order_id).current_state == states.state_named("Awaiting payment").id


def test_orders_to_approve_one_by_one_and_in_bulk(app, order_id):
    second = OrderFactory(reference="PANEL2", state="Payment accepted")
    db.session.commit()
    panel = signed_in(app)
    states.move(order_id, "Payment accepted", actor="t")
    states.move(order_id, "Processing in progress", actor="t")
    states.move(second.id, "Processing in progress", actor="t")
    held = flags.held("warehouse")
    assert len(held) == 2
    page = panel.get("/admin/orders-to-approve/").get_data(as_text=True)
    assert ">PANEL1<" in page and ">PANEL2<" in page
    done = panel.post(
        "/admin/orders-to-approve/decide/",
        data={"flag_id": [str(held[0].id)], "decision": "reject"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "1 order rejected." in done
    done = panel.post(
        "/admin/orders-to-approve/decide/", data={"scope": "all"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "1 order approved." in done
    assert 'id="nothing-to-approve"' in done
    db.session.expire_all()
    assert [f.status for f in flags.of_order(order_id) if f.flag == "warehouse"] == [
        FlagStatus.REJECTED
    ]
    assert [f.status for f in flags.of_order(second.id) if f.flag == "warehouse"] == [
        FlagStatus.READY
    ]


def test_the_panel_pages_need_a_sign_in(client, order_id):
    assert client.get("/admin/orders-to-approve/").status_code == 302
    assert client.post(f"/admin/orders/move/?id={order_id}").status_code in (302, 400)


def test_the_order_flow_page_defines_flags_and_sets_them_on_transitions(app, order_id):
    panel = signed_in(app)
    page = panel.get("/admin/order-flow/").get_data(as_text=True)
    assert 'data-transition="Awaiting payment -> Payment accepted"' in page
    saved = panel.post(
        "/admin/order-flow/flag/",
        data={"name": "crm", "label": "CRM", "needs_approval": "y"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Flag crm saved." in saved
    assert [f.needs_approval for f in flags.defined() if f.name == "crm"] == [True]
    bad = panel.post(
        "/admin/order-flow/flag/", data={"name": "Bad Name!"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "is not a flag name" in bad
    panel.post(
        "/admin/order-flow/transition/",
        data={"source": "Payment accepted", "target": "Shipped", "flag": ["crm", "erp"]},
    )
    [shipped] = [
        t for t in states.transitions() if (t["from"], t["to"]) == ("Payment accepted", "Shipped")
    ]
    assert shipped["flags"] == ["crm", "erp"]
    refused = panel.post(
        "/admin/order-flow/transition/",
        data={"source": "Shipped", "target": "Shipped"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "a transition goes to another state" in refused
    panel.post(
        "/admin/order-flow/transition/remove/",
        data={"source": "Payment accepted", "target": "Shipped"},
    )
    assert not [
        t for t in states.transitions() if (t["from"], t["to"]) == ("Payment accepted", "Shipped")
    ]


def test_order_exporters_and_inbound_feeds_are_added_and_listed_in_the_panel(app, order_id):
    from impexmod.orders import exporter as order_exporters
    from impexmod.orders import inbound

    panel = signed_in(app)
    bad = panel.post(
        "/admin/order-exporters/add/",
        data={"name": "ERP", "flag": "erp", "destination": "http", "url": "ftp://nope"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "url:" in bad and order_exporters.list_order_exporters() == []
    panel.post(
        "/admin/order-exporters/add/",
        data={
            "name": "ERP",
            "flag": "erp",
            "format": "json",
            "destination": "http",
            "url": "https://erp.example.test/orders",
            "secret": "s3cret",
            "next_flag": ["warehouse"],
        },
    )
    panel.post(
        "/admin/order-exporters/add/",
        data={"name": "Warehouse", "flag": "warehouse", "destination": "pull"},
    )
    listed = {t.name: order_exporters.describe(t) for t in order_exporters.list_order_exporters()}
    assert listed["ERP"]["next_flags"] == ["warehouse"] and listed["ERP"]["has_secret"]
    assert listed["Warehouse"]["destination"] == "pull"
    page = panel.get("/admin/order-exporters/").get_data(as_text=True)
    assert "POST https://erp.example.test/orders (json)" in page
    assert listed["Warehouse"]["feed_url"] in page
    assert "s3cret" not in page
    panel.post("/admin/inbound-feeds/add/", data={"name": "Carrier"})
    [feed] = inbound.list_inbound()
    url = inbound.describe_inbound(feed)["inbound_url"]
    page = panel.get("/admin/inbound-feeds/").get_data(as_text=True)
    assert url in page
    panel.post(f"/admin/inbound-feeds/{feed.id}/rotate/")
    db.session.expire_all()
    assert inbound.describe_inbound(inbound.get_inbound(feed.id))["inbound_url"] != url


def test_a_refused_move_is_said_in_french_in_a_french_panel(app, order_id):
    panel = signed_in(app)
    french = {"Accept-Language": "fr-FR,fr;q=0.9"}
    page = panel.post(
        f"/admin/orders/move/?id={order_id}",
        data={"state": "Delivered"},
        headers=french,
        follow_redirects=False,
    )
    shown = panel.get(f"/admin/orders/details/?id={order_id}", headers=french).get_data(
        as_text=True
    )
    assert page.status_code == 302
    assert (
        "la commande PANEL1 ne peut pas passer de &#39;Awaiting payment&#39; à "
        "&#39;Delivered&#39; : aucune transition ne le permet" in shown
    )
    assert "Passer à" in shown and "Expéditions" in shown
