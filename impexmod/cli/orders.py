"""``impexmod orders``: the orders channel from the command line (docs/orders.md)."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from impexmod.extensions import db
from impexmod.factories.orm import ensure_order_states
from impexmod.orders import flags, overview, states

command = click.Group(
    "orders", help="The orders channel: states, transitions, flags, approvals, exporters, inbound."
)

JSON_HELP = "Print JSON."


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


def finish_runs(timeout: float = 600) -> None:
    """Without Redis, the order exporters a command started run in threads of this process:
    wait for them (and for the runs a chain starts from them) before the command exits."""
    import threading
    import time

    from impexmod.dispatch import jobs

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = [t for t in threading.enumerate() if t.name.startswith(jobs.RUN_THREAD)]
        if not running:
            return
        for thread in running:
            thread.join(max(0.0, deadline - time.monotonic()))


@command.command("init")
@with_appcontext
def init_command():
    """Create the standard order states and the moves allowed between them (kept if present)."""
    ensure_order_states(db.session)
    db.session.commit()
    added = states.ensure_standard_transitions()
    click.echo(f"Standard order states in place; {added} transition(s) added.")


# -- states ----------------------------------------------------------------------------------


@command.group("state")
def state_group():
    """List and add order states."""


@state_group.command("list")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@with_appcontext
def state_list(as_json):
    """List the order states."""
    rows = states.state_list()
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        marks = ",".join(k for k in ("paid", "shipped", "delivery") if row[k]) or "-"
        click.echo(f"{row['id']:>3}  {row['name']:<28} {marks}")


@state_group.command("add")
@click.argument("name")
@click.option("--color", default="#4169E1", show_default=True, help="Colour in the panel.")
@click.option("--paid", is_flag=True, help="Orders in this state are paid.")
@click.option("--shipped", is_flag=True, help="Orders in this state are shipped.")
@click.option("--delivery", is_flag=True, help="Orders in this state are delivered.")
@with_appcontext
def state_add(name, color, paid, shipped, delivery):
    """Add an order state of the merchant's own."""
    try:
        state = states.add_state(name, color=color, paid=paid, shipped=shipped, delivery=delivery)
    except states.StateError as exc:
        raise _fail(exc) from None
    click.echo(f"Added order state {state.id}: {state.name}")


# -- transitions -----------------------------------------------------------------------------


@command.group("transition")
def transition_group():
    """List, allow and forbid moves between order states, and the flags each sets."""


@transition_group.command("list")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@with_appcontext
def transition_list(as_json):
    """List the allowed transitions and the flags they set."""
    rows = states.transitions()
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        sets = f"  sets {', '.join(row['flags'])}" if row["flags"] else ""
        click.echo(f"{row['from']} -> {row['to']}{sets}")


@transition_group.command("allow")
@click.argument("source")
@click.argument("target")
@click.option("--flag", "flag_names", multiple=True, help="A flag it sets (repeatable).")
@with_appcontext
def transition_allow(source, target, flag_names):
    """Allow orders to move from SOURCE to TARGET (state names or ids), setting --flag flags;
    an existing transition gets these flags instead of its own."""
    try:
        states.allow(source, target, list(flag_names))
    except (states.StateError, flags.FlagError) as exc:
        raise _fail(exc) from None
    sets = f", setting {', '.join(flag_names)}" if flag_names else ""
    click.echo(f"Allowed {source} -> {target}{sets}")


@transition_group.command("forbid")
@click.argument("source")
@click.argument("target")
@with_appcontext
def transition_forbid(source, target):
    """Remove the transition from SOURCE to TARGET."""
    try:
        states.forbid(source, target)
    except states.StateError as exc:
        raise _fail(exc) from None
    click.echo(f"Forbidden {source} -> {target}")


# -- flags -----------------------------------------------------------------------------------


@command.group("flag")
def flag_group():
    """Define export flags, list them, set one on an order by hand."""


@flag_group.command("list")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@with_appcontext
def flag_list(as_json):
    """List the export flags with how many orders carry each, by status."""
    counts = flags.counts()
    rows = [
        {
            "name": f.name,
            "label": f.label,
            "needs_approval": f.needs_approval,
            "orders": counts.get(f.name, {}),
        }
        for f in flags.defined()
    ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        approval = " (needs approval)" if row["needs_approval"] else ""
        tally = ", ".join(f"{n} {s}" for s, n in sorted(row["orders"].items())) or "no orders"
        click.echo(f"{row['name']:<16} {row['label']}{approval}: {tally}")


@flag_group.command("define")
@click.argument("name")
@click.option("--label", default="", help="What the panel calls it.")
@click.option(
    "--needs-approval/--no-approval",
    default=False,
    help="Orders flagged wait on the panel's 'Orders to approve' list.",
)
@with_appcontext
def flag_define(name, label, needs_approval):
    """Define an export flag (or change its label and approval)."""
    try:
        flag = flags.define(name, label, needs_approval)
    except flags.FlagError as exc:
        raise _fail(exc) from None
    approval = ", needs approval" if flag.needs_approval else ""
    click.echo(f"Flag {flag.name} ({flag.label}{approval})")


@flag_group.command("set")
@click.argument("order")
@click.argument("flag_names", nargs=-1, required=True)
@with_appcontext
def flag_set(order, flag_names):
    """Set flags on ORDER (id or reference) by hand, e.g. to export it again."""
    try:
        found = states.find_order(order)
        pending = flags.set_on(found.id, flag_names, set_by="cli")
    except (states.OrderNotFound, flags.FlagError) as exc:
        raise _fail(exc) from None
    finish_runs()
    if not pending:
        click.echo("Nothing set: the order already carries these flags, unserved.")
    for item in pending:
        click.echo(f"Order {found.reference}: flag {item.flag} {item.status}")


# -- orders ----------------------------------------------------------------------------------


@command.command("move")
@click.argument("order")
@click.argument("state")
@click.option("--expect", help="Fail (a conflict) unless the order is in this state now.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@with_appcontext
def move_command(order, state, expect, as_json):
    """Move ORDER (id or reference) to STATE along an allowed transition."""
    try:
        moved = states.move(order, state, actor="cli", expected=expect)
    except (states.StateError, states.OrderNotFound) as exc:
        raise _fail(exc) from None
    finish_runs()
    if as_json:
        click.echo(json.dumps(moved.__dict__))
        return
    sets = f"; flags set: {', '.join(moved.flags)}" if moved.flags else ""
    click.echo(f"Order {moved.reference}: {moved.from_state} -> {moved.to_state}{sets}")


@command.command("show")
@click.argument("order")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@with_appcontext
def show_command(order, as_json):
    """Show ORDER's state, history, flags, shipments and what touched it."""
    try:
        data = overview.describe(order)
    except states.OrderNotFound as exc:
        raise _fail(exc) from None
    if as_json:
        click.echo(json.dumps(data))
        return
    click.echo(f"Order {data['reference']} (id {data['id']}): {data['state']}")
    click.echo(f"  may move to: {', '.join(data['next_states']) or 'nothing'}")
    for entry in data["history"]:
        click.echo(f"  {entry['at']}  {entry['state']}")
    for flag in data["flags"]:
        error = f" - {flag['last_error']}" if flag["last_error"] else ""
        click.echo(f"  flag {flag['flag']}: {flag['status']}, {flag['attempts']} attempt(s){error}")
    for shipment in data["shipments"]:
        tracking = shipment["tracking_number"] or "no tracking"
        click.echo(f"  shipment {shipment['number']}: {shipment['status']} ({tracking})")
    for entry in data["log"]:
        click.echo(f"  {entry['at']}  [{entry['kind']}] {entry['message']}")


@command.command("to-approve")
@click.option("--flag", "flag_name", help="Only this flag.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@with_appcontext
def to_approve(flag_name, as_json):
    """List the flags waiting for a merchant's approval (their ids for approve/reject)."""
    rows = [overview.flag_row(f) for f in flags.held(flag_name)]
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("No order waits for approval.")
    for row in rows:
        click.echo(f"{row['id']:>6}  order {row['order_id']}  {row['flag']}  set {row['set_at']}")


def _decide(decide, flag_ids, every, flag_name, verb):
    if every:
        flag_ids = [f.id for f in flags.held(flag_name, limit=100_000)]
    elif not flag_ids:
        raise click.UsageError("give flag ids (see `impexmod orders to-approve`) or --all")
    decided = decide(flag_ids, actor="cli")
    finish_runs()
    click.echo(f"{verb} {len(decided)} flag(s).")
    skipped = len(flag_ids) - len(decided)
    if skipped:
        click.echo(f"{skipped} were not waiting for approval (decided already, or unknown).")


@command.command("approve")
@click.argument("flag_ids", nargs=-1, type=int)
@click.option("--all", "every", is_flag=True, help="Every flag waiting (with --flag, of it).")
@click.option("--flag", "flag_name", help="With --all: only this flag.")
@with_appcontext
def approve_command(flag_ids, every, flag_name):
    """Approve held flags: their order exporters take the orders."""
    _decide(flags.approve, list(flag_ids), every, flag_name, "Approved")


@command.command("reject")
@click.argument("flag_ids", nargs=-1, type=int)
@click.option("--all", "every", is_flag=True, help="Every flag waiting (with --flag, of it).")
@click.option("--flag", "flag_name", help="With --all: only this flag.")
@with_appcontext
def reject_command(flag_ids, every, flag_name):
    """Reject held flags: the orders are not exported for them."""
    _decide(flags.reject, list(flag_ids), every, flag_name, "Rejected")


@command.command("failing")
@click.option("--flag", "flag_name", help="Only this flag.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@with_appcontext
def failing_command(flag_name, as_json):
    """List the orders whose export keeps failing, with why."""
    rows = [overview.flag_row(f) for f in flags.failing(flag_name)]
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("No order export keeps failing.")
    for row in rows:
        tries = f"{row['attempts']} attempts"
        click.echo(f"order {row['order_id']}  {row['flag']}  {tries}: {row['last_error']}")


# The exporter and inbound commands live in their own modules, added to this group.
from impexmod.cli import inbound, order_exporters  # noqa: E402

command.add_command(order_exporters.group)
command.add_command(inbound.group)
command.add_command(inbound.shipments)
