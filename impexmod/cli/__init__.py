"""The ``impexmod`` command: a Flask CLI group, the same as ``flask --app wsgi``."""

from __future__ import annotations

import re

import click
from flask import Flask
from flask.cli import FlaskGroup, ScriptInfo, get_debug_flag, routes_command, shell_command
from flask.cli import run_command as flask_run_command
from werkzeug.serving import is_running_from_reloader


def register(app: Flask) -> None:
    """Add impexmod's commands to the application's CLI."""
    from impexmod.cli import demo, exporter, scheduler, seed, serve, users, worker

    for module in (demo, exporter, seed, serve, worker, scheduler, users):
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
    from impexmod.cli import secrets

    app.cli.add_command(secrets.command)
    from impexmod.cli import orders

    app.cli.add_command(orders.command)


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


class OneLineUsageError(click.UsageError):
    """A usage error told in one line: what was wrong, what is allowed, where help is."""

    def __init__(self, error: click.UsageError):
        # Click lists a missing option's choices one a line: they are joined here.
        super().__init__(re.sub(r"\s*\n\s*", " ", error.format_message()), error.ctx)

    def show(self, file=None) -> None:
        """Print ``Error: ...`` on one line, without the usage above it."""
        hint = f" (see '{self.ctx.command_path} --help')" if self.ctx is not None else ""
        click.echo(f"Error: {self.format_message()}{hint}", file=file, err=file is None)


def _has_schema(ctx: click.Context) -> bool:
    from sqlalchemy import inspect

    from impexmod.extensions import db

    try:
        with ctx.ensure_object(ScriptInfo).load_app().app_context():
            return inspect(db.engine).has_table("alembic_version")
    except Exception:
        return True  # cannot tell: the original error is the one to show


class ImpexmodGroup(FlaskGroup):
    """Flask's group, whose errors a merchant can act on: one-line usage errors, and the
    missing schema said as such rather than as a database traceback."""

    def invoke(self, ctx: click.Context):
        """Run the subcommand, turning its usage errors into one-line errors."""
        from sqlalchemy.exc import OperationalError, ProgrammingError

        try:
            return super().invoke(ctx)
        except OneLineUsageError:
            raise
        except click.UsageError as exc:
            raise OneLineUsageError(exc) from None
        except (OperationalError, ProgrammingError):
            if _has_schema(ctx):
                raise
            raise click.ClickException(
                "the database has no impexmod schema: run `impexmod db upgrade` "
                "(or `impexmod demo`) first"
            ) from None


cli = ImpexmodGroup(create_app=_create_app, help=__doc__, add_default_commands=False)
cli.add_command(run_command)
cli.add_command(shell_command)
cli.add_command(routes_command)
