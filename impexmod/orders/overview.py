"""What the order page and ``impexmod orders show`` tell of an order: its state and history,
flags, shipments, and every export and inbound event that touched it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from impexmod.extensions import db
from impexmod.models import (
    InboundEvent,
    Order,
    OrderFlag,
    OrderLog,
    OrderState,
    OrderTransition,
    Shipment,
    ShipmentLine,
)
from impexmod.orders import flags as order_flags
from impexmod.orders import states


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def flag_row(row: OrderFlag) -> dict[str, Any]:
    """A flag of an order as plain data."""
    return {
        "id": row.id,
        "order_id": row.id_order,
        "flag": row.flag,
        "status": row.status,
        "generation": row.generation,
        "set_at": _iso(row.set_at),
        "set_by": row.set_by,
        "approved_at": _iso(row.approved_at),
        "approved_by": row.approved_by,
        "served_at": _iso(row.served_at),
        "served_by": row.served_by,
        "outcome": row.outcome,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "failing": row.attempts >= order_flags.FAILING_AFTER and row.status != "sent",
    }


def shipments(order_id: int) -> list[dict[str, Any]]:
    """The order's shipments with their lines, by number."""
    out = []
    for shipment in db.session.scalars(
        select(Shipment).where(Shipment.id_order == order_id).order_by(Shipment.number)
    ):
        lines = db.session.execute(
            select(ShipmentLine.id_order_detail, ShipmentLine.quantity).where(
                ShipmentLine.id_shipment == shipment.id
            )
        ).all()
        out.append(
            {
                "number": shipment.number,
                "carrier": shipment.carrier,
                "tracking_number": shipment.tracking_number,
                "status": shipment.status,
                "shipped_at": _iso(shipment.shipped_at),
                "delivered_at": _iso(shipment.delivered_at),
                "lines": [{"order_detail": d, "quantity": q} for d, q in lines],
            }
        )
    return out


def describe(order: int | str) -> dict[str, Any]:
    """Everything the channel knows of one order (OrderNotFound if there is none)."""
    found = states.find_order(order)
    state = db.session.get(OrderState, found.current_state)
    log = db.session.scalars(
        select(OrderLog).where(OrderLog.id_order == found.id).order_by(OrderLog.id)
    )
    events = db.session.scalars(
        select(InboundEvent).where(InboundEvent.id_order == found.id).order_by(InboundEvent.id)
    )
    return {
        "id": found.id,
        "reference": found.reference,
        "state": state.name,
        "total_paid_tax_incl": str(found.total_paid_tax_incl),
        "date_add": _iso(found.date_add),
        "history": [{"at": _iso(h["at"]), "state": h["state"]} for h in states.history(found.id)],
        "next_states": next_states(found),
        "flags": [flag_row(f) for f in order_flags.of_order(found.id)],
        "shipments": shipments(found.id),
        "log": [
            {
                "at": _iso(e.at),
                "kind": e.kind,
                "task_id": e.task_id,
                "run_id": e.run_id,
                "message": e.message,
            }
            for e in log
        ],
        "inbound_events": [
            {
                "task_id": e.task_id,
                "event_id": e.event_id,
                "status": e.status,
                "received_at": _iso(e.received_at),
                "error": e.error,
            }
            for e in events
        ],
    }


def next_states(order: Order) -> list[str]:
    """The states the order may move to from where it is."""
    return list(
        db.session.scalars(
            select(OrderState.name)
            .join(OrderTransition, OrderTransition.to_state == OrderState.id)
            .where(OrderTransition.from_state == order.current_state)
            .order_by(OrderState.id)
        )
    )


def references(order_ids: set[int]) -> dict[int, str]:
    """The references of these orders, by id."""
    if not order_ids:
        return {}
    return dict(
        db.session.execute(select(Order.id, Order.reference).where(Order.id.in_(order_ids))).all()
    )
