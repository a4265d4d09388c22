"""Notifications about runs: an in-app row, and e-mail and webhook deliveries.

A failed run always notifies; a succeeded one only when its task asks (``notify_success``).
Each delivery is tried at once, then retried with exponential backoff by the scheduler
(``deliver_due``) until it goes through or runs out of attempts; every attempt is recorded on
the delivery. Nothing here ever changes the run, which has already ended.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select, update

from impexmod.dispatch.channels import post_webhook, send_email
from impexmod.extensions import db
from impexmod.models import Notification, NotificationDelivery, Run, RunStatus, Task, TaskKind, now
from impexmod.runs.history import describe_run

__all__ = ["deliver_due", "delivery_failed", "latest", "mark_all_read", "run_ended", "unread"]

# A delivery being attempted is hidden from other schedulers this long (an attempt takes
# at most NOTIFY_TIMEOUT seconds; a process that died mid-attempt is retried after this).
LEASE = timedelta(minutes=5)


def _label(task: Task) -> str:
    if task.kind == TaskKind.UPLOAD:
        return _("Manual import")
    return _("Importer") if task.kind == TaskKind.IMPORT else _("Exporter")


def _payload(task: Task, run: Run, event: str, notification: Notification) -> dict[str, Any]:
    from impexmod.runs.tokens import feed_url

    described = describe_run(run)
    described.pop("log", None)
    return {
        "event": event,
        "notification_id": notification.id,
        "created_at": notification.created_at.isoformat() + "Z",
        "task": {"id": task.id, "kind": task.kind, "name": task.name, "entity": task.entity},
        "feed_url": feed_url(task) if task.kind == TaskKind.EXPORT else None,
        "run": described,
    }


def _message(task: Task, run: Run, failed: bool) -> tuple[str, str]:
    label = _label(task)
    if failed:
        title = _(
            '%(label)s "%(name)s" failed (run %(id)s)', label=label, name=task.name, id=run.id
        )
        kept = (
            _("Nothing of the refused input was written.")
            if task.kind in TaskKind.importing()
            else _("The previous feed stays in place.")
        )
        body = (run.error or _("The run failed.")) + "\n" + kept
    else:
        title = _(
            '%(label)s "%(name)s" succeeded (run %(id)s)', label=label, name=task.name, id=run.id
        )
        body = _(
            "%(entities)s entities, %(deletions)s deletions, %(bytes)s bytes",
            entities=run.entity_count,
            deletions=run.deleted_count,
            bytes=run.bytes,
        )
        if run.duration is not None:
            body += _(" in %(seconds)s s", seconds=f"{run.duration:.2f}")
    lines = (run.log or "").splitlines()[-10:]
    if lines:
        body += "\n\n" + _("Log:") + "\n" + "\n".join(lines)
    return title[:255], body


def run_ended(run: Run) -> Notification | None:
    """Notify about a run that has ended, if its task wants to hear about it."""
    task = db.session.get(Task, run.task_id)
    failed = run.status == RunStatus.FAILED.value
    if task is None or not (failed or (run.status == "succeeded" and task.notify_success)):
        return None
    event = "run.failed" if failed else "run.succeeded"
    title, message = _message(task, run, failed)
    return _notify(task, run, event, "error" if failed else "info", title, message)


def delivery_failed(run: Run, delivery: Any) -> Notification | None:
    """Notify that a succeeded run's file could not be delivered to one destination (a failure
    retrying cannot mend, or the last attempt): always, as a failed run is."""
    task = db.session.get(Task, run.task_id)
    if task is None:
        return None
    title = _(
        '%(label)s "%(name)s": delivery to "%(destination)s" failed (run %(id)s)',
        label=_label(task),
        name=task.name,
        destination=delivery.label,
        id=run.id,
    )
    body = (
        (delivery.error or _("The delivery failed."))
        + "\n"
        + _(
            "Attempts: %(attempts)s. The run succeeded: its feed URL serves the new file.",
            attempts=delivery.attempt,
        )
    )
    extra = {
        "delivery": {
            "id": delivery.id,
            "destination_id": delivery.destination_id,
            "kind": delivery.kind,
            "label": delivery.label,
            "attempts": delivery.attempt,
            "error": delivery.error,
        }
    }
    return _notify(task, run, "delivery.failed", "error", title[:255], body, extra)


def _notify(
    task: Task,
    run: Run,
    event: str,
    level: str,
    title: str,
    message: str,
    extra: dict[str, Any] | None = None,
) -> Notification:
    """Record an in-app notification and send it to the task's e-mails and webhook."""
    notification = Notification(
        task_id=task.id,
        run_id=run.id,
        event=event,
        level=level,
        title=title,
        message=message,
        created_at=now(),
    )
    db.session.add(notification)
    db.session.flush()
    moment = now()
    deliveries = []
    emails = [a.strip() for a in (task.notify_emails or "").split(",") if a.strip()]
    if emails:
        delivery = NotificationDelivery(
            notification_id=notification.id,
            channel="email",
            target=", ".join(emails)[:512],
            payload=message,
            next_attempt_at=moment,
            created_at=moment,
        )
        if not current_app.config.get("SMTP_HOST"):
            # Retrying cannot help until an operator configures SMTP: say so once.
            delivery.status, delivery.next_attempt_at = "failed", None
            delivery.last_error = "IMPEXMOD_SMTP_HOST is not set: e-mail notifications are off"
        deliveries.append(delivery)
    if task.webhook_url:
        payload = {**_payload(task, run, event, notification), **(extra or {})}
        body = json.dumps(payload, sort_keys=True)
        deliveries.append(
            NotificationDelivery(
                notification_id=notification.id,
                channel="webhook",
                target=task.webhook_url,
                payload=body,
                next_attempt_at=moment,
                created_at=moment,
            )
        )
    for delivery in deliveries:
        delivery.attempts = 0
        db.session.add(delivery)
    db.session.commit()
    ids = [d.id for d in deliveries if d.status != "failed"]
    if ids:
        deliver_due(moment, ids=ids)
    return notification


def _backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: base, 2 x base, 4 x base, ..."""
    base = int(current_app.config.get("NOTIFY_RETRY_SECONDS", 60))
    return timedelta(seconds=base * 2 ** (attempts - 1))


def _send(delivery: NotificationDelivery) -> None:
    notification = db.session.get(Notification, delivery.notification_id)
    timeout = float(current_app.config.get("NOTIFY_TIMEOUT", 10))
    if delivery.channel == "email":
        recipients = [a.strip() for a in delivery.target.split(",") if a.strip()]
        send_email(current_app.config, recipients, notification.title, delivery.payload or "")
    elif delivery.channel == "webhook":
        task = db.session.get(Task, notification.task_id)
        secret = task.webhook_secret if task else None
        body = (delivery.payload or "").encode()
        post_webhook(delivery.target, body, secret, notification.event, delivery.id, timeout)
    else:
        raise ValueError(f"unknown channel {delivery.channel!r}")


def _attempt(delivery_id: int, moment: datetime) -> NotificationDelivery:
    delivery = db.session.get(NotificationDelivery, delivery_id)
    delivery.attempts += 1
    try:
        _send(delivery)
    except Exception as exc:  # any failure of the far end is recorded, then retried
        delivery.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        if delivery.attempts >= int(current_app.config.get("NOTIFY_MAX_ATTEMPTS", 6)):
            delivery.status, delivery.next_attempt_at = "failed", None
        else:
            delivery.next_attempt_at = moment + _backoff(delivery.attempts)
        current_app.logger.warning(
            "delivery %s (%s) attempt %s failed: %s",
            delivery.id,
            delivery.channel,
            delivery.attempts,
            delivery.last_error,
        )
    else:
        delivery.status, delivery.sent_at, delivery.next_attempt_at = "sent", now(), None
    db.session.commit()
    return delivery


def deliver_due(moment: datetime | None = None, ids: list[int] | None = None) -> int:
    """Attempt every pending delivery due at ``moment``; return how many were attempted."""
    # Whole seconds, as DATETIME columns keep them on every database.
    moment = (moment or now()).replace(microsecond=0)
    query = (
        select(NotificationDelivery.id, NotificationDelivery.next_attempt_at)
        .where(
            NotificationDelivery.status == "pending",
            NotificationDelivery.next_attempt_at <= moment,
        )
        .order_by(NotificationDelivery.next_attempt_at)
        .limit(100)
    )
    if ids is not None:
        query = query.where(NotificationDelivery.id.in_(ids))
    due = db.session.execute(query).all()
    # End the read so that each claim below starts a fresh transaction (SQLite would refuse
    # to upgrade a stale read snapshot into a write).
    db.session.rollback()
    attempted = 0
    for delivery_id, due_at in due:
        # Claim: push the next attempt past the lease, only if nobody else did it first.
        claimed = db.session.execute(
            update(NotificationDelivery)
            .where(
                NotificationDelivery.id == delivery_id,
                NotificationDelivery.status == "pending",
                NotificationDelivery.next_attempt_at == due_at,
            )
            .values(next_attempt_at=moment + LEASE)
        ).rowcount
        db.session.commit()
        if claimed == 1:
            _attempt(delivery_id, moment)
            attempted += 1
    return attempted


def unread(limit: int = 50) -> list[Notification]:
    """The latest unread in-app notifications, newest first (for the admin panel)."""
    return (
        db.session.query(Notification)
        .filter(Notification.read_at.is_(None))
        .order_by(Notification.id.desc())
        .limit(limit)
        .all()
    )


def latest(limit: int = 50) -> list[Notification]:
    """The latest in-app notifications, read or not, newest first (for the admin panel)."""
    return db.session.query(Notification).order_by(Notification.id.desc()).limit(limit).all()


def mark_all_read() -> int:
    """Mark every unread in-app notification read now; return how many were."""
    marked = db.session.execute(
        update(Notification).where(Notification.read_at.is_(None)).values(read_at=now())
    ).rowcount
    db.session.commit()
    return marked
