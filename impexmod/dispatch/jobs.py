"""Starting runs: through RQ when a Redis URL is configured, in-process otherwise.

A task never runs twice at once: starting a run claims the task (``task.lock_run_id``) with a
conditional UPDATE, and the run releases it when it ends; a run that died is ended by
impexmod.dispatch.liveness, which frees its task. Jobs carry run ids and the instance's identity
(its shop id), never objects: a worker refuses a job of another instance sharing its Redis.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime

from flask import Flask, current_app
from sqlalchemy import update

from impexmod.dispatch import liveness
from impexmod.extensions import db
from impexmod.models import Run, RunStatus, Task, now
from impexmod.models.tasks import RunTrigger
from impexmod.runs import lifecycle
from impexmod.runs.lifecycle import TaskBusy

# What may start a run: a person (CLI, panel), the scheduler, or the end of an upstream task.
TRIGGERS = tuple(t.value for t in RunTrigger)


# What a worker process calls, by name: the worker's entry points build the app they run in
# (impexmod.cli.worker), then call ``execute`` and ``job_failed`` below.
JOB_FUNCTION = "impexmod.cli.worker.run_job"
FAILURE_CALLBACK = "impexmod.cli.worker.job_failed"
PART_FUNCTION = "impexmod.cli.worker.run_part"
PART_FAILURE_CALLBACK = "impexmod.cli.worker.part_failed"


class ForeignJob(RuntimeError):
    """An RQ job of another impexmod instance (another shop sharing the Redis)."""


def _redis():
    from redis import Redis

    return Redis.from_url(current_app.config["REDIS_URL"])


def queue_name() -> str:
    """This instance's RQ queue: ``QUEUE_NAME``, else one named after the shop id."""
    return current_app.config.get("QUEUE_NAME") or f"impexmod-{current_app.config['SHOP_ID']}"


def job_id(what: str) -> str:
    """A new RQ job id naming the shop and ``what`` it does; unique, for a database restored
    (or reset) reuses run ids while Redis still holds the results of their old jobs."""
    return f"impexmod-{current_app.config['SHOP_ID']}-{what}-{uuid.uuid4().hex[:12]}"


def queue():
    """The RQ queue runs go to."""
    from rq import Queue

    return Queue(queue_name(), connection=_redis())


def _free_dead_holder(task: Task) -> None:
    """End the run holding ``task`` if it died (impexmod.dispatch.liveness), so the task is free."""
    if task.lock_run_id is None:
        return
    holder = db.session.get(Run, task.lock_run_id)
    if holder is None or holder.status not in RunStatus.active():
        release_lock(task.id, task.lock_run_id)  # ended without releasing: a crash in between
        return
    reason = liveness.death_of(holder)
    if reason is not None:
        db.session.rollback()
        liveness.abandon(holder.id, reason, retry=False)
    db.session.refresh(task)


def _claim(task: Task, run: Run) -> bool:
    """Make ``run`` the task's only active run; False if another one holds it."""
    claim = update(Task).where(Task.id == task.id, Task.lock_run_id.is_(None))
    return db.session.execute(claim.values(lock_run_id=run.id)).rowcount == 1


def release_lock(task_id: int, run_id: int) -> None:
    """Free ``task_id`` if ``run_id`` holds it."""
    db.session.execute(
        update(Task).where(Task.id == task_id, Task.lock_run_id == run_id).values(lock_run_id=None)
    )
    db.session.commit()


def release(run: Run) -> None:
    """Free the task that ``run`` held."""
    release_lock(run.task_id, run.id)


def start_run(
    task: Task,
    trigger: str = "manual",
    inline: bool = False,
    scheduled_for: datetime | None = None,
    attempt: int = 1,
) -> Run:
    """Queue a run of ``task``. Without Redis it runs in this process: now if ``inline``
    (CLI), else in a background thread (web). Raises TaskBusy if the task is already running."""
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown trigger {trigger!r}; one of {', '.join(TRIGGERS)}")
    _free_dead_holder(task)
    run = Run(
        task_id=task.id,
        status=RunStatus.QUEUED.value,
        trigger=trigger,
        queued_at=now(),
        scheduled_for=scheduled_for,
        attempt=attempt,
        # In-process runs belong to this process from the start: if it dies before the run
        # starts, the run is known dead at once. RQ's work horse names itself when it starts.
        worker=None if current_app.config.get("REDIS_URL") else liveness.process_identity(),
    )
    run.log_line(f"Queued ({trigger}, attempt {attempt})" if attempt > 1 else f"Queued ({trigger})")
    db.session.add(run)
    db.session.flush()
    if not _claim(task, run):
        db.session.rollback()
        raise TaskBusy(f"task {task.id} ({task.name}) already has a run queued or running")
    db.session.commit()
    if current_app.config.get("REDIS_URL"):
        from rq import Callback

        shop = current_app.config["SHOP_ID"]
        job = queue().enqueue_call(
            JOB_FUNCTION,
            args=(run.id,),
            kwargs={"instance": shop},
            job_id=job_id(f"run-{run.id}"),
            timeout=int(current_app.config.get("RUN_TIMEOUT", 6 * 3600)),
            result_ttl=24 * 3600,
            failure_ttl=7 * 24 * 3600,
            on_failure=Callback(FAILURE_CALLBACK),
        )
        run.job_id = job.id
        db.session.commit()
    elif inline:
        run_id = run.id
        execute(run_id)
        run = db.session.get(Run, run_id)
    else:
        app = current_app._get_current_object()
        threading.Thread(
            target=_in_thread, args=(app, run.id), name=f"{RUN_THREAD}{run.id}", daemon=True
        ).start()
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


# The name prefix of the threads that perform runs when no Redis is configured (so a caller
# that ends the app, such as a test, can wait for them to give their connections back).
RUN_THREAD = "impexmod-run-"


def _in_thread(app: Flask, run_id: int) -> None:
    with app.app_context():
        try:
            execute(run_id)
        finally:
            db.session.remove()


def _enter_job(what: str, instance: str | None) -> None:
    """Refuse a job of another instance; in a forked work horse, drop the inherited pool."""
    if instance is not None and instance != current_app.config["SHOP_ID"]:
        # Another shop's job, through a Redis and queue name both instances were given: its
        # run id means nothing here, so nothing of this shop is touched.
        message = (
            f"refused {what} of instance {instance!r}: this worker serves "
            f"{current_app.config['SHOP_ID']!r} (two instances share queue {queue_name()!r})"
        )
        current_app.logger.error(message)
        raise ForeignJob(message)
    from rq import get_current_job

    if get_current_job() is not None:
        # A forked work horse must not reuse the connections of the worker it was forked from.
        db.engine.dispose(close=False)


def execute(run_id: int, instance: str | None = None) -> str:
    """Run a queued run, in the app's context; returns its final status."""
    _enter_job(f"run {run_id}", instance)
    took = db.session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status == RunStatus.QUEUED.value)
        .values(worker=liveness.process_identity(), heartbeat_at=now())
    ).rowcount
    db.session.commit()
    if took != 1:  # ended meanwhile (abandoned by the sweeper, or a duplicate delivery)
        run = db.session.get(Run, run_id)
        return run.status if run is not None else "missing"
    # The pipeline of the task's kind (registered by impexmod.export.runner and
    # impexmod.importing.runs) works; the lifecycle records the run's end.
    with liveness.Heartbeat(run_id):
        run = lifecycle.perform(run_id)
    release(run)
    status = run.status
    _follow_up(run)
    run_ended(run)
    if status == RunStatus.SUCCEEDED.value:
        deliver(run)
    return status


def _follow_up(run: Run) -> None:
    """Start the task again if work arrived while its run was ending (lifecycle.follow_up)."""
    try:
        trigger = lifecycle.follow_up(run)
        if trigger:
            task = db.session.get(Task, run.task_id)
            start_run(task, trigger=trigger)
    except TaskBusy:
        db.session.rollback()  # another start got there first: it takes the work
    except Exception:
        db.session.rollback()
        current_app.logger.exception("the follow-up of run %s was not started", run.id)


def queues_parts() -> bool:
    """Whether parts of a run can go to other workers: only through RQ (a Redis URL)."""
    return bool(current_app.config.get("REDIS_URL"))


def enqueue_parts(run: Run, numbers) -> None:
    """Queue one job per part of ``run`` (impexmod.export.parts), for any free worker."""
    from rq import Callback

    shop = current_app.config["SHOP_ID"]
    q = queue()
    for number in numbers:
        q.enqueue_call(
            PART_FUNCTION,
            args=(run.id, number),
            kwargs={"instance": shop},
            job_id=job_id(f"run-{run.id}-part-{number}"),
            timeout=int(current_app.config.get("RUN_TIMEOUT", 6 * 3600)),
            result_ttl=3600,
            failure_ttl=24 * 3600,
            on_failure=Callback(PART_FAILURE_CALLBACK),
        )


def execute_part(run_id: int, number: int, instance: str | None = None) -> str:
    """Write part ``number`` of a run unless its run (or another worker) already has."""
    _enter_job(f"part {number} of run {run_id}", instance)
    from impexmod.export import parts

    return parts.work_part(run_id, number)


def part_failed(job, connection, exc_type=None, exc_value=None, traceback=None) -> None:
    """RQ's failure callback of a part's job (and a killed work horse's): the part failed
    without its process saying so; mark it failed, which fails its run."""
    if (job.kwargs or {}).get("instance") != current_app.config["SHOP_ID"]:
        return
    if exc_type is ForeignJob or len(job.args or ()) != 2:
        return
    from impexmod.export import parts

    db.session.rollback()
    reason = "its worker process was killed" if exc_type is None else exc_type.__name__
    parts.fail_part(*job.args, reason=f"its job failed in the worker ({reason})")
    db.session.remove()


def job_failed(job, connection, exc_type=None, exc_value=None, traceback=None) -> None:
    """RQ's failure callback, and the worker's handler of a killed work horse: the run of the
    job ended without its process saying so; mark it failed now rather than at the next sweep."""
    instance = (job.kwargs or {}).get("instance")
    if instance != current_app.config["SHOP_ID"] or exc_type is ForeignJob:
        return  # not this instance's run
    run_id = job.args[0] if job.args else None
    if not isinstance(run_id, int):
        return
    if exc_type is None:
        reason = "its worker process was killed"
    else:
        reason = f"its job failed in the worker ({exc_type.__name__})"
    db.session.rollback()
    liveness.abandon(run_id, reason)
    db.session.remove()


def run_ended(run: Run) -> None:
    """Tell whoever asked (notifications); nothing here may fail the run, which has ended."""
    run_id = run.id
    try:
        from impexmod.dispatch import notify

        notify.run_ended(run)
    except Exception:
        db.session.rollback()
        current_app.logger.exception("notifications for run %s failed", run_id)


def deliver(run: Run) -> None:
    """Deliver a succeeded run to its exporter's destinations (impexmod.dispatch.deliveries);
    nothing here may fail the run, which has succeeded."""
    run_id = run.id
    try:
        from impexmod.dispatch import deliveries

        deliveries.run_succeeded(run)
    except Exception:
        db.session.rollback()
        current_app.logger.exception("deliveries of run %s failed", run_id)


def wait(
    run: Run,
    timeout: float | None = None,
    poll: float = 0.3,
    on_poll: Callable[[Run], None] | None = None,
) -> Run:
    """Wait until a run has ended (or its RQ job died) and return it, reloaded; ``on_poll``
    is given the run as each poll reads it (a CLI's progress)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    run_id = run.id
    while True:
        # End the read transaction: under REPEATABLE READ (MariaDB) a poll inside one
        # transaction would keep seeing the snapshot of its first read.
        db.session.rollback()
        run = db.session.get(Run, run_id)
        if run.status not in RunStatus.active():
            return run
        reason = liveness.death_of(run)
        if reason is not None:  # its worker died: say so now, not after the sweeper's delay
            db.session.rollback()
            liveness.abandon(run_id, reason)
            continue
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} still {run.status} after {timeout} s")
        if on_poll is not None:
            on_poll(run)
        time.sleep(poll)


def register() -> None:
    """Make ``lifecycle.start`` start runs here (the app factory calls it)."""
    lifecycle.register_starter(sys.modules[__name__])
