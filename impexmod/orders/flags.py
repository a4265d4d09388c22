"""Export-eligibility flags: defined once (``ExportFlag``), set on orders by transitions or by
a chain's exporter, approved or rejected by a merchant when they need it, then claimed, served
and cleared by the order exporter acting on them (impexmod.orders.exporter).

Every change of a flag's status is a compare-and-set UPDATE on the status it was read in, so two
runs never claim the same flag and an approval never races a rejection. Whoever must hear that
flags became ready (the order exporters, to start a run) subscribes with ``on_ready``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import func, select, update

from impexmod.extensions import db
from impexmod.messages import msg
from impexmod.models import ExportFlag, FlagStatus, Order, OrderFlag, OrderLog, now

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
# How many times a send may fail before the order is shown to the merchant as failing.
FAILING_AFTER = 3


class FlagError(ValueError):
    """A flag that cannot be defined, set or changed; the message says why."""


@dataclass(frozen=True)
class Pending:
    """A flag just set on an order, and whether it waits for approval."""

    order_id: int
    flag: str
    status: str


_READY_LISTENERS: list[Callable[[set[str]], None]] = []


def on_ready(listener: Callable[[set[str]], None]) -> None:
    """Call ``listener(flag names)`` after flags became ready on orders (once per commit)."""
    if listener not in _READY_LISTENERS:
        _READY_LISTENERS.append(listener)


def announce(pending: Iterable[Pending]) -> None:
    """Tell the listeners which flags became ready (after the commit that made them so)."""
    names = {p.flag for p in pending if p.status == FlagStatus.READY}
    if not names:
        return
    for listener in list(_READY_LISTENERS):
        listener(names)


def define(name: str, label: str = "", needs_approval: bool = False) -> ExportFlag:
    """Define an export flag, or change the label and approval of an existing one."""
    name = (name or "").strip()
    if not NAME.match(name):
        raise FlagError(
            msg(
                "%(name)s is not a flag name: 1 to 32 lowercase letters, digits, '-' or '_'",
                name=repr(name),
            )
        )
    flag = db.session.scalar(select(ExportFlag).where(ExportFlag.name == name))
    if flag is None:
        flag = ExportFlag(name=name)
        db.session.add(flag)
    flag.label = (label or "").strip()[:128] or flag.label or name
    flag.needs_approval = bool(needs_approval)
    db.session.commit()
    return flag


def defined() -> list[ExportFlag]:
    """Every defined flag, by name."""
    return list(db.session.scalars(select(ExportFlag).order_by(ExportFlag.name)))


def check_names(names: Iterable[str]) -> list[str]:
    """The names, deduplicated in order, each a defined flag (FlagError naming the first not)."""
    known = {f.name for f in defined()}
    out: list[str] = []
    for raw in names:
        name = str(raw).strip()
        if not name:
            continue
        if name not in known:
            listed = ", ".join(sorted(known)) or "none yet: define one first"
            raise FlagError(f"no export flag {name!r} (defined: {listed})")
        if name not in out:
            out.append(name)
    return out


def _lock_order(order_id: int) -> None:
    # Flags of one order change one writer at a time: the order row is the lock (a no-op on
    # SQLite, where writers are serialised anyway).
    db.session.execute(select(Order.id).where(Order.id == order_id).with_for_update())


def set_flags(order_id: int, names: Iterable[str], *, set_by: str) -> list[Pending]:
    """Set flags on an order, in the caller's transaction (the caller commits, then calls
    ``announce``). A flag already pending stays as it is; one served or rejected is set again
    as a new generation."""
    names = list(names)
    if not names:
        return []
    _lock_order(order_id)
    approval = dict(
        db.session.execute(
            select(ExportFlag.name, ExportFlag.needs_approval).where(ExportFlag.name.in_(names))
        ).all()
    )
    existing = {
        f.flag: f
        for f in db.session.scalars(
            select(OrderFlag).where(OrderFlag.id_order == order_id, OrderFlag.flag.in_(names))
        )
    }
    out: list[Pending] = []
    stamp = now()
    for name in names:
        status = FlagStatus.HELD if approval.get(name) else FlagStatus.READY
        row = existing.get(name)
        if row is not None and row.status in FlagStatus.PENDING:
            continue  # already waiting to be served: once is enough
        if row is None:
            row = OrderFlag(id_order=order_id, flag=name, generation=1)
            db.session.add(row)
        else:
            row.generation += 1
            for attr in ("approved_at", "approved_by", "claimed_run", "claimed_at"):
                setattr(row, attr, None)
            for attr in ("served_at", "served_by", "outcome", "last_error"):
                setattr(row, attr, None)
            row.attempts = 0
        row.status, row.set_at, row.set_by = status, stamp, set_by[:128]
        waits = " (waits for approval)" if status == FlagStatus.HELD else ""
        db.session.add(
            OrderLog(id_order=order_id, kind="flag", message=f"flag {name} set by {set_by}{waits}")
        )
        out.append(Pending(order_id, name, status))
    db.session.flush()
    return out


def set_on(order_id: int, names: Iterable[str], *, set_by: str) -> list[Pending]:
    """Set flags on an order by hand (or by a chain) and commit; tell the listeners."""
    names = check_names(names)
    try:
        pending = set_flags(order_id, names, set_by=set_by)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    announce(pending)
    return pending


def _decide(flag_ids: Iterable[int], to: str, actor: str, verb: str) -> list[OrderFlag]:
    decided: list[OrderFlag] = []
    stamp = now()
    for flag_id in flag_ids:
        won = db.session.execute(
            update(OrderFlag)
            .where(OrderFlag.id == flag_id, OrderFlag.status == FlagStatus.HELD)
            .values(status=to, approved_at=stamp, approved_by=actor[:128])
        ).rowcount
        if won != 1:
            continue  # decided meanwhile, or never held: nothing to do
        row = db.session.get(OrderFlag, flag_id)
        db.session.add(
            OrderLog(
                id_order=row.id_order, kind="approval", message=f"flag {row.flag} {verb} by {actor}"
            )
        )
        decided.append(row)
    db.session.commit()
    return decided


def approve(flag_ids: Iterable[int], *, actor: str) -> list[OrderFlag]:
    """Approve held flags (one or many): their exporters may take them. Returns those approved
    (a flag no longer held is left alone)."""
    approved = _decide(flag_ids, FlagStatus.READY, actor, "approved")
    announce([Pending(r.id_order, r.flag, FlagStatus.READY) for r in approved])
    return approved


def reject(flag_ids: Iterable[int], *, actor: str) -> list[OrderFlag]:
    """Reject held flags: the orders will not be exported for them."""
    return _decide(flag_ids, FlagStatus.REJECTED, actor, "rejected")


def held(flag: str | None = None, limit: int = 500) -> list[OrderFlag]:
    """Flags waiting for approval, oldest first (the panel's "Orders to approve")."""
    query = select(OrderFlag).where(OrderFlag.status == FlagStatus.HELD)
    if flag:
        query = query.where(OrderFlag.flag == flag)
    return list(db.session.scalars(query.order_by(OrderFlag.id).limit(limit)))


def failing(flag: str | None = None, limit: int = 500) -> list[OrderFlag]:
    """Flags whose sends keep failing (FAILING_AFTER attempts or more), still pending."""
    query = select(OrderFlag).where(
        OrderFlag.status.in_((FlagStatus.READY, FlagStatus.SENDING)),
        OrderFlag.attempts >= FAILING_AFTER,
    )
    if flag:
        query = query.where(OrderFlag.flag == flag)
    return list(db.session.scalars(query.order_by(OrderFlag.id).limit(limit)))


def of_order(order_id: int) -> list[OrderFlag]:
    """Every flag of an order."""
    return list(
        db.session.scalars(
            select(OrderFlag).where(OrderFlag.id_order == order_id).order_by(OrderFlag.id)
        )
    )


def counts() -> dict[str, dict[str, int]]:
    """How many orders carry each flag, by status."""
    out: dict[str, dict[str, int]] = {}
    rows = db.session.execute(
        select(OrderFlag.flag, OrderFlag.status, func.count()).group_by(
            OrderFlag.flag, OrderFlag.status
        )
    )
    for flag, status, count in rows:
        out.setdefault(flag, {})[status] = count
    return out


# -- serving: what an order exporter's run does with the flags it acts on --------------------


def claim(flag: str, run_id: int, limit: int) -> list[OrderFlag]:
    """Claim up to ``limit`` ready flags for a run, oldest first; each is claimed by one run
    only (a compare-and-set on its status), so concurrent runs share them out."""
    ids = list(
        db.session.scalars(
            select(OrderFlag.id)
            .where(OrderFlag.flag == flag, OrderFlag.status == FlagStatus.READY)
            .order_by(OrderFlag.id)
            .limit(limit)
        )
    )
    db.session.rollback()  # the claims below decide, not this read
    won: list[int] = []
    stamp = now()
    for flag_id in ids:
        if db.session.execute(
            update(OrderFlag)
            .where(OrderFlag.id == flag_id, OrderFlag.status == FlagStatus.READY)
            .values(status=FlagStatus.SENDING, claimed_run=run_id, claimed_at=stamp)
        ).rowcount:
            won.append(flag_id)
        db.session.commit()  # one claim per transaction: a competitor waits a row, not a batch
    if not won:
        return []
    return list(
        db.session.scalars(select(OrderFlag).where(OrderFlag.id.in_(won)).order_by(OrderFlag.id))
    )


def served(
    row: OrderFlag,
    *,
    task_id: int,
    run_id: int,
    outcome: str,
    next_flags: Iterable[str] = (),
    commit: bool = True,
) -> list[Pending]:
    """Record that the flag was sent (it is cleared: never sent again) and set the chain's next
    flags, only if this run still holds the claim; committed unless ``commit`` is False (the
    flags of one batch, sent in one request, are recorded in one transaction). Returns the next
    flags set (the caller announces them)."""
    won = db.session.execute(
        update(OrderFlag)
        .where(
            OrderFlag.id == row.id,
            OrderFlag.status == FlagStatus.SENDING,
            OrderFlag.claimed_run == run_id,
        )
        .values(
            status=FlagStatus.SENT,
            served_at=now(),
            served_by=task_id,
            outcome=outcome[:255],
            last_error=None,
            attempts=OrderFlag.attempts + 1,
        )
    ).rowcount
    if won != 1:  # nothing was written for it: the transaction goes on
        if commit:
            db.session.rollback()
        return []
    db.session.add(
        OrderLog(
            id_order=row.id_order,
            kind="export",
            task_id=task_id,
            run_id=run_id,
            message=f"flag {row.flag} served: {outcome}"[:500],
        )
    )
    pending = set_flags(row.id_order, list(next_flags), set_by=f"exporter {task_id} (chain)")
    if commit:
        db.session.commit()
    return pending


def failed(row: OrderFlag, *, task_id: int, run_id: int, error: str) -> None:
    """Record a failed send: the flag is ready again for the next run, with why it failed."""
    won = db.session.execute(
        update(OrderFlag)
        .where(
            OrderFlag.id == row.id,
            OrderFlag.status == FlagStatus.SENDING,
            OrderFlag.claimed_run == run_id,
        )
        .values(
            status=FlagStatus.READY,
            claimed_run=None,
            claimed_at=None,
            outcome="failed",
            last_error=error[:2000],
            attempts=OrderFlag.attempts + 1,
        )
    ).rowcount
    if won == 1:
        db.session.add(
            OrderLog(
                id_order=row.id_order,
                kind="export",
                task_id=task_id,
                run_id=run_id,
                message=f"flag {row.flag} not served: {error}"[:500],
            )
        )
    db.session.commit()


def release_stale(flag: str, active_runs: Iterable[int]) -> int:
    """Put back to ready the flags claimed by runs that are no longer active (killed while
    sending: the idempotency key lets the receiver recognise the resend); return how many."""
    query = update(OrderFlag).where(OrderFlag.flag == flag, OrderFlag.status == FlagStatus.SENDING)
    active = list(active_runs)
    if active:
        query = query.where(OrderFlag.claimed_run.notin_(active))
    count = db.session.execute(
        query.values(status=FlagStatus.READY, claimed_run=None, claimed_at=None)
    ).rowcount
    db.session.commit()
    return count
