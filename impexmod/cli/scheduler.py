"""`impexmod scheduler`, `impexmod retention`, `impexmod sweep` and `impexmod notifications`."""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import threading

import click
from flask import current_app
from flask.cli import with_appcontext

from impexmod.dispatch import retention
from impexmod.extensions import db
from impexmod.models import Notification, NotificationDelivery
from impexmod.runs import tasks


def _log_to_stderr() -> None:
    # An operator watches this process's output: say what was started, skipped, retried.
    log = logging.getLogger("impexmod.scheduler")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(logging.INFO)


@click.command("scheduler")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Seconds between two looks at due tasks [default: IMPEXMOD_SCHEDULER_INTERVAL, 15].",
)
@click.option("--once", is_flag=True, help="Do one pass (start what is due) and quit.")
@with_appcontext
def command(interval, once):
    """Start each task's runs when its schedule says (long-running; several may run at once)."""
    from impexmod.dispatch.scheduler import Scheduler

    _log_to_stderr()
    scheduler = Scheduler()
    if once:
        report = scheduler.tick()
        click.echo(
            f"started {len(report.started)} run(s), skipped {len(report.skipped)}, "
            f"retried {report.deliveries} deliveries, chores: {', '.join(report.chores) or '-'}"
        )
        return
    if not current_app.config.get("REDIS_URL"):
        click.echo("No IMPEXMOD_REDIS_URL: due runs execute inside this process.", err=True)
    stop = threading.Event()

    def _stop(signum, _frame):
        # Finish the current tick, then quit: a slot is never half-claimed.
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    scheduler.run_forever(stop, interval)


@click.command("retention")
@click.option(
    "--days",
    type=click.IntRange(min=0),
    default=None,
    help="Keep run files this many days [default: IMPEXMOD_RETENTION_DAYS, 30].",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def retention_command(days, as_json):
    """Remove run files older than the retention period (never a file a feed URL serves)."""
    report = retention.purge_run_files(days=days)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "removed_runs": report.removed_runs,
                    "removed_bytes": report.removed_bytes,
                    "kept_current": report.kept_current,
                    "removed_uploads": report.removed_uploads,
                }
            )
        )
    else:
        click.echo(str(report).capitalize() + ".")


@click.command("sweep")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def sweep_command(as_json):
    """End runs whose process died, free their tasks, remove temporary files of runs that are
    over and repair feed pointers (the scheduler and workers do it too)."""
    from impexmod.dispatch import liveness

    report = liveness.sweep()
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(report)))
    else:
        click.echo(str(report).capitalize() + ".")


@click.group("notifications")
def notifications_command():
    """Who hears about runs: e-mail, webhook; and the latest notifications."""


@notifications_command.command("configure")
@click.argument("task_id", type=int)
@click.option("--email", "emails", default="", help="Comma-separated addresses ('' for none).")
@click.option("--webhook-url", default="", help="URL to POST signed JSON to ('' for none).")
@click.option(
    "--on-success/--failures-only", default=False, help="Also notify when a run succeeds."
)
@click.option(
    "--new-secret",
    is_flag=True,
    help="Replace the webhook's signing secret (the old one stops verifying) and print it.",
)
@with_appcontext
def configure(task_id, emails, webhook_url, on_success, new_secret):
    """Set a task's notifications; prints the webhook's signing secret once, when it is made."""
    try:
        task = tasks.get_task(task_id)
        before = task.webhook_secret
        task = tasks.set_notifications(
            task, on_success, emails or None, webhook_url or None, new_secret=new_secret
        )
    except tasks.TaskNotFound as exc:
        raise click.ClickException(str(exc)) from None
    except tasks.InvalidTask as exc:
        hint = {"notify_emails": "--email", "webhook_url": "--webhook-url"}[exc.field]
        raise click.BadParameter(exc.message, param_hint=hint) from None
    when = "every run" if task.notify_success else "failed runs"
    click.echo(f"Task {task.id} notifies {when}.")
    if task.notify_emails:
        click.echo(f"  e-mail: {task.notify_emails}")
    if task.webhook_url:
        click.echo(f"  webhook: {task.webhook_url}")
        if task.webhook_secret != before:
            # Shown this once: it is kept encrypted and never printed again.
            click.echo(
                f"  X-Impexmod-Signature: sha256=HMAC-SHA256(body) with {task.webhook_secret}"
                "\n  (keep this secret now: it is not shown again; --new-secret replaces it)"
            )
        else:
            click.echo("  signed with the secret shown when it was made (--new-secret replaces it)")


@notifications_command.command("list")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def list_notifications(limit, as_json):
    """The latest notifications with the state of their deliveries."""
    rows = db.session.query(Notification).order_by(Notification.id.desc()).limit(limit).all()
    described = []
    for n in rows:
        deliveries = (
            db.session.query(NotificationDelivery)
            .filter(NotificationDelivery.notification_id == n.id)
            .order_by(NotificationDelivery.id)
            .all()
        )
        described.append(
            {
                "id": n.id,
                "task_id": n.task_id,
                "run_id": n.run_id,
                "event": n.event,
                "title": n.title,
                "created_at": n.created_at.isoformat(),
                "deliveries": [
                    {
                        "channel": d.channel,
                        "target": d.target,
                        "status": d.status,
                        "attempts": d.attempts,
                        "last_error": d.last_error,
                        "next_attempt_at": d.next_attempt_at.isoformat()
                        if d.next_attempt_at
                        else None,
                    }
                    for d in deliveries
                ],
            }
        )
    if as_json:
        click.echo(json.dumps(described))
        return
    if not described:
        click.echo("No notification yet.")
    for n in described:
        click.echo(f"{n['created_at']}  {n['title']}")
        for d in n["deliveries"]:
            click.echo(f"    {d['channel']} {d['target']}: {d['status']} after {d['attempts']}")
