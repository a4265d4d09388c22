"""`impexmod worker`: an RQ worker that executes queued runs."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

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
    from rq import Worker

    from impexmod.dispatch import liveness
    from impexmod.dispatch.jobs import horse_killed, queue

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
