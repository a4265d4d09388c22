"""The order state machine: states, the transitions allowed between them, and ``move``, the one
service every change of an order's state goes through.

``move`` checks the transition is allowed, switches the state with a compare-and-set UPDATE
(``WHERE current_state = <the state it read>``), writes the status history row (which the change
log records, so incremental order feeds see the move), sets the transition's export flags and
logs it on the order, all in one transaction. Two workers moving the same order: the first
UPDATE wins, the second matches no row and gets TransitionConflict, with nothing written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select, update

from impexmod.extensions import db
from impexmod.messages import msg
from impexmod.models import Order, OrderHistory, OrderLog, OrderState, OrderTransition, now
from impexmod.orders import flags as order_flags

# PrestaShop's standard states (impexmod.factories.words.ORDER_STATES) and the moves between
# them: (from, to, flags set). The flags are the demo's; merchants configure their own.
STANDARD_TRANSITIONS: list[tuple[str, str]] = [
    ("Awaiting payment", "Payment accepted"),
    ("Awaiting payment", "Payment error"),
    ("Awaiting payment", "Canceled"),
    ("Payment error", "Awaiting payment"),
    ("Payment error", "Payment accepted"),
    ("Payment error", "Canceled"),
    ("Payment accepted", "Processing in progress"),
    ("Payment accepted", "Shipped"),
    ("Payment accepted", "Canceled"),
    ("Payment accepted", "Refunded"),
    ("Processing in progress", "Shipped"),
    ("Processing in progress", "Canceled"),
    ("Processing in progress", "Refunded"),
    ("Shipped", "Delivered"),
    ("Shipped", "Refunded"),
    ("Delivered", "Refunded"),
]


class StateError(ValueError):
    """An order state or transition that cannot be used; the message says why."""


class OrderNotFound(LookupError):
    """No order has that id or reference."""


class IllegalTransition(StateError):
    """The order's current state has no transition to the state asked."""

    def __init__(self, order: str, current: str, asked: str):
        super().__init__(
            msg(
                "order %(order)s cannot go from %(current)s to %(asked)s: no such transition",
                order=order,
                current=repr(current),
                asked=repr(asked),
            )
        )
        self.order, self.current, self.asked = order, current, asked


class TransitionConflict(StateError):
    """Someone else changed the order's state meanwhile; nothing was written."""

    def __init__(self, order: str, expected: str, asked: str):
        super().__init__(
            msg(
                "order %(order)s is no longer in %(expected)s: another change moved it first; "
                "it was not moved to %(asked)s",
                order=order,
                expected=repr(expected),
                asked=repr(asked),
            )
        )
        self.order, self.expected, self.asked = order, expected, asked


@dataclass
class Moved:
    """What a move did."""

    order_id: int
    reference: str
    from_state: str
    to_state: str
    flags: list[str] = field(default_factory=list)  # flags set (pending) by the move


def state_named(name_or_id: str | int) -> OrderState:
    """The order state of this name (any case) or id; StateError if there is none."""
    text = str(name_or_id).strip()
    state = None
    if text.isdigit():
        state = db.session.get(OrderState, int(text))
    if state is None:
        state = db.session.scalar(
            select(OrderState).where(func.lower(OrderState.name) == text.lower())
        )
    if state is None:
        names = ", ".join(repr(s) for s in db.session.scalars(select(OrderState.name)))
        raise StateError(
            msg("no order state %(name)s (there are: %(names)s)", name=repr(text), names=names)
        )
    return state


def find_order(order: int | str | Order) -> Order:
    """The order of this id or reference (OrderNotFound if none)."""
    if isinstance(order, Order):
        return order
    text = str(order).strip()
    found = None
    if text.isdigit():
        found = db.session.get(Order, int(text))
    if found is None:
        found = db.session.scalar(select(Order).where(Order.reference == text).limit(1))
    if found is None:
        raise OrderNotFound(f"no order {text!r}")
    return found


def add_state(
    name: str,
    *,
    color: str = "#4169E1",
    paid: bool = False,
    shipped: bool = False,
    delivery: bool = False,
) -> OrderState:
    """Add a merchant's own order state (StateError if the name is taken or empty)."""
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise StateError("a state's name is 1 to 64 characters")
    taken = db.session.scalar(
        select(OrderState.id).where(func.lower(OrderState.name) == name.lower())
    )
    if taken:
        raise StateError(f"an order state is already called {name!r}")
    state = OrderState(name=name, color=color, paid=paid, shipped=shipped, delivery=delivery)
    db.session.add(state)
    db.session.commit()
    return state


def state_list() -> list[dict]:
    """Every order state, by id, with what it says of an order in it."""
    return [
        {"id": s.id, "name": s.name, "paid": s.paid, "shipped": s.shipped, "delivery": s.delivery}
        for s in db.session.scalars(select(OrderState).order_by(OrderState.id))
    ]


def transition(source: OrderState, target: OrderState) -> OrderTransition | None:
    """The transition from ``source`` to ``target``, if allowed."""
    return db.session.scalar(
        select(OrderTransition).where(
            OrderTransition.from_state == source.id, OrderTransition.to_state == target.id
        )
    )


def allow(source: str | int, target: str | int, flags: list[str] | None = None) -> OrderTransition:
    """Allow the move from ``source`` to ``target``, setting ``flags`` (replaced if it exists)."""
    src, dst = state_named(source), state_named(target)
    if src.id == dst.id:
        raise StateError(
            msg("a transition goes to another state than %(state)s", state=repr(src.name))
        )
    names = order_flags.check_names(flags or [])
    found = transition(src, dst)
    if found is None:
        found = OrderTransition(from_state=src.id, to_state=dst.id)
        db.session.add(found)
    found.flags = names
    db.session.commit()
    return found


def forbid(source: str | int, target: str | int) -> None:
    """Remove the transition from ``source`` to ``target`` (StateError if there is none)."""
    src, dst = state_named(source), state_named(target)
    found = transition(src, dst)
    if found is None:
        raise StateError(
            msg(
                "there is no transition from %(source)s to %(target)s",
                source=repr(src.name),
                target=repr(dst.name),
            )
        )
    db.session.delete(found)
    db.session.commit()


def transitions() -> list[dict]:
    """Every allowed transition, by state names, with its flags."""
    names = dict(db.session.execute(select(OrderState.id, OrderState.name)).all())
    rows = db.session.scalars(select(OrderTransition).order_by(OrderTransition.id))
    return [
        {"id": t.id, "from": names[t.from_state], "to": names[t.to_state], "flags": t.flags or []}
        for t in rows
    ]


def ensure_standard_transitions() -> int:
    """Allow the standard moves between the standard states that exist; return how many were
    added (existing transitions, and their flags, are kept)."""
    states = {s.name: s for s in db.session.scalars(select(OrderState))}
    added = 0
    for source, target in STANDARD_TRANSITIONS:
        if source in states and target in states:
            if transition(states[source], states[target]) is None:
                db.session.add(
                    OrderTransition(
                        from_state=states[source].id, to_state=states[target].id, flags=[]
                    )
                )
                added += 1
    db.session.commit()
    return added


def move(
    order: int | str | Order,
    target: str | int,
    *,
    actor: str,
    expected: str | None = None,
) -> Moved:
    """Move an order to ``target`` along an allowed transition, atomically; ``expected`` (a
    state's name) makes it a conflict if the order is elsewhere. Raises OrderNotFound,
    StateError, IllegalTransition or TransitionConflict, with nothing written."""
    found = find_order(order)
    order_id, reference = found.id, found.reference
    # Read the state afresh: the session may hold an old copy of the order.
    current_id = db.session.scalar(select(Order.current_state).where(Order.id == order_id))
    db.session.rollback()  # what was read is not held: the UPDATE below decides
    current = db.session.get(OrderState, current_id)
    asked = state_named(target)
    if expected is not None and current.name.lower() != expected.strip().lower():
        raise TransitionConflict(reference, expected, asked.name)
    allowed = transition(current, asked)
    if allowed is None:
        raise IllegalTransition(reference, current.name, asked.name)
    try:
        moved, pending = _switch(order_id, reference, current, asked, allowed, actor)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    db.session.expire_all()
    order_flags.announce(pending)
    return moved


def history(order_id: int) -> list[dict]:
    """The order's status history, oldest first."""
    rows = db.session.execute(
        select(OrderHistory.date_add, OrderState.name)
        .join(OrderState, OrderState.id == OrderHistory.id_order_state)
        .where(OrderHistory.id_order == order_id)
        .order_by(OrderHistory.date_add, OrderHistory.id)
    ).all()
    return [{"at": at, "state": name} for at, name in rows]


def move_within(order_id: int, target: str | int, *, actor: str) -> tuple[Moved, list]:
    """``move``, inside the caller's transaction: the same checks and writes (compare-and-set
    UPDATE, history, log, flags), but no commit and no rollback, so that a move and what
    caused it (an inbound event's shipment) are written together or not at all. The caller
    commits, then passes the returned pending flags to ``flags.announce``. Raises OrderNotFound,
    IllegalTransition or TransitionConflict; the caller rolls back."""
    found = db.session.get(Order, order_id)
    if found is None:
        raise OrderNotFound(f"no order {order_id!r}")
    current_id = db.session.scalar(select(Order.current_state).where(Order.id == order_id))
    current = db.session.get(OrderState, current_id)
    asked = state_named(target)
    allowed = transition(current, asked)
    if allowed is None:
        raise IllegalTransition(found.reference, current.name, asked.name)
    return _switch(order_id, found.reference, current, asked, allowed, actor)


def _switch(
    order_id: int,
    reference: str,
    current: OrderState,
    asked: OrderState,
    allowed: OrderTransition,
    actor: str,
) -> tuple[Moved, list]:
    """The writes of a move, in the caller's transaction: the compare-and-set UPDATE (the
    first statement, so that on SQLite it waits for the write lock instead of failing on a
    stale read snapshot), the history row, the order's log and the transition's flags."""
    won = db.session.execute(
        update(Order)
        .where(Order.id == order_id, Order.current_state == current.id)
        .values(current_state=asked.id, date_upd=now())
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        raise TransitionConflict(reference, current.name, asked.name)
    db.session.add(OrderHistory(id_order=order_id, id_order_state=asked.id))
    db.session.add(
        OrderLog(
            id_order=order_id,
            kind="transition",
            message=f"{current.name} -> {asked.name} ({actor})"[:500],
        )
    )
    pending = order_flags.set_flags(
        order_id, list(allowed.flags or []), set_by=f"{current.name} -> {asked.name}"
    )
    return Moved(order_id, reference, current.name, asked.name, [p.flag for p in pending]), pending
