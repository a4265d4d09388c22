"""The scheduler: starts each task's run when its slot comes, once, whoever else is looking.

Every task with a schedule keeps its next slot in ``task.next_run_at``. A tick takes the due
tasks and, for each, claims the slot with a conditional UPDATE that moves ``next_run_at`` to the
first slot after *now*, only if it still holds the slot that was read. Only one scheduler can
win that UPDATE, so two schedulers never start the same slot twice; and since the new value is
computed from now rather than from the old slot, a scheduler that was down for days runs each
missed task once, not once per missed slot. A task whose previous run is still going is not
started: the skip is recorded as a run with status ``skipped`` and a reason.

A tick first ends the runs whose process died (impexmod.dispatch.liveness), so their tasks'
slots are not skipped; it also retries due notification and feed deliveries
(impexmod.dispatch.deliveries) and runs its chores: the daily retention, and a sweep of the
feed store's temporary files and pointers every few minutes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import Flask, current_app
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select, update

from impexmod.dispatch import deliveries, jobs, liveness, notify, retention
from impexmod.extensions import db
from impexmod.models import Run, SchedulerChore, Task, now
from impexmod.runs.schedule import InvalidSchedule
from impexmod.runs.slots import next_slot

log = logging.getLogger("impexmod.scheduler")

# Chores of the scheduler itself: name -> (every, function of the tick's time).
CHORES: dict[str, tuple[timedelta, Callable[[datetime], object]]] = {
    "retention": (timedelta(days=1), lambda moment: retention.purge_run_files(moment)),
    "sweep-files": (timedelta(minutes=5), lambda moment: liveness.sweep(moment)),
}


@dataclass
class TickReport:
    """What one tick did."""

    started: list[int] = field(default_factory=list)  # run ids
    skipped: list[int] = field(default_factory=list)  # ids of the runs recording a skip
    lost: list[int] = field(default_factory=list)  # task ids whose slot another scheduler took
    deliveries: int = 0  # notification deliveries attempted
    feed_deliveries: int = 0  # feed deliveries to destinations retried
    chores: list[str] = field(default_factory=list)
    abandoned: list[int] = field(default_factory=list)  # runs found dead and ended


class Scheduler:
    """Starts due runs; ``start`` is jobs.start_run unless a test passes another."""

    def __init__(self, start: Callable[..., Run] | None = None):
        self.start = start or jobs.start_run
        self.last_tick: datetime | None = None

    def due(self, moment: datetime) -> list[tuple[int, datetime]]:
        """(task id, slot) of every task whose slot has come, oldest slot first."""
        rows = db.session.execute(
            select(Task.id, Task.next_run_at)
            .where(Task.next_run_at.is_not(None), Task.next_run_at <= moment)
            .order_by(Task.next_run_at, Task.id)
        ).all()
        return [(task_id, slot) for task_id, slot in rows]

    def plan_unplanned(self, moment: datetime) -> None:
        """Give a first slot to scheduled tasks that have none (set behind the services' back)."""
        rows = db.session.execute(
            select(Task.id).where(Task.next_run_at.is_(None), Task.schedule != "none")
        ).all()
        planned = []
        for (task_id,) in rows:
            task = db.session.get(Task, task_id)
            try:
                planned.append((task_id, next_slot(task, moment)))
            except InvalidSchedule as exc:
                log.warning("task %s has a bad schedule %r: %s", task_id, task.schedule, exc)
        db.session.rollback()
        for task_id, slot in planned:
            db.session.execute(
                update(Task)
                .where(Task.id == task_id, Task.next_run_at.is_(None))
                .values(next_run_at=slot)
            )
            db.session.commit()

    def claim(self, task: Task, slot: datetime, moment: datetime) -> bool:
        """Move the task past ``slot`` if no one else did; True if this scheduler won it."""
        task_id, scheduled = task.id, task.schedule not in (None, "none")
        try:
            following = next_slot(task, moment)
        except InvalidSchedule as exc:
            # A schedule broken behind the services' back: stop scheduling it, say why.
            log.warning("task %s: bad schedule %r (%s); unscheduled", task_id, task.schedule, exc)
            following, scheduled = None, False
        db.session.rollback()  # the claim starts its own transaction, on fresh data
        won = db.session.execute(
            update(Task)
            .where(Task.id == task_id, Task.next_run_at == slot)
            .values(next_run_at=following)
        ).rowcount
        db.session.commit()
        return won == 1 and scheduled

    def fire(self, task_id: int, slot: datetime, moment: datetime, report: TickReport) -> None:
        """Claim a due slot and start its run, or record why it was skipped."""
        task = db.session.get(Task, task_id)
        if task is None:
            return
        if not self.claim(task, slot, moment):
            report.lost.append(task_id)
            return
        task = db.session.get(Task, task_id)
        try:
            run = self.start(task, trigger="schedule", scheduled_for=slot)
        except jobs.TaskBusy:
            db.session.rollback()
            task = db.session.get(Task, task_id)
            holder = db.session.get(Run, task.lock_run_id) if task.lock_run_id else None
            reason = (
                f"run {holder.id} was still {holder.status}"
                if holder
                else "the previous run was still going"
            )
            db.session.rollback()
            task = db.session.get(Task, task_id)
            skip = jobs.record_skip(task, reason, trigger="schedule", scheduled_for=slot)
            report.skipped.append(skip.id)
            log.info("task %s slot %s skipped: %s", task_id, slot, reason)
            return
        report.started.append(run.id)
        log.info("task %s slot %s: run %s %s", task_id, slot, run.id, run.status)

    def run_chores(self, moment: datetime, report: TickReport) -> None:
        """Run each chore whose time has come, claimed like a task slot."""
        for name, (every, work) in CHORES.items():
            chore = db.session.get(SchedulerChore, name)
            if chore is None:
                db.session.rollback()
                try:
                    db.session.add(SchedulerChore(name=name, next_run_at=moment))
                    db.session.commit()
                except sa_exc.IntegrityError:
                    db.session.rollback()  # another scheduler created it first
                chore = db.session.get(SchedulerChore, name)
            if chore.next_run_at > moment:
                continue
            due_at = chore.next_run_at
            db.session.rollback()
            won = db.session.execute(
                update(SchedulerChore)
                .where(SchedulerChore.name == name, SchedulerChore.next_run_at == due_at)
                .values(next_run_at=moment + every, last_run_at=moment)
            ).rowcount
            db.session.commit()
            if won != 1:
                continue
            result = work(moment)
            db.session.execute(
                update(SchedulerChore)
                .where(SchedulerChore.name == name)
                .values(last_result=str(result)[:2000])
            )
            db.session.commit()
            report.chores.append(name)

    def tick(self, moment: datetime | None = None) -> TickReport:
        """Start what is due at ``moment`` (default: now), retry deliveries, run chores."""
        moment = (moment or now()).replace(microsecond=0)
        self.last_tick = moment
        report = TickReport()
        try:
            report.abandoned = liveness.sweep(files=False).abandoned
        except Exception:  # the sweep must not keep due tasks from starting
            db.session.rollback()
            log.exception("sweeping dead runs failed")
        self.plan_unplanned(moment)
        due = self.due(moment)
        # End the read: each claim must start a fresh transaction (see notify.deliver_due).
        db.session.rollback()
        for task_id, slot in due:
            try:
                self.fire(task_id, slot, moment, report)
            except Exception:  # one broken task must not stop the others
                db.session.rollback()
                log.exception("task %s: could not start its run for %s", task_id, slot)
        report.deliveries = notify.deliver_due(moment)
        try:
            report.feed_deliveries = deliveries.retry_due(moment)
        except Exception:  # a broken destination must not stop the chores
            db.session.rollback()
            log.exception("retrying feed deliveries failed")
        self.run_chores(moment, report)
        return report

    def seconds_to_next(self, interval: float) -> float:
        """How long to sleep: the interval, or less if a slot comes sooner."""
        soonest = db.session.execute(select(func.min(Task.next_run_at))).scalar()
        db.session.rollback()
        if soonest is None:
            return interval
        if self.last_tick is not None and soonest <= self.last_tick:
            # Due at the last tick and still there: its start failed (and was logged).
            return interval
        # Wake a little after the slot so that now() has reached it.
        wait = (soonest - now()).total_seconds() + 0.2
        return max(0.2, min(interval, wait))

    def run_forever(self, stop: threading.Event, interval: float | None = None) -> None:
        """Tick until ``stop`` is set; errors (a database restart) are logged and retried."""
        interval = float(interval or current_app.config.get("SCHEDULER_INTERVAL", 15))
        log.info("scheduler started (every %s s at most)", interval)
        while not stop.is_set():
            pause = interval
            try:
                report = self.tick()
                if report.started or report.skipped or report.chores:
                    log.info(
                        "started runs %s, skipped %s, chores %s",
                        report.started,
                        report.skipped,
                        report.chores,
                    )
                pause = self.seconds_to_next(interval)
            except Exception:
                db.session.rollback()
                log.exception("scheduler tick failed; retrying in %s s", interval)
            finally:
                db.session.remove()
            stop.wait(pause)
        log.info("scheduler stopped")


_embedded: threading.Thread | None = None
_embedded_lock = threading.Lock()


def start_embedded(app: Flask) -> threading.Thread:
    """Run the scheduler in a daemon thread of this process (no Redis: demo, ``impexmod run``)."""
    global _embedded
    with _embedded_lock:
        if _embedded is not None and _embedded.is_alive():
            return _embedded

        def loop() -> None:
            with app.app_context():
                Scheduler().run_forever(threading.Event())

        _embedded = threading.Thread(target=loop, name="impexmod-scheduler", daemon=True)
        _embedded.start()
        return _embedded
