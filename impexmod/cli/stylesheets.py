"""`impexmod stylesheet ...`: upload, list, show and delete XSLT stylesheets."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import with_appcontext

from impexmod.export import stylesheets


@click.group("stylesheet")
def command():
    """Upload, list, show and delete the XSLT stylesheets exporters may apply."""


@command.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="Its name for exporters [default: the file name].")
@click.option(
    "--record-wise",
    is_flag=True,
    help="Apply it chunk by chunk of entities (docs/xslt.md says when a stylesheet can be).",
)
@click.option("--replace", is_flag=True, help="Replace the uploaded stylesheet of that name.")
@with_appcontext
def add(file: Path, name: str | None, record_wise: bool, replace: bool):
    """Check a stylesheet (safe, compiles) and save it for exporters."""
    name = name or file.stem
    taken = name in stylesheets.known_names() and name not in stylesheets.shipped_names()
    if taken and not replace:
        raise click.ClickException(
            f"a stylesheet named {name} exists: choose another --name, or --replace it"
        )
    try:
        row = stylesheets.save_stylesheet(name, file.read_bytes(), record_wise)
    except stylesheets.StylesheetError as exc:
        raise click.ClickException(f"{file}: {exc.message}") from None
    entry = next(e for e in stylesheets.list_stylesheets() if e.name == row.name)
    mode = "record-wise" if entry.record_wise else "whole document"
    click.echo(f"Stylesheet {row.name} saved: writes {entry.ext}, applied {mode}.")
    click.echo(f"Use it with: impexmod exporter add ... --stylesheet {row.name}")


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def list_(as_json: bool):
    """List the shipped and uploaded stylesheets."""
    entries = stylesheets.list_stylesheets()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": e.name,
                        "origin": e.origin,
                        "ext": e.ext,
                        "record_wise": e.record_wise,
                        "used_by": list(e.used_by),
                    }
                    for e in entries
                ]
            )
        )
        return
    for e in entries:
        mode = "record-wise" if e.record_wise else "whole document"
        used = ", ".join(map(str, e.used_by)) or "none"
        click.echo(f"{e.name:<32} {e.origin:<9} {e.ext:<5} {mode:<15} exporters: {used}")


@command.command("show")
@click.argument("name")
@with_appcontext
def show(name: str):
    """Print a stylesheet's source."""
    found = stylesheets.load_source(name)
    if found is None:
        known = ", ".join(stylesheets.known_names())
        raise click.ClickException(f"no stylesheet named {name!r} (known: {known})")
    click.echo(found[1], nl=False)


@command.command("delete")
@click.argument("name")
@with_appcontext
def delete(name: str):
    """Delete an uploaded stylesheet (refused while an exporter uses it)."""
    try:
        stylesheets.delete_stylesheet(name)
    except stylesheets.StylesheetError as exc:
        raise click.ClickException(exc.message) from None
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Stylesheet {name} deleted.")
