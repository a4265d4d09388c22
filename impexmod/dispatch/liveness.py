"""Liveness of runs: who executes a run, its heartbeat, and the sweeper of runs that died.

A run records the process executing it (``Run.worker``: host, pid and the process's start
time, so a reused pid is not taken for the same process) and, while it works, a heartbeat
thread refreshes ``Run.heartbeat_at``. A run is dead when its process is gone (known at once
on the same machine), when its RQ job failed or vanished, or when its heartbeat is older than
``RUN_STALE_SECONDS`` (another machine). The sweeper (every scheduler tick, at worker start,
and whenever a task is claimed) marks dead runs failed with the reason, frees their task,
removes their temporary files, starts them again per ``Task.max_retries``, and points feed URLs
at the newest succeeded file when a crash came between a run's commit and its publication.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import func, select, update

from impexmod.extensions import db
from impexmod.models import Run, RunStatus, Task, now
from impexmod.runs.feedstore import get_store

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- the process


def _start_ticks(pid: int) -> str:
    """When a process started (clock ticks since boot, /proc), "" where /proc has no answer."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    return stat.rsplit(")", 1)[1].split()[19]


def process_identity(pid: int | None = None) -> str:
    """``host:pid:start`` of this process (or of ``pid`` on this machine)."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}"


def process_gone(identity: str | None) -> bool | None:
    """True if the process named by ``identity`` no longer runs, False if it does, None if it
    runs on another machine (only its heartbeat tells)."""
    parts = (identity or "").rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    host, pid, started = parts
    if host != socket.gethostname():
        return None
    pid_number = int(pid)
    try:
        os.kill(pid_number, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # it exists, under another user
    now_started = _start_ticks(pid_number)
    if started and now_started and now_started != started:
        return True  # the pid was reused by another process
    if now_started and _is_zombie(pid_number):
        return True
    return False


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


# ---------------------------------------------------------------------------- the heartbeat


class Heartbeat:
    """A thread that refreshes a run's ``heartbeat_at`` while the block runs.

    It writes through its own connection, so it beats while the run's session is busy; it
    notices when the run was ended by someone else (the sweeper took it for dead) and says so
    in ``abandoned``, which the run checks before it publishes anything."""

    def __init__(self, run_id: int, interval: float | None = None):
        self.run_id = run_id
        self.interval = float(interval or current_app.config["HEARTBEAT_SECONDS"])
        self.engine = db.engine
        self.abandoned = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        self._thread = threading.Thread(
            target=self._beat, name=f"impexmod-heartbeat-{self.run_id}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.engine.begin() as conn:
                    alive = conn.execute(
                        update(Run)
                        .where(Run.id == self.run_id, Run.status.in_(RunStatus.active()))
                        .values(heartbeat_at=now())
                    ).rowcount
                if alive == 0:
                    self.abandoned.set()
                    return
            except Exception:  # a database restart: the next beat tries again
                log.warning("heartbeat of run %s failed; retrying", self.run_id, exc_info=True)


# ---------------------------------------------------------------------------- the sweeper


def _stale_before(moment: datetime) -> datetime:
    return moment - timedelta(seconds=int(current_app.config["RUN_STALE_SECONDS"]))


def death_of(run: Run, moment: datetime | None = None) -> str | None:
    """Why ``run`` is dead, or None while it may still be alive."""
    if run.status not in RunStatus.active():
        return None
    moment = moment or now()
    gone = process_gone(run.worker)
    if gone:
        host, pid, _ = run.worker.rsplit(":", 2)
        return f"its process (pid {pid} on {host}) is gone"
    if run.job_id and current_app.config.get("REDIS_URL"):
        job_fate = _job_fate(run.job_id)
        if job_fate is not None:
            return job_fate
        if run.status == RunStatus.QUEUED.value:
            return None  # waiting in the queue for a free worker, however long
    if gone is False:
        return None  # alive on this machine, whatever its heartbeat says
    last = run.heartbeat_at or run.started_at or run.queued_at
    if last is not None and last < _stale_before(moment):
        return f"it stopped answering (no heartbeat since {last.isoformat(timespec='seconds')} UTC)"
    return None


def _job_fate(job_id: str) -> str | None:
    """Why an RQ job can no longer run its run, or None while it is queued or working."""
    from redis import Redis
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        job = Job.fetch(job_id, connection=Redis.from_url(current_app.config["REDIS_URL"]))
    except NoSuchJobError:
        return "its job is no longer in the queue"
    status = job.get_status(refresh=False)
    if status in ("failed", "stopped", "canceled"):
        return f"its job was {status} by the worker"
    return None


def abandon(run_id: int, reason: str, retry: bool = True) -> Run | None:
    """Mark a run that died failed, free its task, remove its files and retry it per policy;
    the run, or None if it had already ended (another sweeper was first)."""
    moment = now()
    error = f"The run was abandoned: {reason}."
    won = db.session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status.in_(RunStatus.active()))
        .values(status=RunStatus.FAILED.value, error=error, ended_at=moment)
    ).rowcount
    db.session.commit()
    from impexmod.dispatch import jobs

    if won != 1:
        ended = db.session.get(Run, run_id)
        if ended is not None:  # it ended, but its process may have died before tidying up
            jobs.release_lock(ended.task_id, run_id)
            _remove_temporary_of(ended)
        return None
    run = db.session.get(Run, run_id)
    db.session.refresh(run)
    run.log_line(f"Failed: {error} The previous feed stays in place")
    db.session.commit()
    log.warning("run %s of task %s abandoned: %s", run.id, run.task_id, reason)
    jobs.release(run)
    get_store().remove_run_files(run.task_id, run.id)
    _remove_temporary_of(run)
    jobs.run_ended(run)
    if retry:
        _retry(run)
    return run


def _remove_temporary_of(run: Run) -> None:
    """Delete what an ended run was still writing (its feed, or the gzip twin of its feed)."""
    get_store().remove_temporary(lambda rid: rid != run.id, float("inf"), task_id=run.task_id)


def _retry(run: Run) -> None:
    task = db.session.get(Task, run.task_id)
    attempt = (run.attempt or 1) + 1
    if task is None or attempt > (task.max_retries or 0) + 1:
        return
    from impexmod.dispatch import jobs

    try:
        again = jobs.start_run(task, trigger="retry", attempt=attempt)
    except jobs.TaskBusy:
        db.session.rollback()
        return
    run.log_line(f"Started again as run {again.id} (attempt {attempt} of {task.max_retries + 1})")
    db.session.commit()


@dataclass
class SweepReport:
    """What one sweep found and did."""

    abandoned: list[int] = field(default_factory=list)
    temp_files: int = 0
    temp_bytes: int = 0
    repointed: list[int] = field(default_factory=list)  # tasks whose URL now serves a newer run
    released: list[int] = field(default_factory=list)  # tasks held by a run that had ended

    def __str__(self) -> str:
        return (
            f"abandoned runs {self.abandoned}, removed {self.temp_files} temporary file(s) "
            f"({self.temp_bytes} bytes), re-pointed feeds of tasks {self.repointed}, "
            f"released tasks {self.released}"
        )


def sweep(moment: datetime | None = None, files: bool = True) -> SweepReport:
    """End the runs that died; with ``files``, also remove the temporary files of runs that
    are over and repair feed pointers (a walk of the feed store)."""
    moment = moment or now()
    report = SweepReport()
    db.session.rollback()  # a fresh read (MariaDB's REPEATABLE READ snapshots)
    active = db.session.execute(
        select(Run).where(Run.status.in_(RunStatus.active())).order_by(Run.id)
    ).scalars()
    dead = [(run.id, reason) for run in active if (reason := death_of(run, moment))]
    db.session.rollback()
    for run_id, reason in dead:
        if abandon(run_id, reason) is not None:
            report.abandoned.append(run_id)
    report.released = _release_ended_holders()
    if not files:
        return report
    still = set(
        db.session.execute(select(Run.id).where(Run.status.in_(RunStatus.active()))).scalars()
    )
    db.session.rollback()
    store = get_store()
    report.temp_files, report.temp_bytes = store.remove_temporary(
        lambda run_id: run_id in still,
        older_than=float(current_app.config["RUN_STALE_SECONDS"]),
    )
    report.repointed = repair_pointers()
    return report


def _release_ended_holders() -> list[int]:
    """Free the tasks still held by a run that has ended (its process died after recording
    the end, before releasing); the tasks freed."""
    from impexmod.dispatch import jobs

    held = db.session.execute(
        select(Task.id, Task.lock_run_id)
        .join(Run, Run.id == Task.lock_run_id, isouter=True)
        .where(
            Task.lock_run_id.is_not(None),
            (Run.id.is_(None)) | (Run.status.not_in(RunStatus.active())),
        )
    ).all()
    db.session.rollback()
    for task_id, run_id in held:
        jobs.release_lock(task_id, run_id)
    return [task_id for task_id, _ in held]


def repair_pointers() -> list[int]:
    """Point each feed URL at its task's newest succeeded file when ``current.json`` names an
    older one (a crash between a run's commit and its publication); the tasks re-pointed."""
    store = get_store()
    newest = db.session.execute(
        select(Run.task_id, func.max(Run.id))
        .where(
            Run.status == RunStatus.SUCCEEDED.value,
            Run.file_key.is_not(None),
            Run.file_removed_at.is_(None),
        )
        .group_by(Run.task_id)
    ).all()
    repaired = []
    for task_id, run_id in newest:
        current = store.current(task_id)
        if current is not None and current.run_id >= run_id:
            continue
        run = db.session.get(Run, run_id)
        feed = store.placed(task_id, run_id, run.file_key)
        if feed is None:
            continue
        store.point(feed, by_run=False)
        run.log_line("Published by the sweeper: the run had ended before its feed URL switched")
        db.session.commit()
        repaired.append(task_id)
    db.session.rollback()
    return repaired
