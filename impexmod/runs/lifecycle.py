"""One task lifecycle: a run of any kind starts, works, ends and is fenced the same way.

Each kind of task registers the pipeline its runs go through (``register``: the export pipeline
in impexmod.export.runner, the import one in impexmod.importing.runs); impexmod.dispatch.jobs
claims the task, keeps the heartbeat, calls ``perform`` and releases the task, never knowing
which pipeline ran. ``perform`` marks the run running, lets the pipeline work, then records its
end only if the run is still running (a conditional UPDATE): a run the sweeper
(impexmod.dispatch.liveness) took for dead meanwhile keeps the sweeper's verdict, and never
publishes. A failure is recorded on the run, never raised into the worker loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from flask import current_app
from sqlalchemy import update

from impexmod.extensions import db
from impexmod.models import Run, RunStatus, Task, TaskKind, now


class Pipeline(Protocol):
    """What a kind of task does in its runs; ``perform`` does the rest."""

    # Names its runs in the log ("import run 3 ..."); "" for a plain "run 3".
    label: str

    def begin(self, run: Run, task: Task) -> str:
        """Prepare the run as it starts; return its first log line."""

    def work(self, run: Run, task: Task) -> tuple[RunStatus, Any]:
        """Do the run's work, committing progress as it goes, and return how it ended with
        what ``publish`` needs; raise on failure."""

    def closing(self, run: Run, status: RunStatus) -> None:
        """Log what the run says as its end is recorded (its duration is known)."""

    def publish(self, run: Run, task: Task, outcome: Any) -> None:
        """Make a succeeded run's result visible, once its success is committed."""

    def discard(self, run: Run, task: Task) -> None:
        """Remove what a run that will not succeed left behind."""

    def failure_note(self) -> str:
        """What the log adds to a failure's message ("; the previous feed stays in place")."""

    def file_ext(self, task: Task) -> str:
        """The extension of the task's feed file, hence of its feed URL (``xml``, ``csv``...)."""


class TaskBusy(RuntimeError):
    """The task already has a run queued or running."""


class Starter(Protocol):
    """How runs are started and awaited: impexmod.dispatch.jobs registers its own (queued on RQ,
    or in this process without Redis)."""

    def start_run(self, task: Task, trigger: str = "manual", inline: bool = False) -> Run:
        """Queue a run of ``task`` (raise TaskBusy if one is already queued or running)."""

    def wait(self, run: Run, timeout: float | None = None) -> Run:
        """Wait until the run has ended and return it reloaded (TimeoutError past ``timeout``)."""

    def queues_parts(self) -> bool:
        """Whether other workers can take parts of a run (runs go to a queue)."""

    def enqueue_parts(self, run: Run, numbers: Iterable[int]) -> None:
        """Queue the jobs that write parts ``numbers`` of the run (impexmod.export.parts)."""


_PIPELINES: dict[TaskKind, Pipeline] = {}
_STARTERS: list[Starter] = []


def register(pipeline: Pipeline, *kinds: TaskKind) -> None:
    """Make runs of tasks of ``kinds`` go through ``pipeline``."""
    for kind in kinds:
        _PIPELINES[TaskKind(kind)] = pipeline


def pipeline_of(task: Task) -> Pipeline:
    """The pipeline registered for the task's kind (LookupError if none is)."""
    try:
        return _PIPELINES[TaskKind(task.kind)]
    except (KeyError, ValueError):
        raise LookupError(f"no pipeline runs tasks of kind {task.kind!r}") from None


def register_starter(starter: Starter) -> None:
    """Make ``start`` start runs through ``starter`` (the app factory registers dispatch's)."""
    _STARTERS[:] = [starter]


def start(task: Task, trigger: str = "manual", wait_seconds: float | None = None) -> Run:
    """Start a run of ``task``; with ``wait_seconds``, run it in this process when there is no
    queue, or wait that long for a worker to end it (it goes on behind if it takes longer)."""
    if not _STARTERS:
        raise LookupError("no starter registered: runs are started by impexmod.dispatch")
    starter = _STARTERS[0]
    run = starter.start_run(task, trigger=trigger, inline=wait_seconds is not None)
    if wait_seconds is not None and run.status in RunStatus.active():
        try:
            run = starter.wait(run, timeout=wait_seconds)
        except TimeoutError:
            pass
    return run


def queues_parts() -> bool:
    """Whether a run's parts can go to other workers (a queue is configured)."""
    return bool(_STARTERS) and _STARTERS[0].queues_parts()


def enqueue_parts(run: Run, numbers: Iterable[int]) -> None:
    """Queue jobs for parts ``numbers`` of ``run``, for any free worker to take."""
    _STARTERS[0].enqueue_parts(run, numbers)


# Told each run's counts as they are committed (``watching``): the CLI's progress meters.
_WATCHERS: list[Callable[[Run], None]] = []


@contextmanager
def watching(callback: Callable[[Run], None]) -> Iterator[None]:
    """Call ``callback(run)`` after each progress commit of a run in this process, meanwhile."""
    _WATCHERS.append(callback)
    try:
        yield
    finally:
        _WATCHERS.remove(callback)


class Progress:
    """Saves a run's counts as it goes, with its heartbeat, so the panel and the CLI follow it."""

    def __init__(self, run: Run):
        self.run = run

    def start(self, total: int) -> None:
        """Record the number of entities the run will go through."""
        self.run.total = total
        self._save()

    def advance(self, done: int, written: int, deleted: int) -> None:
        """Add one chunk's counts."""
        self.run.done += done
        self.run.entity_count += written
        self.run.deleted_count += deleted
        self._save()

    def tally(self, done: int, written: int, deleted: int) -> None:
        """Record the counts so far (the sums of a run's parts)."""
        self.run.done, self.run.entity_count, self.run.deleted_count = done, written, deleted
        self._save()

    def at(self, done: int, total: int) -> None:
        """Record how far the run is through what it reads."""
        self.run.done, self.run.total = done, total
        self._save()

    def _save(self) -> None:
        self.run.heartbeat_at = now()
        db.session.commit()
        for watcher in list(_WATCHERS):
            try:
                watcher(self.run)
            except Exception:  # a closed terminal must not fail the run
                current_app.logger.warning("a progress watcher failed", exc_info=True)


def record_end(run: Run, status: RunStatus, started: float, pipeline: Pipeline) -> bool:
    """Record that the run ended with ``status``, only if it is still running: False (and
    nothing recorded) if the sweeper ended it meanwhile."""
    run.ended_at = now()
    run.duration = round(time.monotonic() - started, 3)
    pipeline.closing(run, status)
    db.session.flush()
    won = db.session.execute(
        update(Run)
        .where(Run.id == run.id, Run.status == RunStatus.RUNNING.value)
        .values(status=status.value)
    ).rowcount
    if won != 1:
        db.session.rollback()
        return False
    db.session.commit()
    db.session.expire(run, ["status"])
    return True


def _begin(run_id: int) -> tuple[Run, Task, Pipeline]:
    run = db.session.get(Run, run_id)
    if run is None:
        raise LookupError(f"run {run_id} does not exist")
    task = db.session.get(Task, run.task_id)
    pipeline = pipeline_of(task)
    run.status = RunStatus.RUNNING.value
    run.started_at = run.heartbeat_at = now()
    run.log_line(pipeline.begin(run, task))
    db.session.commit()
    return run, task, pipeline


def _abandoned(run_id: int, pipeline: Pipeline) -> Run:
    current_app.logger.warning(
        "%srun %s was abandoned while it ran; nothing published", pipeline.label, run_id
    )
    return db.session.get(Run, run_id)


def _failed(run_id: int, task: Task, exc: Exception, started: float, pipeline: Pipeline) -> Run:
    db.session.rollback()
    run = db.session.get(Run, run_id)
    if run.status == RunStatus.SUCCEEDED.value:  # it failed after its success was recorded
        current_app.logger.exception("%srun %s failed once published", pipeline.label, run_id)
        return run
    current_app.logger.exception("%srun %s of task %s failed", pipeline.label, run_id, task.id)
    run.error = f"{type(exc).__name__}: {exc}"[:2000]
    run.log_line(f"Failed: {run.error[:500]}{pipeline.failure_note()}")
    pipeline.discard(run, task)
    if not record_end(run, RunStatus.FAILED, started, pipeline):
        return _abandoned(run_id, pipeline)
    return run


def follow_up(run: Run) -> str | None:
    """The trigger of a run to start again once ``run`` has released its task, when work came
    in that its last look missed (flags set, events pushed as it ended: their own start found
    the task busy); None when there is none. Only after a success, so a failing run never
    restarts itself in a loop."""
    if run.status != RunStatus.SUCCEEDED.value:
        return None
    task = db.session.get(Task, run.task_id)
    if task is None:
        return None
    check = getattr(pipeline_of(task), "follow_up", None)
    return check(run, task) if check else None


def perform(run_id: int) -> Run:
    """Execute a queued run to its end through its kind's pipeline, recording success or
    failure on the run (the sweeper's verdict, if it ended the run meanwhile)."""
    run, task, pipeline = _begin(run_id)
    started = time.monotonic()
    try:
        status, outcome = pipeline.work(run, task)
        if not record_end(run, status, started, pipeline):
            pipeline.discard(run, task)
            return _abandoned(run_id, pipeline)
        if status == RunStatus.SUCCEEDED:
            pipeline.publish(run, task, outcome)
    except Exception as exc:  # a failed run is recorded, never raised into the worker loop
        return _failed(run_id, task, exc, started, pipeline)
    return run
