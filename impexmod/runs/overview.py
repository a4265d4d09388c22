"""The figures of the panel's dashboard: catalog counts, latest runs, recent failures."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select

from impexmod.extensions import db
from impexmod.models import Combination, Customer, Order, Product, Run, RunStatus, Task, now
from impexmod.runs.tasks import RECURRING_KINDS


@dataclass
class Overview:
    """What the dashboard shows."""

    counts: dict[str, int]
    latest_runs: list[Run] = field(default_factory=list)
    failures: list[Run] = field(default_factory=list)
    running: int = 0
    tasks: dict[int, Task] = field(default_factory=dict)


def _count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def overview(latest: int = 8, failure_days: int = 7) -> Overview:
    """Catalog and task counts, the latest runs and the failures of the last days."""
    counts = {
        "products": _count(Product),
        "combinations": _count(Combination),
        "orders": _count(Order),
        "customers": _count(Customer),
        # Recurring tasks only: the panel's one-off manual exports are tasks too.
        "tasks": db.session.execute(
            select(func.count()).select_from(Task).where(Task.kind.in_(RECURRING_KINDS))
        ).scalar_one(),
    }
    runs = db.session.query(Run).order_by(Run.id.desc()).limit(latest).all()
    since = now() - timedelta(days=failure_days)
    failures = (
        db.session.query(Run)
        .filter(Run.status == RunStatus.FAILED.value, Run.queued_at >= since)
        .order_by(Run.id.desc())
        .limit(latest)
        .all()
    )
    running = (
        db.session.query(func.count(Run.id)).filter(Run.status.in_(RunStatus.active())).scalar()
    )
    ids = {r.task_id for r in runs + failures}
    tasks = {t.id: t for t in db.session.query(Task).filter(Task.id.in_(ids))} if ids else {}
    return Overview(counts, runs, failures, running or 0, tasks)
