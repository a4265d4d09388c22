"""Retention: run files stay downloadable for RETENTION_DAYS, then their files are removed.

The file a task's feed URL serves (named by its ``current.json``) is never removed, however
old: a feed whose exporter has not succeeded for months still answers its partners. Each
removal is recorded on its run (``file_removed_at`` and a log line). Files uploaded in the
panel to import (``impexmod.importing.manual``) are deleted with their task past the same period.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from impexmod.extensions import db
from impexmod.importing import manual as manual_import
from impexmod.models import Run, now
from impexmod.runs.feedstore import get_store


@dataclass
class RetentionReport:
    """What one pass removed and kept."""

    removed_runs: list[int] = field(default_factory=list)
    removed_bytes: int = 0
    kept_current: list[int] = field(default_factory=list)  # old runs still served at a feed URL
    removed_uploads: int = 0  # uploaded files (with their one-off tasks) deleted

    def __str__(self) -> str:
        text = (
            f"removed the files of {len(self.removed_runs)} run(s) ({self.removed_bytes} bytes); "
            f"kept {len(self.kept_current)} old file(s) still served at a feed URL"
        )
        if self.removed_uploads:
            text += f"; deleted {self.removed_uploads} uploaded file(s) past retention"
        return text


def purge_run_files(moment: datetime | None = None, days: int | None = None) -> RetentionReport:
    """Remove the files (and gzip twins) of runs that ended more than ``days`` days ago."""
    moment = (moment or now()).replace(microsecond=0)
    days = int(current_app.config.get("RETENTION_DAYS", 30) if days is None else days)
    cutoff = moment - timedelta(days=days)
    run_ids = db.session.execute(
        select(Run.id)
        .where(
            Run.file_key.is_not(None),
            Run.file_removed_at.is_(None),
            func.coalesce(Run.ended_at, Run.queued_at) < cutoff,
        )
        .order_by(Run.id)
    ).scalars()
    store = get_store()
    report = RetentionReport()
    served: dict[int, str | None] = {}
    for run_id in list(run_ids):
        run = db.session.get(Run, run_id)
        if run.task_id not in served:
            current = store.current(run.task_id)
            served[run.task_id] = current.name if current else None
        if served[run.task_id] == run.file_key:
            report.kept_current.append(run.id)
            continue
        size = 0
        for name in (run.file_key, run.file_key + ".gz"):
            size += max(store.delete(run.task_id, name), 0)
        run.file_removed_at = moment
        run.log_line(f"File {run.file_key} removed by retention ({days} days, {size} bytes)")
        # One commit per run: an interrupted pass has still recorded what it removed.
        db.session.commit()
        report.removed_runs.append(run.id)
        report.removed_bytes += size
    report.removed_uploads = manual_import.purge_expired(days, moment)
    return report
