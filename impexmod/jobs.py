"""Starting runs: through RQ when a Redis URL is configured, in-process otherwise.

A task never runs twice at once: starting a run claims the task (``task.lock_run_id``) with a
conditional UPDATE, and the run releases it when it ends. Jobs carry run ids, never objects.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

from flask import Flask, current_app, has_app_context
from sqlalchemy import or_, update

from impexmod.extensions import db
from impexmod.models import Run, RunStatus, Task, now
from impexmod.models.tasks import RunTrigger

# What may start a run: a person (CLI, panel), the scheduler, or the end of an upstream task.
TRIGGERS = tuple(t.value for t in RunTrigger)
# Tasks whose runs import: recurring importers and the panel's uploads (impexmod.manual_import).
IMPORT_KINDS = ("import", "upload")


class TaskBusy(RuntimeError):
    """The task already has a run queued or running."""


def _redis():
    from redis import Redis

    return Redis.from_url(current_app.config["REDIS_URL"])


def queue():
    """The RQ queue runs go to."""
    from rq import Queue

    return Queue(current_app.config["QUEUE_NAME"], connection=_redis())


def _holder_is_dead(holder: Run | None) -> bool:
    if holder is None or holder.status not in RunStatus.active():
        return True
    stale = now() - timedelta(seconds=int(current_app.config["RUN_STALE_SECONDS"]))
    last_sign = holder.heartbeat_at or holder.queued_at
    return last_sign < stale


def _claim(task: Task, run: Run) -> bool:
    """Make ``run`` the task's only active run; False if another one holds it."""
    claim = update(Task).where(Task.id == task.id, Task.lock_run_id.is_(None))
    if db.session.execute(claim.values(lock_run_id=run.id)).rowcount == 1:
        return True
    db.session.refresh(task)
    holder = db.session.get(Run, task.lock_run_id) if task.lock_run_id else None
    if not _holder_is_dead(holder):
        return False
    if holder is not None and holder.status in RunStatus.active():
        holder.status = RunStatus.FAILED.value
        holder.error = "The run stopped answering (its worker was lost); it was abandoned."
        holder.ended_at = now()
    taken = db.session.execute(
        update(Task)
        .where(
            Task.id == task.id,
            or_(Task.lock_run_id == task.lock_run_id, Task.lock_run_id.is_(None)),
        )
        .values(lock_run_id=run.id)
    ).rowcount
    return taken == 1


def release(run: Run) -> None:
    """Free the task that ``run`` held."""
    db.session.execute(
        update(Task)
        .where(Task.id == run.task_id, Task.lock_run_id == run.id)
        .values(lock_run_id=None)
    )
    db.session.commit()


def start_run(
    task: Task,
    trigger: str = "manual",
    inline: bool = False,
    scheduled_for: datetime | None = None,
) -> Run:
    """Queue a run of ``task``. Without Redis it runs in this process: now if ``inline``
    (CLI), else in a background thread (web). Raises TaskBusy if the task is already running."""
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown trigger {trigger!r}; one of {', '.join(TRIGGERS)}")
    run = Run(
        task_id=task.id,
        status=RunStatus.QUEUED.value,
        trigger=trigger,
        queued_at=now(),
        scheduled_for=scheduled_for,
    )
    run.log_line(f"Queued ({trigger})")
    db.session.add(run)
    db.session.flush()
    if not _claim(task, run):
        db.session.rollback()
        raise TaskBusy(f"task {task.id} ({task.name}) already has a run queued or running")
    db.session.commit()
    if current_app.config.get("REDIS_URL"):
        job = queue().enqueue_call(
            "impexmod.jobs.execute",
            args=(run.id,),
            job_id=f"impexmod-run-{run.id}",
            timeout=int(current_app.config.get("RUN_TIMEOUT", 6 * 3600)),
            result_ttl=24 * 3600,
            failure_ttl=7 * 24 * 3600,
        )
        run.job_id = job.id
        db.session.commit()
    elif inline:
        run_id = run.id
        execute(run_id)
        run = db.session.get(Run, run_id)
    else:
        app = current_app._get_current_object()
        threading.Thread(target=_in_thread, args=(app, run.id), daemon=True).start()
    return run


def record_skip(
    task: Task, reason: str, trigger: str = "schedule", scheduled_for: datetime | None = None
) -> Run:
    """Record that a run of ``task`` was not started, and why (it shows in the run history)."""
    moment = now()
    run = Run(
        task_id=task.id,
        status=RunStatus.SKIPPED.value,
        trigger=trigger,
        queued_at=moment,
        ended_at=moment,
        scheduled_for=scheduled_for,
        reason=reason[:255],
    )
    run.log_line(f"Skipped: {reason}")
    db.session.add(run)
    db.session.commit()
    return run


def _in_thread(app: Flask, run_id: int) -> None:
    with app.app_context():
        try:
            execute(run_id)
        finally:
            db.session.remove()


def execute(run_id: int) -> str:
    """Run a queued run (the RQ job function); returns its final status."""
    if not has_app_context():
        from impexmod import create_app

        with create_app().app_context():
            return execute(run_id)
    from rq import get_current_job

    if get_current_job() is not None:
        # A forked work horse must not reuse the connections of the worker it was forked from.
        db.engine.dispose(close=False)
    run = db.session.get(Run, run_id)
    task = db.session.get(Task, run.task_id) if run is not None else None
    # An importer's run imports, and so does a file uploaded in the panel; other tasks export.
    if task is not None and task.kind in IMPORT_KINDS:
        from impexmod.importing.runs import perform
    else:
        from impexmod.export.runner import perform

    run = perform(run_id)
    release(run)
    status = run.status
    _run_ended(run)
    return status


def _run_ended(run: Run) -> None:
    """Tell whoever asked (notifications); nothing here may fail the run, which has ended."""
    run_id = run.id
    try:
        from impexmod import notify

        notify.run_ended(run)
    except Exception:
        db.session.rollback()
        current_app.logger.exception("notifications for run %s failed", run_id)


def wait(run: Run, timeout: float | None = None, poll: float = 0.3) -> Run:
    """Wait until a run has ended (or its RQ job died) and return it, reloaded."""
    deadline = None if timeout is None else time.monotonic() + timeout
    run_id = run.id
    while True:
        # End the read transaction: under REPEATABLE READ (MariaDB) a poll inside one
        # transaction would keep seeing the snapshot of its first read.
        db.session.rollback()
        run = db.session.get(Run, run_id)
        if run.status not in RunStatus.active():
            return run
        if run.job_id and current_app.config.get("REDIS_URL"):
            _fail_if_job_died(run)
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} still {run.status} after {timeout} s")
        time.sleep(poll)


def _fail_if_job_died(run: Run) -> None:
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        job = Job.fetch(run.job_id, connection=_redis())
    except NoSuchJobError:
        return
    if job.get_status() in ("failed", "stopped", "canceled"):
        db.session.refresh(run)
        if run.status in RunStatus.active():
            run.status = RunStatus.FAILED.value
            run.error = "The worker stopped before the run ended."
            run.ended_at = now()
            run.log_line("Failed: the worker stopped before the run ended")
            db.session.commit()
            release(run)
            _run_ended(run)
