"""Applying inbound events to shipments and orders: the runs of inbound update feeds.

A run (registered with impexmod.runs.lifecycle for TaskKind.INBOUND) first fetches the feed's
polled URL if it has one, then reads the pending events in id order, a chunk at a time, until
none is left. Each event is applied in a transaction of its own, which starts by claiming the
event (``pending`` -> ``applied``, a compare-and-set UPDATE) and ends with its shipment, the
order's move (impexmod.orders.states.move_within) and its OrderLog row, all committed together.
An event that cannot be applied (unknown order, delivered before shipped, an illegal move) rolls
back whole and is recorded as an error with the reason, a row error of the run; the others go on.

Runs are started by each push (a run already going loops until the queue is empty), and also on
the feed's schedule: an event committed just as a run finds the queue empty, while its task is
still locked, is not started for (TaskBusy); the next scheduled run applies it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError

from impexmod.extensions import db
from impexmod.importing.errors import ImportRefused
from impexmod.models import (
    InboundEvent,
    InboundStatus,
    Order,
    OrderDetail,
    OrderLog,
    OrderState,
    Run,
    RunStatus,
    Shipment,
    ShipmentLine,
    ShipmentStatus,
    Task,
    TaskKind,
    now,
)
from impexmod.orders import flags as order_flags
from impexmod.orders import inbound, states
from impexmod.orders.events import MalformedBody
from impexmod.runs import lifecycle
from impexmod.runs.lifecycle import Progress

CHUNK = 200  # events read per query
SHIPPED, DELIVERED = "Shipped", "Delivered"  # the states an order moves to
ATTEMPTS = 3  # tries of an event meeting a concurrent change (a conflict, a deadlock)
LOGGED_ERRORS = 100  # row errors written to the run's log one by one; the count goes on
KEPT_ERRORS = 1000  # row errors kept in the run's warnings


class EventError(ValueError):
    """An event that cannot be applied; the message says why."""


@dataclass
class Tally:
    """What a run did with the events it read."""

    applied: int = 0
    errors: int = 0
    messages: list[str] = field(default_factory=list)


def actor(task: Task) -> str:
    """Who moves orders on behalf of an inbound feed (in their history and log)."""
    return f"inbound feed {task.id}"


def _order_of(payload: dict[str, Any]) -> Order:
    if "order_id" in payload:
        found = db.session.get(Order, payload["order_id"])
        if found is None:
            raise states.OrderNotFound(f"no order with id {payload['order_id']}")
        return found
    if "order_reference" in payload:
        reference = payload["order_reference"]
        found = db.session.scalar(select(Order).where(Order.reference == reference).limit(1))
        if found is None:
            raise states.OrderNotFound(f"no order {reference!r}")
        return found
    return states.find_order(payload["order"])


def _shipments(order_id: int) -> list[Shipment]:
    return list(
        db.session.scalars(
            select(Shipment).where(Shipment.id_order == order_id).order_by(Shipment.number)
        )
    )


def _shipment(order: Order, number: int | None, create: bool) -> Shipment:
    """The order's shipment ``number`` (its only one when not given), created if asked: the
    order's first shipment carries all of its lines."""
    existing = _shipments(order.id)
    if number is None:
        if len(existing) > 1:
            raise EventError(
                f"order {order.reference} has {len(existing)} shipments: the event must say which"
            )
        number = existing[0].number if existing else 1
    for shipment in existing:
        if shipment.number == number:
            return shipment
    if not create:
        if not existing:
            raise EventError(f"order {order.reference} has no shipment yet")
        raise EventError(f"order {order.reference} has no shipment {number}")
    shipment = Shipment(id_order=order.id, number=number, status=ShipmentStatus.PENDING)
    db.session.add(shipment)
    db.session.flush()
    if not existing:
        lines = db.session.execute(
            select(OrderDetail.id, OrderDetail.product_quantity).where(
                OrderDetail.id_order == order.id
            )
        ).all()
        for detail_id, quantity in lines:
            db.session.add(
                ShipmentLine(id_shipment=shipment.id, id_order_detail=detail_id, quantity=quantity)
            )
    return shipment


def _state_name(order_id: int) -> str:
    return db.session.scalar(
        select(OrderState.name)
        .join(Order, Order.current_state == OrderState.id)
        .where(Order.id == order_id)
    )


def _moment(payload: dict[str, Any]) -> datetime:
    stamp = payload.get("timestamp")
    return datetime.fromisoformat(stamp) if stamp else now()


def _track(shipment: Shipment, payload: dict[str, Any]) -> list[str]:
    said = []
    if payload.get("carrier"):
        shipment.carrier = payload["carrier"]
        said.append(f"carrier {shipment.carrier}")
    if payload.get("tracking_number"):
        shipment.tracking_number = payload["tracking_number"]
        said.append(f"tracking {shipment.tracking_number}")
    return said


def _apply(payload: dict[str, Any], order: Order, who: str) -> tuple[str, list]:
    """Apply one event to ``order``'s shipments and state (nothing committed); what it did, and
    the flags a move set. Raises EventError or a states error."""
    kind, number = payload["type"], payload.get("shipment")
    pending: list = []
    if kind == "tracking":
        shipment = _shipment(order, number, create=True)
        said = _track(shipment, payload)
        return f"shipment {shipment.number}: {', '.join(said)}", pending
    if kind == "shipped":
        shipment = _shipment(order, number, create=True)
        if shipment.status != ShipmentStatus.PENDING:
            raise EventError(
                f"shipment {shipment.number} of order {order.reference} is already "
                f"{shipment.status}"
            )
        first = not any(
            s.status != ShipmentStatus.PENDING for s in _shipments(order.id) if s.id != shipment.id
        )
        shipment.status, shipment.shipped_at = ShipmentStatus.SHIPPED, _moment(payload)
        said = _track(shipment, payload)
        if first and _state_name(order.id) != SHIPPED:
            _moved, pending = states.move_within(order.id, SHIPPED, actor=who)
            said.append(f"order moved to {SHIPPED}")
        extra = f" ({', '.join(said)})" if said else ""
        return f"shipment {shipment.number} shipped{extra}", pending
    # delivered
    try:
        shipment = _shipment(order, number, create=False)
    except EventError as exc:
        raise EventError(f"delivered before shipped: {exc}") from None
    if shipment.status == ShipmentStatus.PENDING:
        raise EventError(
            f"delivered before shipped: shipment {shipment.number} of order {order.reference} "
            "has not shipped"
        )
    if shipment.status == ShipmentStatus.DELIVERED:
        raise EventError(
            f"shipment {shipment.number} of order {order.reference} is already delivered"
        )
    shipment.status, shipment.delivered_at = ShipmentStatus.DELIVERED, _moment(payload)
    said = _track(shipment, payload)
    db.session.flush()
    if all(s.status == ShipmentStatus.DELIVERED for s in _shipments(order.id)):
        if _state_name(order.id) != DELIVERED:
            _moved, pending = states.move_within(order.id, DELIVERED, actor=who)
            said.append(f"every shipment delivered: order moved to {DELIVERED}")
    extra = f" ({', '.join(said)})" if said else ""
    return f"shipment {shipment.number} delivered{extra}", pending


def apply_event(event_pk: int, task: Task, run: Run) -> str | None:
    """Apply one queued event in a transaction of its own; None once applied, else the reason
    it was recorded as an error (or "" if it was no longer pending)."""
    reason, order_id = "", None
    for _attempt in range(ATTEMPTS):
        try:
            took = db.session.execute(
                update(InboundEvent)
                .where(InboundEvent.id == event_pk, InboundEvent.status == InboundStatus.PENDING)
                .values(status=InboundStatus.APPLIED, run_id=run.id, applied_at=now(), error=None)
            ).rowcount
            if took != 1:
                db.session.rollback()
                return ""
            event = db.session.get(InboundEvent, event_pk, populate_existing=True)
            order = _order_of(event.payload)
            order_id = order.id
            done, pending = _apply(event.payload, order, actor(task))
            event.id_order = order_id
            message = f"event {event.event_id}: {done} (inbound feed {task.id}, run {run.id})"
            db.session.add(
                OrderLog(
                    id_order=order_id,
                    kind="inbound",
                    task_id=task.id,
                    run_id=run.id,
                    message=message[:500],
                )
            )
            db.session.commit()
            order_flags.announce(pending)
            return None
        except states.TransitionConflict as exc:
            db.session.rollback()  # someone moved the order meanwhile: read it again
            reason = str(exc)
        except (EventError, states.StateError, states.OrderNotFound) as exc:
            db.session.rollback()
            reason = str(exc)
            break
        except SQLAlchemyError as exc:  # a deadlock, or a shipment created concurrently
            db.session.rollback()
            reason = f"the database refused it: {type(exc).__name__}"
    db.session.execute(
        update(InboundEvent)
        .where(InboundEvent.id == event_pk, InboundEvent.status == InboundStatus.PENDING)
        .values(
            status=InboundStatus.ERROR,
            run_id=run.id,
            applied_at=now(),
            error=reason,
            id_order=order_id,
        )
    )
    db.session.commit()
    return reason


def _pending(task_id: int, limit: int) -> list[tuple[int, str]]:
    rows = db.session.execute(
        select(InboundEvent.id, InboundEvent.event_id)
        .where(InboundEvent.task_id == task_id, InboundEvent.status == InboundStatus.PENDING)
        .order_by(InboundEvent.id)
        .limit(limit)
    ).all()
    return [tuple(r) for r in rows]


def _count_pending(task_id: int) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(InboundEvent)
        .where(InboundEvent.task_id == task_id, InboundEvent.status == InboundStatus.PENDING)
    )


def apply_pending(run: Run, task: Task, chunk: int = CHUNK) -> Tally:
    """Apply the feed's pending events, oldest first, until none is left."""
    tally, progress = Tally(), Progress(run)
    progress.at(0, _count_pending(task.id))
    while batch := _pending(task.id, chunk):
        db.session.rollback()  # end the read: each event is its own transaction
        lines = []  # written to the run once the chunk is done (an event's rollback keeps them)
        for event_pk, event_id in batch:
            reason = apply_event(event_pk, task, run)
            if reason is None:
                tally.applied += 1
            elif reason:
                tally.errors += 1
                line = f"Row error: event {event_id}: {reason}"
                if tally.errors <= LOGGED_ERRORS:
                    lines.append(line)
                if len(tally.messages) < KEPT_ERRORS:
                    tally.messages.append(line)
        for line in lines:
            run.log_line(line)
        done = tally.applied + tally.errors
        run.entity_count = tally.applied
        run.warnings = list(tally.messages)
        progress.at(done, done + _count_pending(task.id))
    if tally.errors > LOGGED_ERRORS:
        run.log_line(f"... {tally.errors - LOGGED_ERRORS} more row errors (inbound events)")
    return tally


class InboundPipeline:
    """The runs of inbound update feeds (impexmod.runs.lifecycle)."""

    label = "inbound "

    def follow_up(self, run: Run, task: Task) -> str | None:
        """The trigger "inbound" when events were queued as the run ended (their push found
        the task busy); None otherwise."""
        late = db.session.scalar(
            select(func.count())
            .select_from(InboundEvent)
            .where(
                InboundEvent.task_id == task.id,
                InboundEvent.status == InboundStatus.PENDING,
                InboundEvent.received_at >= run.started_at,
            )
        )
        return "inbound" if late else None

    def begin(self, run: Run, task: Task) -> str:
        return f"Started: applying the events queued for inbound feed {task.id}"

    def work(self, run: Run, task: Task) -> tuple[RunStatus, Tally]:
        fetch_error = None
        if (task.options or {}).get("url"):
            try:
                receipt = inbound.poll(task)
                if receipt is None:
                    run.log_line("Polled URL: unchanged, nothing to fetch")
                else:
                    run.log_line(
                        f"Polled URL: {receipt.accepted} new events, {receipt.duplicates} "
                        f"already stored, {len(receipt.rejected)} rejected"
                    )
                    for rejected in receipt.rejected[:LOGGED_ERRORS]:
                        run.log_line(f"Rejected event {rejected.index}: {rejected.reason}")
            except (ImportRefused, MalformedBody) as exc:
                db.session.rollback()
                fetch_error = f"the polled URL could not be read: {exc}"
                run.log_line(f"Polled URL: {fetch_error}")
            db.session.commit()
        tally = apply_pending(run, task)
        run.log_line(f"Applied {tally.applied} events; {tally.errors} row errors")
        if fetch_error:
            run.error = fetch_error[:2000]
            return RunStatus.FAILED, tally
        return RunStatus.SUCCEEDED, tally

    def closing(self, run: Run, status: RunStatus) -> None:
        """The run's summary is logged by ``work``."""

    def publish(self, run: Run, task: Task, outcome: Tally) -> None:
        run.log_line(f"Succeeded in {run.duration:.2f} s")
        db.session.commit()

    def discard(self, run: Run, task: Task) -> None:
        """An inbound run leaves no file; events not yet applied stay pending."""

    def failure_note(self) -> str:
        return "; the events not applied stay queued"

    def file_ext(self, task: Task) -> str:
        return "json"


def register() -> None:
    """Make inbound feeds run through this pipeline (the app factory calls it)."""
    lifecycle.register(InboundPipeline(), TaskKind.INBOUND)
