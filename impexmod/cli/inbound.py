"""``impexmod orders inbound ...``: inbound update feeds (docs/orders.md), and
``impexmod orders shipments ORDER``."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from impexmod.dispatch import jobs
from impexmod.extensions import db
from impexmod.importing.errors import ImportRefused
from impexmod.models import InboundStatus, Shipment, ShipmentLine
from impexmod.orders import inbound, states
from impexmod.orders.events import MalformedBody
from impexmod.runs import tasks

group = click.Group("inbound", help="Inbound update feeds: carriers' events moving orders along.")


def _feed(task_id: int):
    try:
        return inbound.get_inbound(task_id)
    except tasks.TaskNotFound as exc:
        raise click.ClickException(str(exc)) from None


def _line(data: dict) -> str:
    ev = data["events"]
    poll = f", polls {data['poll_url']}" if data["poll_url"] else ""
    return (
        f"{data['id']}  {data['name']}  (schedule {data['schedule']}{poll})  "
        f"events: {ev['pending']} pending, {ev['applied']} applied, {ev['error']} in error\n"
        f"    {data['inbound_url']}"
    )


@group.command("add")
@click.argument("name")
@click.option("--url", help="Also fetch events from this http(s) URL at each run (polled).")
@click.option(
    "--schedule",
    default=inbound.SCHEDULE,
    show_default=True,
    help="When runs apply what is queued (and poll --url): none, daily@HH:MM, cron...",
)
@click.option("--timezone", help="Timezone of the schedule (default: the shop's).")
@click.option("--json", "as_json", is_flag=True, help="Print the feed as one JSON object.")
@with_appcontext
def add(name, url, schedule, timezone, as_json):
    """Add an inbound feed NAME and print its inbound URL."""
    try:
        task = inbound.create_inbound(name, url=url, schedule=schedule, timezone=timezone)
    except tasks.InvalidTask as exc:
        raise click.ClickException(str(exc)) from None
    data = inbound.describe_inbound(task)
    click.echo(json.dumps(data) if as_json else f"Inbound feed {task.id}: {data['inbound_url']}")


@group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@with_appcontext
def list_feeds(as_json):
    """List the inbound feeds with their URLs and event counts."""
    found = [inbound.describe_inbound(t) for t in inbound.list_inbound()]
    if as_json:
        click.echo(json.dumps(found))
    elif not found:
        click.echo("No inbound feeds (add one: impexmod orders inbound add NAME)")
    for data in [] if as_json else found:
        click.echo(_line(data))


@group.command("show")
@click.argument("task_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def show(task_id, as_json):
    """Show an inbound feed: URL, schedule, event counts, last run."""
    data = inbound.describe_inbound(_feed(task_id))
    if as_json:
        click.echo(json.dumps(data))
        return
    click.echo(_line(data))
    run = data["last_run"]
    if run:
        click.echo(f"    last run {run['id']}: {run['status']}")


@group.command("events")
@click.argument("task_id", type=int)
@click.option(
    "--status",
    type=click.Choice([InboundStatus.PENDING, InboundStatus.APPLIED, InboundStatus.ERROR]),
    help="Only the events of this status.",
)
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@with_appcontext
def events(task_id, status, limit, as_json):
    """List a feed's latest events, newest first (with why, for those in error)."""
    found = [inbound.describe_event(e) for e in inbound.events_of(_feed(task_id), status, limit)]
    if as_json:
        click.echo(json.dumps(found))
        return
    for ev in found:
        payload = ev["payload"]
        order = payload.get("order") or payload.get("order_reference") or payload.get("order_id")
        tail = f": {ev['error']}" if ev["error"] else ""
        click.echo(f"{ev['event_id']}  {payload.get('type')}  order {order}  {ev['status']}{tail}")


@group.command("push")
@click.argument("task_id", type=int)
@click.option(
    "--file",
    "path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A JSON or XML file of events (the format of POST /inbound/<token>).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was queued as JSON.")
@with_appcontext
def push(task_id, path, as_json):
    """Queue the events of a file (applied by the feed's next run: see `run`)."""
    task = _feed(task_id)
    try:
        receipt = inbound.push_file(task, path)
    except (MalformedBody, inbound.InboundTooLarge, OSError) as exc:
        raise click.ClickException(f"{click.format_filename(path)}: {exc}") from None
    if as_json:
        click.echo(json.dumps(receipt.as_dict()))
        return
    click.echo(
        f"{receipt.accepted} events queued, {receipt.duplicates} already stored, "
        f"{len(receipt.rejected)} rejected"
    )
    for rejected in receipt.rejected:
        click.echo(f"  event {rejected.index} ({rejected.event_id or 'no id'}): {rejected.reason}")


@group.command("run")
@click.argument("task_id", type=int)
@click.option("--wait", is_flag=True, help="Return when the run has ended; exit 1 if it failed.")
@click.option("--json", "as_json", is_flag=True, help="Print the run as one JSON object.")
@with_appcontext
def run(task_id, wait, as_json):
    """Apply the feed's queued events now (fetching its polled URL first, if it has one)."""
    task = _feed(task_id)
    try:
        started = jobs.start_run(task, trigger="manual", inline=True)
        if wait:
            started = jobs.wait(started)
    except jobs.TaskBusy as exc:
        raise click.ClickException(str(exc)) from None
    except ImportRefused as exc:
        raise click.ClickException(str(exc)) from None
    described = tasks.describe_run(started)
    if as_json:
        click.echo(json.dumps(described))
    else:
        line = f"Run {started.id} of inbound feed {task.id}: {started.status}"
        if started.status == "succeeded":
            line += f", {started.entity_count} events applied, {len(started.warnings)} row errors"
        elif started.error:
            line += f": {started.error}"
        click.echo(line)
    if started.status == "failed":
        raise SystemExit(1)


@group.command("rotate")
@click.argument("task_id", type=int)
@with_appcontext
def rotate(task_id):
    """Give a feed a new inbound URL (the old one answers 404 from now on) and print it."""
    click.echo(inbound.rotate(_feed(task_id)))


@group.command("remove")
@click.argument("task_id", type=int)
@with_appcontext
def remove(task_id):
    """Delete an inbound feed, its runs and its events."""
    task = _feed(task_id)
    inbound.delete_inbound(task)
    click.echo(f"Removed inbound feed {task_id}")


@click.command("shipments")
@click.argument("order")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@with_appcontext
def shipments(order, as_json):
    """List the shipments of ORDER (an id or a reference), with their lines."""
    try:
        found = states.find_order(order)
    except states.OrderNotFound as exc:
        raise click.ClickException(str(exc)) from None
    rows = []
    for s in db.session.scalars(
        select(Shipment).where(Shipment.id_order == found.id).order_by(Shipment.number)
    ):
        lines = db.session.execute(
            select(ShipmentLine.id_order_detail, ShipmentLine.quantity).where(
                ShipmentLine.id_shipment == s.id
            )
        ).all()
        rows.append(
            {
                "number": s.number,
                "status": s.status,
                "carrier": s.carrier,
                "tracking_number": s.tracking_number,
                "shipped_at": s.shipped_at.isoformat(timespec="seconds") if s.shipped_at else None,
                "delivered_at": (
                    s.delivered_at.isoformat(timespec="seconds") if s.delivered_at else None
                ),
                "lines": [{"order_detail": d, "quantity": q} for d, q in lines],
            }
        )
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo(f"Order {found.reference} has no shipments")
    for r in rows:
        tracking = " ".join(x for x in (r["carrier"], r["tracking_number"]) if x)
        click.echo(
            f"shipment {r['number']}: {r['status']}  {tracking or '(no tracking)'}  "
            f"{sum(li['quantity'] for li in r['lines'])} items"
        )
