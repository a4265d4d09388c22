"""Delivering a succeeded export run's file to each enabled destination of its exporter.

``run_succeeded`` is called by the worker once the run is published and its task released
(impexmod.dispatch.jobs.execute): one ``delivery`` row per destination, tried at once. A
retryable failure (refused, timed out, lost, a 5xx) is tried again with exponential backoff by
the scheduler (``retry_due``, beside the notification retries) up to DELIVERY_MAX_ATTEMPTS; a
failure that retrying cannot mend, or the last attempt, is notified as a failed run is. The
run's success stands whatever happens here: each outcome goes to its row and the run's log.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from impexmod import delivery
from impexmod.dispatch import notify
from impexmod.extensions import db
from impexmod.models import (
    DeliveryOutcome,
    Run,
    RunDelivery,
    RunStatus,
    Task,
    TaskDestination,
    TaskKind,
    now,
)
from impexmod.runs import history, links
from impexmod.runs.feedstore import get_store

__all__ = ["retry_due", "run_succeeded"]

# An attempt claimed by one process is hidden from the others this long (see notify.LEASE).
LEASE = timedelta(minutes=10)


def _naive(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment is not None else None


def run_succeeded(run: Run) -> list[RunDelivery]:
    """Deliver a succeeded export run to every enabled destination of its task, at once."""
    task = db.session.get(Task, run.task_id)
    if task is None or task.kind != TaskKind.EXPORT or run.status != RunStatus.SUCCEEDED.value:
        return []
    destinations = (
        db.session.query(TaskDestination)
        .filter(TaskDestination.task_id == task.id, TaskDestination.enabled.is_(True))
        .order_by(TaskDestination.position, TaskDestination.id)
        .all()
    )
    if not destinations:
        return []
    moment = now()
    rows = [
        RunDelivery(
            run_id=run.id,
            destination_id=d.id,
            kind=d.kind,
            label=d.label,
            attempt=0,
            outcome=DeliveryOutcome.RETRYING,
            next_attempt_at=moment + LEASE,  # claimed by this process until its attempt ends
            attempts=[],
            created_at=moment,
        )
        for d in destinations
    ]
    db.session.add_all(rows)
    run.log_line(f"Delivering to {len(rows)} destination(s)")
    db.session.commit()
    ids = [r.id for r in rows]
    for delivery_id in ids:
        _attempt(delivery_id)
    return [db.session.get(RunDelivery, i) for i in ids]


def _backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: base, 2 x base, 4 x base, ..."""
    base = int(current_app.config.get("DELIVERY_RETRY_SECONDS", 60))
    return timedelta(seconds=base * 2 ** (attempts - 1))


def _not_stored(kind: str) -> delivery.Delivery:
    outcome = delivery.Delivery(kind=kind, started_at=delivery.now())
    outcome.error = "the run's file is no longer stored (retention)"
    outcome.ended_at = outcome.started_at
    return outcome


def _attempt(delivery_id: int) -> RunDelivery:
    """Make one attempt of a claimed delivery and record it (never raises on a far end's fault)."""
    row = db.session.get(RunDelivery, delivery_id)
    run = db.session.get(Run, row.run_id)
    task = db.session.get(Task, run.task_id)
    destination = (
        db.session.get(TaskDestination, row.destination_id) if row.destination_id else None
    )
    row.attempt += 1
    maximum = max(1, int(current_app.config.get("DELIVERY_MAX_ATTEMPTS", 4)))
    found = history.run_file(run)
    if destination is None or not destination.enabled:
        outcome = delivery.Delivery(kind=row.kind, started_at=delivery.now())
        outcome.error = "the destination was removed or disabled"
        outcome.ended_at = outcome.started_at
    elif found is None:
        outcome = _not_stored(row.kind)
    else:
        meta = delivery.FeedMeta(
            exporter=task.name,
            run_id=run.id,
            date=(run.started_at or run.queued_at).replace(tzinfo=UTC),
            download_url=links.download_url(run, task),
            content_type=found.content_type,
        )
        timeout = float(current_app.config.get("DELIVERY_TIMEOUT", delivery.DEFAULT_TIMEOUT))
        target = delivery.Destination(destination.kind, destination.delivery_settings())
        try:
            # A local file for the transports: the store's own, or a download from a bucket.
            with get_store().local_copy(found.task_id, found.name) as path:
                outcome = delivery.deliver(target, str(path), meta, timeout=timeout)
        except FileNotFoundError:
            outcome = _not_stored(row.kind)
    _record(row, outcome)
    where = f'{row.kind} "{row.label}"'
    if outcome.ok:
        row.outcome, row.next_attempt_at = DeliveryOutcome.OK, None
        if outcome.learned and destination is not None:
            destination.learned = {**(destination.learned or {}), **outcome.learned}
        run.log_line(f"Delivered to {where}: {row.remote_name} ({row.bytes} bytes)")
    elif outcome.retryable and row.attempt < maximum:
        wait = _backoff(row.attempt)
        row.outcome = DeliveryOutcome.RETRYING
        row.next_attempt_at = now() + wait
        run.log_line(
            f"Delivery to {where} failed (attempt {row.attempt} of {maximum}): {outcome.error}; "
            f"tried again in {int(wait.total_seconds())} s"
        )
    else:
        row.outcome, row.next_attempt_at = DeliveryOutcome.FAILED, None
        tried = f"after {row.attempt} attempts" if row.attempt > 1 else "not retried"
        run.log_line(
            f"Delivery to {where} failed ({tried}): {outcome.error}; the run's success stands"
        )
    db.session.commit()
    if row.outcome == DeliveryOutcome.FAILED:
        try:
            notify.delivery_failed(run, row)
        except Exception:  # a notification's failure must not hide the delivery's
            db.session.rollback()
            current_app.logger.exception("notifying delivery %s failed", delivery_id)
    return row


def _record(row: RunDelivery, outcome: delivery.Delivery) -> None:
    row.started_at, row.ended_at = _naive(outcome.started_at), _naive(outcome.ended_at)
    row.bytes = outcome.bytes if outcome.ok else row.bytes
    row.remote_name = outcome.remote_name or row.remote_name
    row.error = None if outcome.ok else (outcome.error or "failed")[:512]
    row.attempts = [
        *(row.attempts or []),
        {
            "attempt": row.attempt,
            "started_at": outcome.started_at.isoformat(),
            "ended_at": outcome.ended_at.isoformat() if outcome.ended_at else None,
            "ok": outcome.ok,
            "retryable": outcome.retryable,
            "error": outcome.error,
        },
    ]


def retry_due(moment: datetime | None = None) -> int:
    """Attempt every delivery waiting for a retry due at ``moment``; return how many were."""
    moment = (moment or now()).replace(microsecond=0)
    due = db.session.execute(
        select(RunDelivery.id, RunDelivery.next_attempt_at)
        .where(
            RunDelivery.outcome == DeliveryOutcome.RETRYING,
            RunDelivery.next_attempt_at <= moment,
        )
        .order_by(RunDelivery.next_attempt_at)
        .limit(50)
    ).all()
    db.session.rollback()  # each claim starts a fresh transaction (see notify.deliver_due)
    attempted = 0
    for delivery_id, due_at in due:
        claimed = db.session.execute(
            update(RunDelivery)
            .where(
                RunDelivery.id == delivery_id,
                RunDelivery.outcome == DeliveryOutcome.RETRYING,
                RunDelivery.next_attempt_at == due_at,
            )
            .values(next_attempt_at=moment + LEASE)
        ).rowcount
        db.session.commit()
        if claimed == 1:
            _attempt(delivery_id)
            attempted += 1
    return attempted
