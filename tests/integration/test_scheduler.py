"""The scheduler against the database: due slots start once, missed slots collapse into one
run, two schedulers never start the same slot, a busy task's slot is skipped and recorded."""

from __future__ import annotations

import functools
import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from impexmod.dispatch import jobs
from impexmod.dispatch.scheduler import Scheduler, TickReport
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.models import Language, Product, ProductLang, Run, Task, now
from impexmod.runs import tasks
from impexmod.runs.slots import next_slot

# Runs executed in this process, to the end, before the tick returns.
inline_start = functools.partial(jobs.start_run, inline=True)


def recording_start(task: Task, trigger: str, scheduled_for=None) -> Run:
    """A stand-in for jobs.start_run that only records the run (no task lock, no export)."""
    run = Run(task_id=task.id, trigger=trigger, scheduled_for=scheduled_for, status="succeeded")
    db.session.add(run)
    db.session.commit()
    return run


@pytest.fixture
def catalog(app):
    """One product to export."""
    db.session.add(Language(id=1, iso_code="en", name="English"))
    product = Product(reference="SCHED-1", price=5)
    db.session.add(product)
    db.session.flush()
    db.session.add(ProductLang(id_product=product.id, id_lang=1, name="Due", link_rewrite="due"))
    db.session.commit()
    return app


def set_next(task: Task, when) -> None:
    """Put the task's next slot at ``when`` (naive UTC)."""
    db.session.execute(update(Task).where(Task.id == task.id).values(next_run_at=when))
    db.session.commit()


def runs_of(task: Task) -> list[Run]:
    """The task's runs, oldest first, as committed."""
    db.session.rollback()
    return db.session.query(Run).filter_by(task_id=task.id).order_by(Run.id).all()


def test_a_due_slot_starts_one_scheduled_run_and_moves_to_the_next_slot(catalog):
    task = exporters.create_exporter("daily", "products", schedule="daily@02:30")
    slot = next_slot(task, now())
    assert task.next_run_at == slot
    scheduler = Scheduler(start=inline_start)

    # Not yet due.
    report = scheduler.tick(slot - timedelta(seconds=1))
    assert report.started == [] and runs_of(task) == []

    report = scheduler.tick(slot + timedelta(seconds=3))
    [run] = runs_of(task)
    assert report.started == [run.id]
    assert (run.trigger, run.status, run.scheduled_for) == ("schedule", "succeeded", slot)
    assert run.entity_count == 1 and run.file_key == f"run-{run.id}.xml"
    log = run.log.splitlines()
    assert "Queued (schedule)" in log[0] and "Started" in log[1]
    assert any(f"Published run-{run.id}.xml" in line for line in log)
    assert "Succeeded in" in log[-1]
    db.session.refresh(task)
    assert task.next_run_at == slot + timedelta(days=1)

    # The same moment again: nothing more to do.
    assert scheduler.tick(slot + timedelta(seconds=4)).started == []
    assert len(runs_of(task)) == 1


def test_a_restart_after_downtime_runs_each_missed_task_once(catalog):
    minutely = exporters.create_exporter("minutely", "products", schedule="*/1 * * * *")
    daily = exporters.create_exporter("daily", "products", schedule="daily@06:00")
    moment = now().replace(second=30)
    # Down for three days: thousands of missed minutes, three missed days.
    set_next(minutely, moment - timedelta(days=3))
    set_next(daily, moment - timedelta(days=3))
    scheduler = Scheduler(start=recording_start)

    report = scheduler.tick(moment)
    assert len(report.started) == 2
    assert len(runs_of(minutely)) == 1 and len(runs_of(daily)) == 1
    db.session.refresh(minutely)
    db.session.refresh(daily)
    assert minutely.next_run_at == moment.replace(second=0) + timedelta(minutes=1)
    assert daily.next_run_at > moment

    for later in (moment + timedelta(seconds=10), moment + timedelta(seconds=20)):
        assert scheduler.tick(later).started == []
    assert len(runs_of(minutely)) == 1 and len(runs_of(daily)) == 1


def test_a_scheduler_that_read_a_slot_late_loses_it_to_the_one_that_claimed_it(catalog):
    task = exporters.create_exporter("contended", "products", schedule="*/1 * * * *")
    moment = now()
    set_next(task, moment - timedelta(seconds=5))
    first, second = Scheduler(start=recording_start), Scheduler(start=recording_start)

    due = second.due(moment)
    assert [task_id for task_id, _ in due] == [task.id]
    assert len(first.tick(moment).started) == 1
    # The second read the slot before the first claimed it; its claim now matches nothing.
    db.session.rollback()
    report = second.tick(moment)  # sees nothing due
    assert report.started == []
    late = TickReport()
    task_id, slot = due[0]
    second.fire(task_id, slot, moment, late)
    assert late.started == [] and late.lost == [task.id]
    assert len(runs_of(task)) == 1


def test_two_schedulers_ticking_at_once_never_double_a_slot(catalog):
    app = catalog
    # Ticks at +0, +1 and +2 s must stay inside one minute, or the next minutely slot is due.
    moment = now().replace(second=10)
    created = [
        exporters.create_exporter(f"race {i}", "products", schedule="*/1 * * * *")
        for i in range(12)
    ]
    for task in created:
        set_next(task, moment - timedelta(seconds=5))
    barrier = threading.Barrier(3)
    reports, errors = [], []

    def scheduler_thread() -> None:
        # Its own application context, hence its own session and database connection.
        with app.app_context():
            try:
                scheduler = Scheduler(start=recording_start)
                barrier.wait()
                for offset in range(3):
                    reports.append(scheduler.tick(moment + timedelta(seconds=offset)))
            except Exception as exc:  # surfaced below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=scheduler_thread) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    started = [run_id for report in reports for run_id in report.started]
    assert len(started) == len(created)
    for task in created:
        [run] = runs_of(task)
        assert run.scheduled_for == moment - timedelta(seconds=5)


def test_a_task_still_running_is_skipped_and_the_skip_recorded(catalog):
    task = exporters.create_exporter("slow", "products", schedule="*/1 * * * *")
    running = jobs.start_run(task)  # no Redis, not inline: a thread runs it...
    jobs.wait(running, timeout=30)
    # ...and here is one that is still going: it holds the task, with a fresh heartbeat.
    holder = Run(task_id=task.id, status="running", trigger="manual", heartbeat_at=now())
    db.session.add(holder)
    db.session.flush()
    task.lock_run_id = holder.id
    db.session.commit()
    moment = now()
    set_next(task, moment - timedelta(seconds=2))

    report = Scheduler(start=inline_start).tick(moment)
    assert report.started == [] and len(report.skipped) == 1
    skip = db.session.get(Run, report.skipped[0])
    assert skip.status == "skipped" and skip.trigger == "schedule"
    assert skip.reason == f"run {holder.id} was still running"
    assert skip.scheduled_for == moment - timedelta(seconds=2)
    assert skip.ended_at is not None and "Skipped: run" in skip.log
    described = tasks.describe_run(skip)
    assert described["status"] == "skipped" and described["reason"] == skip.reason
    # The slot is used up: the next one is the next minute, and the holder was left alone.
    db.session.refresh(task)
    assert task.next_run_at > moment and task.lock_run_id == holder.id
    assert db.session.get(Run, holder.id).status == "running"


def test_a_task_given_a_schedule_behind_the_services_back_gets_a_first_slot(catalog):
    task = exporters.create_exporter("raw", "products")
    assert task.next_run_at is None
    db.session.execute(update(Task).where(Task.id == task.id).values(schedule="daily@07:00"))
    db.session.commit()
    moment = now()
    report = Scheduler(start=recording_start).tick(moment)
    assert report.started == []
    db.session.refresh(task)
    assert task.next_run_at == next_slot(task, moment)


def test_a_broken_schedule_does_not_stop_the_others(catalog):
    broken = exporters.create_exporter("broken", "products", schedule="*/1 * * * *")
    fine = exporters.create_exporter("fine", "products", schedule="*/1 * * * *")
    moment = now()
    set_next(broken, moment - timedelta(seconds=1))
    set_next(fine, moment - timedelta(seconds=1))
    db.session.execute(update(Task).where(Task.id == broken.id).values(schedule="every day"))
    db.session.commit()
    report = Scheduler(start=recording_start).tick(moment)
    assert len(report.started) == 1 and len(runs_of(fine)) == 1
    db.session.refresh(broken)
    assert broken.next_run_at is None and runs_of(broken) == []


def test_manual_tasks_are_never_started(catalog):
    task = exporters.create_exporter("manual", "products")
    report = Scheduler(start=recording_start).tick(now() + timedelta(days=400))
    assert report.started == [] and runs_of(task) == []


def test_retention_runs_once_a_day(catalog):
    scheduler = Scheduler(start=recording_start)
    moment = now()
    assert "retention" in scheduler.tick(moment).chores
    assert "retention" not in scheduler.tick(moment + timedelta(hours=23)).chores
    assert "retention" in scheduler.tick(moment + timedelta(days=1)).chores


def test_the_file_sweep_runs_every_five_minutes(catalog):
    scheduler = Scheduler(start=recording_start)
    moment = now()
    assert "sweep-files" in scheduler.tick(moment).chores
    assert "sweep-files" not in scheduler.tick(moment + timedelta(minutes=4)).chores
    assert "sweep-files" in scheduler.tick(moment + timedelta(minutes=5)).chores


def test_unknown_triggers_are_refused(catalog):
    task = exporters.create_exporter("t", "products")
    with pytest.raises(ValueError, match="unknown trigger 'cron'"):
        jobs.start_run(task, trigger="cron")
    assert jobs.TRIGGERS == ("manual", "schedule", "retry", "inbound", "flag")


def test_the_scheduler_sleeps_until_the_next_slot_at_most(catalog):
    scheduler = Scheduler(start=recording_start)
    assert scheduler.seconds_to_next(15) == 15  # nothing scheduled
    task = exporters.create_exporter("soon", "products", schedule="daily@04:00")
    set_next(task, now() + timedelta(seconds=5))
    assert 4 <= scheduler.seconds_to_next(15) <= 5.3
    set_next(task, now() + timedelta(hours=5))
    assert scheduler.seconds_to_next(15) == 15
