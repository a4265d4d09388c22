"""`impexmod worker`: an RQ worker that executes queued runs."""

from __future__ import annotations

import click
import rq
from flask import current_app, has_app_context
from flask.cli import with_appcontext

from impexmod.dispatch import jobs
from impexmod.extensions import db


@click.command("worker")
@click.option("--burst", is_flag=True, help="Quit once the queue is empty.")
@with_appcontext
def command(burst):
    """Run an RQ worker for impexmod's queue (needs IMPEXMOD_REDIS_URL)."""
    if not current_app.config.get("REDIS_URL"):
        raise click.ClickException(
            "IMPEXMOD_REDIS_URL is not set: without Redis, runs execute in-process "
            "and no worker is needed."
        )
    from impexmod.dispatch import liveness
    from impexmod.dispatch.jobs import queue

    # Runs left by a worker that died (kill -9, a lost machine) are ended before new ones.
    report = liveness.sweep()
    if report.abandoned or report.temp_files or report.repointed:
        current_app.logger.warning("at worker start: %s", report)
    # Work horses are forked: they must not inherit this process's database connections.
    db.session.remove()
    db.engine.dispose()
    q = queue()
    worker = Worker([q], connection=q.connection, work_horse_killed_handler=horse_killed)
    worker.work(burst=burst)


# Seconds between the pub/sub thread's checks of whether the worker is stopping.
PUBSUB_WAKE = 1.0


class Worker(rq.Worker):
    """RQ's worker, whose shutdown never waits a minute on its pub/sub thread."""

    def subscribe(self):
        """Listen on the worker's control channel, waking every second."""
        # RQ's thread waits up to 60 s for a message, and once unsubscribed redis-py sleeps that
        # long per call; redis-py 8.2's ``stop()`` joins the thread without a timeout, so a warm
        # shutdown whose UNSUBSCRIBE reply the thread read first hung for a minute.
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=PUBSUB_WAKE, daemon=True, exception_handler=self._pubsub_exception_handler
        )


def _in_app(function, *args, **kwargs):
    # A work horse forked by ``impexmod worker`` has the worker's app; a plain ``rq worker``
    # (or RQ's callback runner) has none and builds one from the environment.
    if has_app_context():
        return function(*args, **kwargs)
    from impexmod import create_app

    with create_app().app_context():
        return function(*args, **kwargs)


def run_job(run_id: int, instance: str | None = None) -> str:
    """The RQ job of a run (queued by impexmod.dispatch.jobs.start_run)."""
    return _in_app(jobs.execute, run_id, instance=instance)


def job_failed(job, connection, exc_type=None, exc_value=None, traceback=None) -> None:
    """RQ's failure callback of a run's job."""
    _in_app(jobs.job_failed, job, connection, exc_type, exc_value, traceback)


def run_part(run_id: int, number: int, instance: str | None = None) -> str:
    """The RQ job of one key-range part of a run (queued by impexmod.export.parts)."""
    return _in_app(jobs.execute_part, run_id, number, instance=instance)


def part_failed(job, connection, exc_type=None, exc_value=None, traceback=None) -> None:
    """RQ's failure callback of a part's job."""
    _in_app(jobs.part_failed, job, connection, exc_type, exc_value, traceback)


def horse_killed(job, retpid, ret_val, rusage) -> None:
    """The ``work_horse_killed_handler`` of ``impexmod worker``: the job's process was killed."""
    if job.func_name == jobs.PART_FUNCTION:
        part_failed(job, job.connection)
    else:
        job_failed(job, job.connection)
