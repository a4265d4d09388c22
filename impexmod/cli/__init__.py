"""The ``impexmod`` command: a Flask CLI group, the same as ``flask --app wsgi``."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup, ScriptInfo, get_debug_flag, routes_command, shell_command
from flask.cli import run_command as flask_run_command
from werkzeug.serving import is_running_from_reloader


def register(app: Flask) -> None:
    """Add impexmod's commands to the application's CLI."""
    from impexmod.cli import demo, exporter, scheduler, seed, users, worker

    for module in (demo, exporter, seed, worker, scheduler, users):
        app.cli.add_command(module.command)
    app.cli.add_command(scheduler.retention_command)
    app.cli.add_command(scheduler.sweep_command)
    app.cli.add_command(scheduler.notifications_command)
    from impexmod.cli import templates

    app.cli.add_command(templates.command)
    from impexmod.cli import importing

    for command in importing.commands:
        app.cli.add_command(command)
    from impexmod.cli import stylesheets

    app.cli.add_command(stylesheets.command)


def _create_app():
    from impexmod import create_app

    return create_app()


@click.pass_context
def _run(ctx: click.Context, **options) -> None:
    """Flask's ``run``, plus the embedded scheduler when there is no Redis (no scheduler
    process to run schedules then). Under the reloader, only the serving child starts it."""
    app = ctx.ensure_object(ScriptInfo).load_app()
    reload = options.get("reload")
    if reload is None:
        reload = get_debug_flag()
    if not app.config.get("REDIS_URL") and (not reload or is_running_from_reloader()):
        from impexmod.dispatch.scheduler import start_embedded

        start_embedded(app)
    ctx.invoke(flask_run_command.callback, **options)


run_command = click.Command(
    "run",
    params=list(flask_run_command.params),
    callback=_run,
    help="Run a development server; without Redis, it also runs the scheduler.",
    short_help="Run a development server (and the scheduler without Redis).",
)

cli = FlaskGroup(create_app=_create_app, help=__doc__, add_default_commands=False)
cli.add_command(run_command)
cli.add_command(shell_command)
cli.add_command(routes_command)
