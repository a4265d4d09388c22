"""`impexmod import SOURCE` (one import now) and `impexmod importer ...` (recurring importers)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import click
from flask.cli import with_appcontext

from impexmod.cli import progress as progress_
from impexmod.dispatch import jobs
from impexmod.extensions import db
from impexmod.importing import (
    FORMATS,
    ImportRefused,
    errors_csv,
    import_file,
    netguard,
    sources,
)
from impexmod.importing.definition import (
    ENTITIES,
    InvalidImporter,
    create_importer,
    describe_importer,
    importer_fields,
    options_for,
    update_importer,
)
from impexmod.importing.native import normalise_source
from impexmod.importing.outcomes import describe_import_run, run_errors
from impexmod.models import Run, Task, TaskKind
from impexmod.runs import tasks


def _check_url(url: str | None) -> None:
    """Refuse an importer's URL whose host is internal, before saving it (``--url``)."""
    problem = _url_problem((url or "").strip())
    if problem:
        raise click.BadParameter(problem, param_hint="--url")
    try:
        # Early, to say it now; each download's connections are checked again.
        netguard.check_url((url or "").strip())
    except netguard.BlockedAddress as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from None


def _url_problem(url: str) -> str | None:
    """What is wrong with a URL given as a source, if it is one: None for a path."""
    scheme, sep, _ = url.partition("://")
    if not (sep and scheme.isalpha()):
        return None
    if scheme.lower() not in ("http", "https"):
        return f"{url!r}: {scheme}:// is not supported; give a file path or an http(s) URL"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError as exc:
        return f"{url!r} is not a valid URL: {exc}"
    if not parts.hostname or any(c.isspace() for c in parts.netloc):
        return f"{url!r} is not a valid URL: no valid host name (http(s)://HOST[:PORT]/PATH)"
    return None


def _check_source(source: str) -> None:
    """Refuse a SOURCE that is a malformed URL or one of another scheme than http(s)."""
    problem = _url_problem(source)
    if problem:
        raise click.BadParameter(problem, param_hint="SOURCE")


def _check_writable(path: str, hint: str) -> None:
    """Refuse an output file whose folder does not exist, before the work rather than after."""
    folder = Path(path).expanduser().resolve().parent
    if not folder.is_dir():
        raise click.BadParameter(f"{path}: no folder {folder}", param_hint=hint)


def _group(path: str | None) -> list | None:
    """The data-group descriptors of a ``--group`` JSON file."""
    if not path:
        return None
    try:
        descriptors = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"{path}: not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            param_hint="--group",
        ) from None
    except UnicodeDecodeError:
        raise click.BadParameter(f"{path}: not UTF-8 text", param_hint="--group") from None
    return descriptors


def _summary(data: dict) -> str:
    return (
        f"{data['created']} created, {data['updated']} updated, {data['unchanged']} unchanged, "
        f"{data['deleted']} deleted, {data['disabled']} disabled, {data['skipped']} skipped, "
        f"{data['errors']} error(s), {data['warnings']} warning(s)"
    )


@click.command("import")
@click.argument("source")
@click.option("--entity", type=click.Choice(ENTITIES), help="What a CSV/XLSX file holds.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Default: from the name.")
@click.option(
    "--mode",
    default="create,update",
    show_default=True,
    help="Comma-separated: create, update, delete (or disable) entries absent from the input.",
)
@click.option("--source", "key_source", help="Whose keys the input uses (supplier name).")
@click.option("--mapping", help="A saved column mapping (name) for a flat file.")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option("--errors", "errors_to", type=click.Path(dir_okay=False), help="Write errors as CSV.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@progress_.option
@with_appcontext
def import_command(
    source, entity, fmt, mode, key_source, mapping, dry_run, errors_to, as_json, progress
):
    """Import SOURCE (a file path or an http(s) URL) now, showing its progress on stderr.
    Exit status 1 on errors."""
    _check_source(source)
    if errors_to:
        _check_writable(errors_to, "--errors")
    try:
        options = options_for(
            mode,
            dry_run=dry_run,
            source=normalise_source(key_source),
            entity=entity,
            mapping_name=mapping,
        )
    except InvalidImporter as exc:
        raise click.BadParameter(exc.message, param_hint="--mode") from None
    try:
        if source.startswith(("http://", "https://")):
            netguard.check_url(source)
            fetched = sources.fetch_url(source)
        else:
            fetched = sources.from_path(source)
    except netguard.BlockedAddress as exc:
        raise click.ClickException(f"{source}: refused: {exc}") from None
    except ImportRefused as exc:
        raise click.ClickException(str(exc)) from None
    try:
        with progress_.Meter(f"Import of {fetched.name}", progress, quiet=as_json) as meter:
            report = import_file(
                fetched.path, options, fmt=fmt, label=fetched.name, progress=meter.update
            )
    finally:
        fetched.cleanup()
    data = report.to_dict()
    if errors_to:
        try:
            Path(errors_to).write_text(errors_csv(report.errors))
        except OSError as exc:
            raise click.ClickException(f"{errors_to}: cannot write: {exc.strerror}") from None
    if as_json:
        click.echo(json.dumps(data, default=str))
    else:
        prefix = "Dry run (nothing written): " if dry_run else ""
        click.echo(prefix + _summary(data))
        for row in data["entities"]:
            click.echo(
                f"  {row['file']} {row['entity']}: {row['created']} created, "
                f"{row['updated']} updated, {row['unchanged']} unchanged, {row['deleted']} deleted"
            )
        for error in report.errors[:20]:
            click.echo(f"  {error.severity}: {error}", err=True)
        if len(report.errors) > 20:
            click.echo(f"  ... {len(report.errors) - 20} more (use --errors FILE)", err=True)
        if dry_run:
            for diff in report.diffs[:50]:
                changes = ", ".join(f"{k}: {o!r} -> {n!r}" for k, (o, n) in diff["changes"].items())
                click.echo(f"  {diff['action']} {diff['key']}: {changes}")
    if report.refused or report.error_count:
        raise SystemExit(1)


@click.group("importer")
def importer_command():
    """Define, list and run recurring importers."""


@importer_command.command("add")
@click.option("--name", required=True)
@click.option("--url", required=True, help="An http(s) URL (or an absolute file path).")
@click.option("--entity", type=click.Choice(ENTITIES), help="What a CSV/XLSX file holds.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Default: from the file.")
@click.option("--mode", default="create,update", show_default=True)
@click.option("--source", "key_source", help="Whose keys the feed uses when it does not say.")
@click.option("--username", help="HTTP Basic auth user.")
@click.option("--password", help="HTTP Basic auth password.")
@click.option("--schedule", help="When to run, as for exporters (cron, e.g. '*/5 * * * *').")
@click.option("--mapping", help="A saved column mapping (name) for flat files.")
@click.option(
    "--group",
    type=click.Path(exists=True, dir_okay=False),
    help="A JSON file of data-group descriptors: [{pattern, entity, format, mapping}].",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def add(
    name, url, entity, fmt, mode, key_source, username, password, schedule, mapping, group, as_json
):
    """Add an importer of URL."""
    _check_url(url)
    try:
        descriptors = _group(group)
        task = create_importer(
            name,
            url,
            entity,
            fmt,
            mode,
            key_source,
            username,
            password,
            mapping=mapping,
            group=descriptors,
            schedule=schedule,
        )
    except (InvalidImporter, tasks.InvalidTask) as exc:
        raise click.BadParameter(exc.message, param_hint=f"--{exc.field}") from None
    if as_json:
        click.echo(json.dumps(describe_importer(task), default=str))
    else:
        click.echo(f"Importer {task.id} ({task.name}): {url}, modes {mode}.")


@importer_command.command("edit")
@click.argument("task_id", type=int)
@click.option("--name")
@click.option("--url", help="An http(s) URL (or an absolute file path).")
@click.option("--entity", type=click.Choice((*ENTITIES, "any")))
@click.option("--format", "fmt", type=click.Choice((*FORMATS, "auto")))
@click.option("--mode", help="Comma-separated: create, update, delete or disable.")
@click.option("--source", "key_source", help="Whose keys the feed uses when it does not say.")
@click.option("--username", help="HTTP Basic auth user ('' drops the credentials).")
@click.option("--password", help="HTTP Basic auth password (omitted: the stored one is kept).")
@click.option("--mapping", help="A saved column mapping (name); '' for none.")
@click.option("--schedule", help="When to run, as for exporters; 'none' to run it by hand.")
@click.option("--timezone", help="Of the schedule, e.g. Europe/Paris.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def edit(task_id, as_json, **given):
    """Change an importer: only the options given, the rest is kept."""
    try:
        task = tasks.get_task(task_id)
    except tasks.TaskNotFound as exc:
        raise click.ClickException(str(exc)) from None
    if task.kind != TaskKind.IMPORT:
        raise click.ClickException(f"task {task_id} is not an importer")
    if given.get("url") is not None:
        _check_url(given["url"])
    renamed = {"mode": "modes", "key_source": "source"}
    changes = {renamed.get(k, k): v for k, v in given.items() if v is not None}
    try:
        update_importer(task, **{**importer_fields(task), **changes})
    except (InvalidImporter, tasks.InvalidTask) as exc:
        raise click.BadParameter(exc.message, param_hint=f"--{exc.field}") from None
    if as_json:
        click.echo(json.dumps(describe_importer(task), default=str))
    else:
        click.echo(f"Importer {task.id} ({task.name}) saved.")


@importer_command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def list_(as_json):
    """List importers with their last runs."""
    described = [describe_importer(t) for t in tasks.list_tasks(TaskKind.IMPORT)]
    if as_json:
        click.echo(json.dumps(described, default=str))
        return
    if not described:
        click.echo("No importer yet: add one with `impexmod importer add`.")
    for d in described:
        last = d["last_run"]
        state = f"last run {last['status']}" if last else "never run"
        click.echo(f"{d['id']:>4}  {d['name']}  [{d['modes']}]  {state}\n      {d['url']}")


@importer_command.command("run")
@click.argument("task_id", type=int)
@click.option("--wait", is_flag=True, help="Return when the run has ended; exit 1 if it failed.")
@click.option("--json", "as_json", is_flag=True, help="Print the run as one JSON object.")
@progress_.option
@with_appcontext
def run(task_id, wait, as_json, progress):
    """Run an importer now (through the worker when Redis is configured), showing its
    progress on stderr."""
    try:
        task = tasks.get_task(task_id)
    except tasks.TaskNotFound as exc:
        raise click.ClickException(str(exc)) from None
    if task.kind == TaskKind.EXPORT:
        raise click.ClickException(f"task {task_id} is an exporter: use `impexmod exporter run`")
    if task.kind != TaskKind.IMPORT:
        raise click.ClickException(f"task {task_id} is not an importer")
    label = f"Importer {task.id}"
    try:
        started = progress_.start_and_follow(task, wait, label, progress, quiet=as_json)
    except jobs.TaskBusy as exc:
        raise click.ClickException(str(exc)) from None
    described = describe_import_run(started)
    if as_json:
        click.echo(json.dumps(described, default=str))
    else:
        click.echo(f"Run {started.id} of importer {task.id}: {started.status}")
        for row in described["results"]:
            click.echo(
                f"  {row['file']} {row['entity']}: {row['created']} created, "
                f"{row['updated']} updated, {row['unchanged']} unchanged, {row['errors']} errors"
            )
        if started.error:
            click.echo(f"  {started.error}", err=True)
    if started.status == "failed":
        raise SystemExit(1)


@importer_command.command("errors")
@click.argument("run_id", type=int)
@with_appcontext
def errors(run_id):
    """Print the row errors of an import run as CSV."""
    run = db.session.get(Run, run_id)
    if run is None:
        raise click.ClickException(f"no run with id {run_id}")
    task = db.session.get(Task, run.task_id)
    if task is not None and task.kind not in (TaskKind.IMPORT, TaskKind.UPLOAD):
        raise click.ClickException(f"run {run_id} is not an import run")
    click.echo(errors_csv(run_errors(run_id)), nl=False)


commands = (import_command, importer_command)
