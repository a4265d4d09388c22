"""`impexmod exporter ...`: define, list, run exporters and rotate their feed tokens."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from impexmod import entities
from impexmod.cli import progress as progress_
from impexmod.cli.destinations import (
    DESTINATION_HELP,
    echo_deliveries,
    echo_destinations,
    parse_destination,
)
from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.export import destinations as dests
from impexmod.export import selection
from impexmod.extensions import db
from impexmod.models import TaskKind
from impexmod.runs import tasks
from impexmod.runs.tokens import feed_url


@click.group("exporter")
def command():
    """Define, list and run exporters."""


def parse_options(pairs) -> dict[str, str]:
    """``KEY=VALUE`` pairs as a dict; a pair without ``=`` is a usage error."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--option")
        options[key.strip()] = value.strip()
    return options


def _task(task_id: int):
    try:
        return tasks.get_task(task_id)
    except tasks.TaskNotFound as exc:
        raise click.ClickException(str(exc)) from None


def _exporter(task_id: int):
    """The exporter with this id; another kind of task is refused, naming its command."""
    task = _task(task_id)
    if task.kind == TaskKind.IMPORT:
        raise click.ClickException(f"task {task_id} is an importer: use `impexmod importer run`")
    if task.kind != TaskKind.EXPORT:
        raise click.ClickException(f"task {task_id} is not an exporter")
    return task


@command.command("add")
@click.option("--name", required=True, help="A name for the merchant.")
@click.option(
    "--entity", required=True, type=click.Choice(entities.ENTITY_NAMES), help="What the feed lists."
)
@click.option(
    "--format",
    "fmt",
    default=None,
    type=click.Choice(exporters.FORMATS),
    help="Feed format [default: xml, or the template's].",
)
@click.option(
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A format or template option, repeatable: separator=tab, bom=false, pretty=true, "
    "rows=combinations, fields=reference,name,price,quantity (docs/formats.md); lang=fr, "
    "brand=..., tax_rate=20 for templates (docs/platforms.md).",
)
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="EXPR",
    help="Select entities, repeatable: category=Shoes, supplier=Acme, active=1, price>=10, "
    "'reference in A1,A2' (docs/selection.md).",
)
@click.option(
    "--match",
    type=click.Choice(("all", "any")),
    default="all",
    show_default=True,
    help="Whether an entity must match all the filters or any of them.",
)
@click.option(
    "--template",
    default=None,
    help="A predefined template (shopify, woocommerce, prestashop, google-shopping, "
    "google-shopping-tsv, amazon; it implies its format) or a saved field template.",
)
@click.option(
    "--stylesheet", default=None, help="An XSLT stylesheet (from xslt/ or uploaded) to apply."
)
@click.option(
    "--strategy",
    default="full",
    show_default=True,
    type=click.Choice(exporters.STRATEGIES),
    help="full: every entity; incremental: what changed since the last run.",
)
@click.option(
    "--schedule",
    default="none",
    show_default=True,
    help="none, daily@HH:MM, weekly@DAY@HH:MM, monthly@D@HH:MM or a cron expression.",
)
@click.option(
    "--timezone", default=None, help="Timezone of the schedule [default: IMPEXMOD_TIMEZONE]."
)
@click.option(
    "--retries",
    type=click.IntRange(0, 10),
    default=0,
    show_default=True,
    help="Start a run again this many times when its process dies (kill, lost machine).",
)
@click.option(
    "--full-companion",
    type=int,
    default=None,
    help="A full exporter (same entity, format, selection) whose feed this incremental "
    "exporter's URL serves to a client whose cursor has expired.",
)
@click.option(
    "--destination",
    "destinations",
    multiple=True,
    metavar="KIND:KEY=VALUE,...",
    help=DESTINATION_HELP,
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def add(
    name,
    entity,
    fmt,
    options,
    filters,
    match,
    template,
    stylesheet,
    strategy,
    schedule,
    timezone,
    retries,
    full_companion,
    destinations,
    as_json,
):
    """Add an exporter and print its feed URL (404 until its first run)."""
    try:
        parsed_filters = [selection.parse_filter(text) for text in filters]
    except selection.InvalidFilter as exc:
        raise click.BadParameter(str(exc), param_hint="--filter") from None
    specs = [parse_destination(text) for text in destinations]
    try:
        for spec in specs:  # all or nothing: checked before the exporter is saved
            dests.check(spec)
    except tasks.InvalidTask as exc:
        raise click.BadParameter(exc.message, param_hint="--destination") from None
    task = None
    try:
        task = exporters.create_exporter(
            name,
            entity,
            fmt,
            strategy,
            options=parse_options(options),
            schedule=schedule,
            timezone=timezone,
            template=template,
            stylesheet=stylesheet,
            filters=parsed_filters,
            filter_match=match,
            max_retries=retries,
        )
        if full_companion is not None:
            exporters.set_full_companion(task, full_companion)
        if specs:
            dests.set_destinations(task, specs)
    except tasks.InvalidTask as exc:
        db.session.rollback()
        if exc.field in ("full_companion", "destination") and task is not None:
            tasks.delete_task(task)  # all or nothing: no exporter half-defined
        raise click.BadParameter(
            exc.message, param_hint=f"--{exc.field.replace('_', '-')}"
        ) from None
    if as_json:
        click.echo(json.dumps(tasks.describe(task)))
        return
    shape = f"template {task.template}" if task.template else task.format
    if task.stylesheet:
        shape = f"stylesheet {task.stylesheet}"
    click.echo(f"Exporter {task.id} ({task.name}): {task.entity} as {shape}, {task.strategy}.")
    described = tasks.describe(task)
    if described["next_run_at"]:
        click.echo(
            f"Schedule {task.schedule} ({task.timezone}): next run {described['next_run_at']}."
        )
    if described["destinations"]:
        click.echo(f"Delivered after each successful run to {len(described['destinations'])}:")
        echo_destinations(described["destinations"])
    click.echo("The feed URL answers 404 until the exporter has run once.")
    click.echo(feed_url(task))


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def list_(as_json):
    """List exporters with their feed URLs and last runs."""
    described = [tasks.describe(t) for t in tasks.list_tasks(TaskKind.EXPORT)]
    if as_json:
        click.echo(json.dumps(described))
        return
    if not described:
        click.echo("No exporter yet: add one with `impexmod exporter add`.")
    for d in described:
        last = d["last_run"]
        state = (
            f"last run {last['status']}, {last['entity_count']} entities" if last else ("never run")
        )
        plan = f"{d['schedule']}, next {d['next_run_at']}" if d["next_run_at"] else "manual"
        click.echo(
            f"{d['id']:>4}  {d['name']}  [{d['entity']} {d['format']} {d['strategy']}]"
            f"  {state}\n      {plan}\n      {d['feed_url']}"
        )
        echo_destinations(d["destinations"])


@command.command("run")
@click.argument("task_id", type=int)
@click.option(
    "--wait", is_flag=True, help="Return when the run has ended; exit status 1 if it failed."
)
@click.option("--json", "as_json", is_flag=True, help="Print the run as one JSON object.")
@progress_.option
@with_appcontext
def run(task_id, wait, as_json, progress):
    """Run an exporter now (through the worker when Redis is configured), showing its
    progress on stderr."""
    task = _exporter(task_id)
    label = f"Exporter {task.id} ({task.entity})"
    try:
        started = progress_.start_and_follow(task, wait, label, progress, quiet=as_json)
    except jobs.TaskBusy as exc:
        raise click.ClickException(str(exc)) from None
    described = tasks.describe_run(started)
    if as_json:
        click.echo(json.dumps(described))
    else:
        line = f"Run {started.id} of exporter {task.id}: {started.status}"
        if started.status == "succeeded":
            line += (
                f", {started.entity_count} entities, {started.deleted_count} deletions, "
                f"{started.bytes} bytes in {started.duration:.2f} s"
            )
        elif started.error:
            line += f": {started.error}"
        click.echo(line)
        echo_deliveries(described["deliveries"])
    if started.status == "failed":
        raise SystemExit(1)


@command.command("rotate-token")
@click.argument("task_id", type=int)
@with_appcontext
def rotate_token(task_id):
    """Give an exporter a new feed URL and print it; the old URL answers 404."""
    click.echo(tasks.rotate_token(_task(task_id)))


@command.command("companion")
@click.argument("task_id", type=int)
@click.argument("full_id", required=False, type=int)
@click.option("--none", "clear", is_flag=True, help="Name no full companion.")
@with_appcontext
def companion(task_id, full_id, clear):
    """Name the full exporter FULL_ID whose feed this incremental exporter's URL serves to a
    client whose cursor has expired (same entity, format and selection)."""
    if (full_id is None) == (not clear):
        raise click.UsageError("give FULL_ID or --none")
    task = _task(task_id)
    try:
        exporters.set_full_companion(task, None if clear else full_id)
    except tasks.InvalidTask as exc:
        raise click.BadParameter(exc.message, param_hint="FULL_ID") from None
    if clear:
        click.echo(f"Exporter {task_id} names no full companion: an expired cursor gets a 410.")
    else:
        click.echo(
            f"Exporter {task_id} serves exporter {full_id}'s feed at "
            f"{feed_url(task)}?snapshot=full to clients whose cursor has expired."
        )


@command.command("delete")
@click.argument("task_id", type=int)
@with_appcontext
def delete(task_id):
    """Delete an exporter, its runs and its files."""
    task = _task(task_id)
    tasks.delete_task(task)
    click.echo(f"Exporter {task_id} deleted.")


@command.command("destinations")
@click.argument("task_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def destinations_(task_id, as_json):
    """List an exporter's destinations (secrets named, never shown)."""
    described = [tasks.describe_destination(d) for d in tasks.destinations_of(_exporter(task_id))]
    if as_json:
        click.echo(json.dumps(described))
    elif not described:
        click.echo(f"Exporter {task_id} has no destination: add one with --destination.")
    else:
        echo_destinations(described)


@command.command("add-destination")
@click.argument("task_id", type=int)
@click.argument("destination", metavar="KIND:KEY=VALUE,...")
@with_appcontext
def add_destination(task_id, destination):
    """Add a destination to an exporter (the form of `exporter add --destination`)."""
    task = _exporter(task_id)
    try:
        row = dests.add_destination(task, parse_destination(destination))
    except tasks.InvalidTask as exc:
        raise click.BadParameter(exc.message, param_hint="DESTINATION") from None
    click.echo(f'Destination {row.id} ({row.kind} "{row.label}") added to exporter {task_id}.')


@command.command("remove-destination")
@click.argument("task_id", type=int)
@click.argument("destination_id", type=int)
@with_appcontext
def remove_destination(task_id, destination_id):
    """Remove one of an exporter's destinations (its past deliveries stay in the history)."""
    try:
        dests.remove_destination(_exporter(task_id), destination_id)
    except tasks.InvalidTask as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Destination {destination_id} removed from exporter {task_id}.")


@command.command("test-destination")
@click.argument("task_id", type=int)
@click.argument("destination_id", type=int)
@with_appcontext
def test_destination(task_id, destination_id):
    """Connect to a destination and sign in, writing nothing; exit status 1 if it fails."""
    task = _exporter(task_id)
    row = next((d for d in tasks.destinations_of(task) if d.id == destination_id), None)
    if row is None:
        raise click.ClickException(f"no destination {destination_id} on exporter {task_id}")
    spec = dests.DestinationSpec(row.kind, {}, label=row.label, enabled=row.enabled, id=row.id)
    spec.settings = dict(row.settings or {})
    outcome = dests.test_connection(spec, row)
    click.echo(dests.outcome_line(outcome))
    if not outcome.ok:
        raise SystemExit(1)
