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

    from impexmod.jobs import queue

    # Work horses are forked: they must not inherit this process's database connections.
    db.engine.dispose()
    q = queue()
    Worker([q], connection=q.connection).work(burst=burst)
