"""Run history for the panel: runs by task and status, their progress, their files."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, BinaryIO

from flask import current_app

from impexmod.extensions import db
from impexmod.models import Run, RunDelivery, RunStatus, Task, now
from impexmod.runs.feedstore import CONTENT_TYPES, StoredObject, get_store

PAGE = 50


@dataclass
class RunFile:
    """A run's stored file, ready to be sent."""

    task_id: int
    name: str
    content_type: str
    stored: StoredObject

    def open(self) -> BinaryIO:
        """The file as a stream from the feed store (FileNotFoundError if removed since)."""
        return get_store().open(self.task_id, self.name)


def get_run(run_id: int) -> Run | None:
    """The run with this id, if any."""
    return db.session.get(Run, run_id)


def list_runs(
    task_id: int | None = None,
    status: str | None = None,
    before: int | None = None,
    limit: int = PAGE,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Run]:
    """Runs, newest first, paged by id (``before``: the last id of the previous page).

    ``since`` / ``until`` (naive UTC) keep the runs queued at or after ``since`` and before
    ``until``.
    """
    query = db.session.query(Run).order_by(Run.id.desc())
    if task_id:
        query = query.filter(Run.task_id == task_id)
    if status:
        query = query.filter(Run.status == status)
    if since is not None:
        query = query.filter(Run.queued_at >= since)
    if until is not None:
        query = query.filter(Run.queued_at < until)
    if before:
        query = query.filter(Run.id < before)
    return query.limit(limit).all()


def tasks_of(runs: list[Run]) -> dict[int, Task]:
    """The tasks of some runs, by id (one query)."""
    ids = {run.task_id for run in runs}
    if not ids:
        return {}
    return {t.id: t for t in db.session.query(Task).filter(Task.id.in_(ids))}


def is_active(run: Run) -> bool:
    """Whether the run is queued or running."""
    return run.status in RunStatus.active()


def progress(run_ids: list[int]) -> list[Run]:
    """Fresh copies of some runs (at most 100), for progress polling."""
    # A new transaction: each poll must see what the run committed since the last one.
    db.session.rollback()
    ids = [int(i) for i in run_ids][:100]
    if not ids:
        return []
    return db.session.query(Run).filter(Run.id.in_(ids)).order_by(Run.id).all()


def run_file(run: Run) -> RunFile | None:
    """The file a run produced, while it is still stored (retention may have removed it)."""
    if not run.file_key or run.file_removed_at is not None:
        return None
    stored = get_store().stat(run.task_id, run.file_key)
    if stored is None:
        return None
    ext = run.file_key.rsplit(".", 1)[-1]
    return RunFile(
        run.task_id, run.file_key, CONTENT_TYPES.get(ext, "application/octet-stream"), stored
    )


# ------------------------------------------------------------- one-off tasks (manual runs)


def expired_tasks(kind: str, days: int | None = None, moment: datetime | None = None) -> list[Task]:
    """The one-off tasks of ``kind`` older than ``days`` (RETENTION_DAYS) and not running."""
    days = int(current_app.config.get("RETENTION_DAYS", 30) if days is None else days)
    cutoff = (moment or now()) - timedelta(days=days)
    return (
        db.session.query(Task)
        .filter(Task.kind == kind, Task.created_at <= cutoff, Task.lock_run_id.is_(None))
        .all()
    )


def recent_runs_of(kind: str, limit: int = 10) -> tuple[list[Run], dict[int, Task]]:
    """The latest runs of the tasks of ``kind``, newest first, with their tasks by id."""
    rows = (
        db.session.query(Run, Task)
        .join(Task, Task.id == Run.task_id)
        .filter(Task.kind == kind)
        .order_by(Run.id.desc())
        .limit(limit)
        .all()
    )
    return [run for run, _ in rows], {task.id: task for _, task in rows}


def describe_run(run: Run | None) -> dict[str, Any] | None:
    """A run as plain data (CLI JSON, panel)."""
    if run is None:
        return None
    return {
        "id": run.id,
        "task_id": run.task_id,
        "status": run.status,
        "trigger": run.trigger,
        "strategy": run.strategy,
        "queued_at": run.queued_at.isoformat() if run.queued_at else None,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "ended_at": run.ended_at.isoformat() if run.ended_at else None,
        "duration": run.duration,
        "total": run.total,
        "done": run.done,
        "entity_count": run.entity_count,
        "deleted_count": run.deleted_count,
        "bytes": run.bytes,
        "warnings": run.warnings or [],
        "error": run.error,
        "reason": run.reason,
        "scheduled_for": run.scheduled_for.isoformat() if run.scheduled_for else None,
        "file": run.file_key if run.file_removed_at is None else None,
        "file_removed_at": run.file_removed_at.isoformat() if run.file_removed_at else None,
        "deliveries": [describe_delivery(d) for d in deliveries_of([run.id]).get(run.id, [])],
        "log": (run.log or "").splitlines(),
    }


def deliveries_of(run_ids: list[int]) -> dict[int, list[RunDelivery]]:
    """The deliveries of some runs to their exporter's destinations, by run id (one query)."""
    if not run_ids:
        return {}
    found: dict[int, list[RunDelivery]] = {}
    rows = (
        db.session.query(RunDelivery)
        .filter(RunDelivery.run_id.in_(run_ids))
        .order_by(RunDelivery.run_id, RunDelivery.id)
    )
    for row in rows:
        found.setdefault(row.run_id, []).append(row)
    return found


def describe_delivery(row: RunDelivery) -> dict[str, Any]:
    """A delivery as plain data (CLI JSON, panel)."""
    return {
        "id": row.id,
        "destination_id": row.destination_id,
        "kind": row.kind,
        "label": row.label,
        "outcome": row.outcome,
        "attempt": row.attempt,
        "started_at": row.started_at.isoformat() if row.started_at else None,
        "ended_at": row.ended_at.isoformat() if row.ended_at else None,
        "bytes": row.bytes,
        "remote_name": row.remote_name,
        "error": row.error,
        "next_attempt_at": row.next_attempt_at.isoformat() if row.next_attempt_at else None,
    }
