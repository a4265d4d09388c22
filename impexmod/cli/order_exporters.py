"""``impexmod orders exporter ...``: define, list, show, run and remove order exporters
(docs/orders.md, "Order exporters")."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from impexmod.cli import progress as progress_
from impexmod.dispatch import jobs
from impexmod.extensions import db
from impexmod.orders import documents
from impexmod.orders import exporter as order_exporters
from impexmod.runs import tasks


@click.group("exporter")
def group():
    """Order exporters: send the orders carrying a flag to an HTTP endpoint, or serve them."""


def _exporter(task_id: int):
    try:
        return order_exporters.get_order_exporter(task_id)
    except tasks.TaskNotFound as exc:
        raise click.ClickException(str(exc)) from None


def _where(d: dict) -> str:
    if d["destination"] == "pull":
        return f"served on {d['feed_url']}"
    return f"POST to {d['url']} (timeout {d['timeout']:g} s, {d['attempts']} attempts)"


def _echo(d: dict) -> None:
    chain = f" then sets {', '.join(d['next_flags'])}" if d["next_flags"] else ""
    shape = f"template {d['template']} as {d['format']}" if d["template"] else d["format"]
    per = "one order per request" if d["batch"] == 1 else f"batches of {d['batch']}"
    click.echo(f"{d['id']:>4}  {d['name']}  [flag {d['flag']}{chain}]")
    click.echo(f"      {shape}, {per}, {_where(d)}")
    when = "as soon as the flag is set" if d["on_flag"] else "not when the flag is set"
    plan = f"{d['schedule']}, next {d['next_run_at']}" if d["next_run_at"] else "no schedule"
    click.echo(f"      runs {when}; {plan}")
    counts = ", ".join(f"{n} {s}" for s, n in sorted(d["flag_counts"].items())) or "none"
    click.echo(f"      orders flagged {d['flag']}: {counts}")
    last = d["last_run"]
    if last:
        click.echo(f"      last run {last['id']}: {last['status']}")


@group.command("add")
@click.argument("name")
@click.option("--flag", required=True, help="The export flag it acts on (a defined flag).")
@click.option(
    "--next-flag",
    "next_flags",
    multiple=True,
    help="A flag set on each order once sent (a chain: ERP, then warehouse). Repeatable.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(documents.FORMATS),
    help="xml (native order XML, the default), json or jsonl (json with --template).",
)
@click.option("--template", help="A saved field template of orders, written as json or jsonl.")
@click.option("--url", help="http: the URL orders are POSTed to.")
@click.option("--secret", help="http: the secret the requests are signed with (HMAC-SHA256).")
@click.option("--timeout", type=int, default=10, show_default=True, help="http: seconds per try.")
@click.option(
    "--attempts", type=int, default=3, show_default=True, help="http: tries per send in a run."
)
@click.option(
    "--batch", type=int, default=1, show_default=True, help="Orders per request (1: one each)."
)
@click.option(
    "--pull", is_flag=True, help="Serve the orders as a document on the exporter's feed URL."
)
@click.option(
    "--on-flag/--no-on-flag",
    default=None,
    help="Run as soon as the flag is set on orders (default: yes for http, no for --pull).",
)
@click.option(
    "--schedule",
    default="none",
    show_default=True,
    help="none, daily@HH:MM, weekly@DAY@HH:MM, monthly@D@HH:MM or a cron expression.",
)
@click.option("--timezone", help="The schedule's timezone (default: the shop's).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def add(name, flag, next_flags, fmt, template, url, secret, timeout, attempts, batch, pull, **more):
    """Add an order exporter NAME acting on a flag, to an http URL or served (--pull)."""
    as_json = more.pop("as_json")
    try:
        task = order_exporters.create_order_exporter(
            name,
            flag,
            secret=secret,
            next_flags=list(next_flags),
            fmt=fmt,
            template=template,
            batch=batch,
            destination="pull" if pull else "http",
            url=url,
            timeout=timeout,
            attempts=attempts,
            schedule=more["schedule"],
            timezone=more["timezone"],
            on_flag=more["on_flag"],
        )
    except tasks.InvalidTask as exc:
        db.session.rollback()
        hint = {"fmt": "format", "next_flags": "next-flag", "destination": "pull"}.get(
            exc.field, exc.field.replace("_", "-")
        )
        raise click.ClickException(f"--{hint}: {exc.message}") from None
    described = order_exporters.describe(task)
    if as_json:
        click.echo(json.dumps(described))
        return
    click.echo(f"Order exporter {task.id} ({task.name}) added.")
    _echo(described)
    if pull:
        click.echo("The feed URL answers 404 until a run has served orders.")


@group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def list_(as_json):
    """List order exporters, their flags and last runs."""
    described = [order_exporters.describe(t) for t in order_exporters.list_order_exporters()]
    if as_json:
        click.echo(json.dumps(described))
        return
    if not described:
        click.echo("No order exporter yet: add one with `impexmod orders exporter add`.")
    for d in described:
        _echo(d)


@group.command("show")
@click.argument("task_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def show(task_id, as_json):
    """Show an order exporter, with the orders whose sends keep failing."""
    d = order_exporters.describe(_exporter(task_id))
    if as_json:
        click.echo(json.dumps(d))
        return
    _echo(d)
    if d["failing"]:
        click.echo(f"      {len(d['failing'])} order(s) keep failing:")
    for f in d["failing"]:
        click.echo(f"        order {f['order_id']}: {f['attempts']} attempts, {f['last_error']}")


@group.command("run")
@click.argument("task_id", type=int)
@click.option(
    "--wait", is_flag=True, help="Return when the run has ended; exit status 1 if it failed."
)
@click.option("--json", "as_json", is_flag=True, help="Print the run as one JSON object.")
@progress_.option
@with_appcontext
def run(task_id, wait, as_json, progress):
    """Run an order exporter now (through the worker when Redis is configured)."""
    task = _exporter(task_id)
    label = f"Order exporter {task.id} ({task.name})"
    try:
        started = progress_.start_and_follow(task, wait, label, progress, quiet=as_json)
    except jobs.TaskBusy as exc:
        raise click.ClickException(str(exc)) from None
    described = tasks.describe_run(started)
    if as_json:
        click.echo(json.dumps(described))
    else:
        line = f"Run {started.id} of order exporter {task.id}: {started.status}"
        if started.status not in ("queued", "running"):
            line += f", {started.entity_count} of {started.done} orders sent"
            if started.warnings:
                line += f", {len(started.warnings)} warning(s)"
        if started.error:
            line += f": {started.error}"
        click.echo(line)
    if started.status == "failed":
        raise SystemExit(1)


@group.command("remove")
@click.argument("task_id", type=int)
@with_appcontext
def remove(task_id):
    """Remove an order exporter and its runs (the flags of its orders stay)."""
    order_exporters.delete_order_exporter(_exporter(task_id))
    click.echo(f"Order exporter {task_id} removed.")
