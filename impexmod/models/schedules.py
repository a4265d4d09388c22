"""Schedules, notifications and retention records."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, Integer, String, Text

from impexmod.extensions import db
from impexmod.models.catalog import now

__all__ = ["Notification", "NotificationDelivery", "SchedulerChore"]


class Notification(db.Model):
    """An in-app notification about a run (listed in the admin panel)."""

    __tablename__ = "notification"
    id = Column(Integer, primary_key=True)
    task_id = Column(Integer, ForeignKey("task.id", ondelete="CASCADE"), nullable=False, index=True)
    run_id = Column(Integer, ForeignKey("run.id", ondelete="CASCADE"), index=True)
    event = Column(String(32), nullable=False)  # run.failed | run.succeeded | delivery.failed
    level = Column(String(16), nullable=False, default="error")  # error | info
    title = Column(String(255), nullable=False)
    message = Column(Text)
    created_at = Column(DateTime, nullable=False, default=now, index=True)
    read_at = Column(DateTime)


class NotificationDelivery(db.Model):
    """One channel's delivery of a notification (e-mail, webhook), retried with backoff."""

    __tablename__ = "notification_delivery"
    id = Column(Integer, primary_key=True)
    notification_id = Column(
        Integer, ForeignKey("notification.id", ondelete="CASCADE"), nullable=False, index=True
    )
    channel = Column(String(16), nullable=False)  # email | webhook
    target = Column(String(512), nullable=False)  # addresses or URL
    # The exact bytes sent on every attempt, so a retried webhook carries the same signature.
    payload = Column(Text)
    status = Column(
        String(16), nullable=False, default="pending", index=True
    )  # pending|sent|failed
    attempts = Column(Integer, nullable=False, default=0)
    last_error = Column(Text)
    next_attempt_at = Column(DateTime, index=True)
    sent_at = Column(DateTime)
    created_at = Column(DateTime, nullable=False, default=now)


class SchedulerChore(db.Model):
    """A periodic job of the scheduler itself (retention), claimed like a task's slot."""

    __tablename__ = "scheduler_chore"
    name = Column(String(64), primary_key=True)
    next_run_at = Column(DateTime, nullable=False)
    last_run_at = Column(DateTime)
    last_result = Column(Text)
