"""`impexmod template ...`: save, list, show, export, import and delete field templates."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from impexmod import entities
from impexmod.export import field_templates as services
from impexmod.export.transforms import OPS


@click.group("template")
def command():
    """Field templates: named column mappings for csv, xlsx, json and jsonl exporters."""


def _template(name: str):
    try:
        return services.get_template(name)
    except services.TemplateNotFound as exc:
        raise click.ClickException(str(exc)) from None


def _columns(template) -> str:
    return _count(len(template.columns))


def _count(count: int) -> str:
    return f"{count} column{'s' if count != 1 else ''}"


def parse_column(spec: str) -> dict:
    """A column from the quick form ``Header=source|op|op:argument`` (argument: the op's first
    parameter, e.g. ``truncate:70``, ``price:2``, ``date:%d/%m/%Y``, ``default:n/a``)."""
    header, sep, rest = spec.partition("=")
    if not sep or not header.strip() or not rest.strip():
        raise click.BadParameter(
            f"{spec!r} is not Header=source[|op[:argument]]...", param_hint="--column"
        )
    source, *steps = rest.split("|")
    transforms = []
    for step in steps:
        op, has_arg, arg = step.partition(":")
        op = op.strip()
        params = list(OPS[op][0]) if op in OPS else []
        step_json: dict = {"op": op}
        if has_arg:
            if not params:
                raise click.BadParameter(f"{spec!r}: {op} takes no argument", param_hint="--column")
            first = params[0]
            kind = OPS[op][0][first].kind
            if kind in ("count", "length"):
                try:
                    step_json[first] = int(arg)
                except ValueError:
                    raise click.BadParameter(
                        f"{spec!r}: {op} wants a whole number, not {arg!r}", param_hint="--column"
                    ) from None
            elif kind == "table":
                raise click.BadParameter(
                    f"{spec!r}: give a lookup table in a --file", param_hint="--column"
                )
            else:
                step_json[first] = arg
        transforms.append(step_json)
    return {"header": header.strip(), "source": source.strip(), "transforms": transforms}


def _read_columns(file, columns: tuple[str, ...]) -> tuple[list, dict]:
    """The columns given by --file (an array, or a whole template document) or --column."""
    if file is not None and columns:
        raise click.UsageError("give --file or --column, not both")
    if file is None and not columns:
        raise click.UsageError("give the mapping with --file mapping.json or --column ...")
    if columns:
        return [parse_column(c) for c in columns], {}
    try:
        document = json.loads(file.read())
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", param_hint="--file"
        ) from None
    except UnicodeDecodeError:
        raise click.BadParameter("not UTF-8 text", param_hint="--file") from None
    if isinstance(document, dict) and "columns" in document:
        return document["columns"], document
    return document, {}


@command.command("add")
@click.option("--name", required=True, help="The template's name, as given to --template.")
@click.option(
    "--entity", required=True, type=click.Choice(entities.ENTITY_NAMES), help="What it maps."
)
@click.option(
    "--file",
    type=click.File("r", encoding="utf-8-sig"),
    help="A JSON array of columns, or a template file (docs/templates.md); - reads stdin.",
)
@click.option(
    "--column",
    "columns",
    multiple=True,
    metavar="SPEC",
    help="Quick form, repeatable, in order: 'Header=source|op|op:argument', e.g. "
    "'Title=name[en]|strip_html|truncate:70'.",
)
@click.option("--description", default=None, help="What the template is for.")
@with_appcontext
def add(name, entity, file, columns, description):
    """Save a field template."""
    mapped, document = _read_columns(file, columns)
    if description is None:
        description = document.get("description")
    try:
        template = services.create_template(name, entity, mapped, description)
    except services.InvalidTemplate as exc:
        hint = f"--{exc.field}"
        if exc.field == "columns":
            hint = "--file" if file is not None else "--column"
        raise click.BadParameter(exc.message, param_hint=hint) from None
    click.echo(
        f"Template {template.name} saved: {template.entity}, {_columns(template)}. "
        f"Use it with `impexmod exporter add ... --format csv --template {template.name}`."
    )


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def list_(as_json):
    """List the saved field templates."""
    described = [services.describe(t) for t in services.list_templates()]
    if as_json:
        click.echo(json.dumps(described))
        return
    if not described:
        click.echo("No field template yet: save one with `impexmod template add`.")
    for d in described:
        used = ""
        if d["used_by"]:
            plural = "s" if len(d["used_by"]) > 1 else ""
            used = f"used by exporter{plural} {', '.join(map(str, d['used_by']))}"
        click.echo(f"{d['name']}  [{d['entity']}, {_count(len(d['headers']))}]  {used}".rstrip())
        if d["description"]:
            click.echo(f"    {d['description']}")
        click.echo(f"    {', '.join(d['headers'])}")


@command.command("show")
@click.argument("name")
@with_appcontext
def show(name):
    """Print a template as JSON (the format of `template export`)."""
    _template(name)
    click.echo(services.dumps(services.export_template(name)), nl=False)


@command.command("export")
@click.argument("name")
@click.option(
    "-o",
    "--output",
    type=click.File("w", encoding="utf-8", atomic=True),
    default="-",
    help="The file to write [default: stdout].",
)
@with_appcontext
def export(name, output):
    """Write a template as a JSON file, to import into another shop."""
    _template(name)
    output.write(services.dumps(services.export_template(name)))
    if output.name != "<stdout>":
        click.echo(f"Template {name} written to {output.name}.", err=True)


@command.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--replace", is_flag=True, help="Overwrite a template of the same name.")
@with_appcontext
def import_(file, replace):
    """Save the template of a JSON file written by `template export`."""
    try:
        template = services.import_template(file.read(), replace=replace)
    except services.InvalidTemplate as exc:
        where = "" if exc.field in ("file", "columns") else f"{exc.field}: "
        raise click.BadParameter(f"{where}{exc.message}", param_hint="FILE") from None
    except services.TemplateInUse as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Template {template.name} imported: {template.entity}, {_columns(template)}.")


@command.command("delete")
@click.argument("name")
@with_appcontext
def delete(name):
    """Delete a template; refused while an exporter uses it."""
    _template(name)
    try:
        services.delete_template(name)
    except services.TemplateInUse as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Template {name} deleted.")
