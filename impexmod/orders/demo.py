"""The demo's orders channel (``impexmod demo``): a chain of two order exporters (ERP, then a
warehouse whose flag needs approval) on pulled feed URLs, and an inbound feed for a carrier."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from impexmod.extensions import db
from impexmod.models import Order, OrderState, Product, Task
from impexmod.orders import exporter as order_exporters
from impexmod.orders import flags, inbound, states

ERP, WAREHOUSE = "erp", "warehouse"


@dataclass
class DemoChannel:
    """What the demo set up, for the demo to print."""

    exporters: list[Task]
    inbound: Task
    order: str | None  # an order waiting for payment: move it to see the chain work
    shipping: str | None  # an order being processed: push a carrier event for it


def _order_in(state: str) -> str | None:
    return db.session.scalar(
        select(Order.reference)
        .join(OrderState, OrderState.id == Order.current_state)
        .where(OrderState.name == state)
        .order_by(Order.id)
        .limit(1)
    )


def _new_order() -> None:
    """An order waiting for payment, of the catalog's first product (a small demo catalog may
    have none left in that state)."""
    from impexmod.factories.orm import OrderFactory

    product = db.session.scalar(select(Product).order_by(Product.id).limit(1))
    if product is not None:
        OrderFactory(products=[product], state="Awaiting payment")
        db.session.commit()


def ensure_demo_channel(ensure_states) -> DemoChannel:
    """Set up the demo channel unless it exists (``ensure_states`` creates the standard states)."""
    ensure_states(db.session)
    db.session.commit()
    states.ensure_standard_transitions()
    known = {f.name for f in flags.defined()}
    if ERP not in known:
        flags.define(ERP, "ERP")
    if WAREHOUSE not in known:
        flags.define(WAREHOUSE, "Warehouse", needs_approval=True)
    paid = [
        t
        for t in states.transitions()
        if (t["from"], t["to"]) == ("Awaiting payment", "Payment accepted")
    ]
    if paid and not paid[0]["flags"]:
        states.allow("Awaiting payment", "Payment accepted", [ERP])
    exporters = order_exporters.list_order_exporters()
    if not exporters:
        exporters = [
            order_exporters.create_order_exporter(
                "Demo ERP", ERP, destination="pull", fmt="xml", next_flags=[WAREHOUSE], on_flag=True
            ),
            order_exporters.create_order_exporter(
                "Demo warehouse", WAREHOUSE, destination="pull", fmt="json", on_flag=True
            ),
        ]
    if _order_in("Awaiting payment") is None:
        _new_order()
    feeds = inbound.list_inbound()
    feed = feeds[0] if feeds else inbound.create_inbound("Demo carrier")
    return DemoChannel(
        exporters, feed, _order_in("Awaiting payment"), _order_in("Processing in progress")
    )
