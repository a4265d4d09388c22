"""The exporter commands' destinations: ``--destination`` values read, destinations and
deliveries printed (secrets named, never shown)."""

from __future__ import annotations

import json
import os

import click

from impexmod.export import destinations as dests

DESTINATION_HELP = (
    "Deliver each successful run's file there, repeatable: KIND:KEY=VALUE,KEY=VALUE,... with "
    "KIND one of sftp, ftp, ftps, email, webhook, s3 and its settings (docs/delivery.md), "
    "e.g. 'sftp:host=files.example.com,username=shop,private_key=@~/.ssh/id_ed25519,"
    "accept_new_host_key=true,directory=in'. KEY=@FILE reads the value from a file (keys, "
    "certificates; keeps secrets out of the shell history); a piece without '=' continues "
    "the previous value (to=a@x.test,b@x.test); label=... names it, enabled=false keeps it "
    'off. Or a JSON object: \'{"kind": "webhook", "label": "ERP", "settings": '
    '{"url": "https://...", "secret": "..."}}\'.'
)


def parse_destination(text: str) -> dests.DestinationSpec:
    """A ``--destination`` value (KIND:KEY=VALUE,... or a JSON object) as a spec."""
    hint = "--destination"
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc.msg}", param_hint=hint) from None
        if not isinstance(data, dict) or not isinstance(data.get("settings", {}), dict):
            raise click.BadParameter("a JSON object with kind and settings", param_hint=hint)
        return dests.DestinationSpec(
            str(data.get("kind", "")),
            dict(data.get("settings") or {}),
            label=data.get("label"),
            enabled=bool(data.get("enabled", True)),
        )
    kind, sep, rest = text.partition(":")
    if not sep or not kind.strip():
        raise click.BadParameter(f"{text[:40]!r} is not KIND:KEY=VALUE,...", param_hint=hint)
    settings: dict[str, str] = {}
    last = None
    for piece in rest.split(",") if rest else []:
        key, eq, value = piece.partition("=")
        if not eq:
            if last is None:
                raise click.BadParameter(f"{piece!r} is not KEY=VALUE", param_hint=hint)
            settings[last] += "," + piece
            continue
        last = key.strip()
        settings[last] = value
    for key, value in settings.items():
        if value.startswith("@"):
            try:
                with click.open_file(os.path.expanduser(value[1:])) as fh:
                    settings[key] = fh.read()
            except OSError as exc:
                raise click.BadParameter(f"{key}: {exc.strerror}", param_hint=hint) from None
    label = settings.pop("label", None)
    enabled = settings.pop("enabled", "true").strip().lower() not in ("0", "false", "no", "off")
    return dests.DestinationSpec(kind.strip(), settings, label=label, enabled=enabled)


def echo_destinations(described: list[dict]) -> None:
    """Print an exporter's destinations, one a line (secrets named, never shown)."""
    for d in described:
        settings = ", ".join(f"{k}={v}" for k, v in d["settings"].items() if k not in dests.LONG)
        secrets = f" (secrets set: {', '.join(d['secrets'])})" if d["secrets"] else ""
        state = "" if d["enabled"] else " [disabled]"
        click.echo(f'      -> {d["id"]}: {d["kind"]} "{d["label"]}"{state}: {settings}{secrets}')


def echo_deliveries(described: list[dict]) -> None:
    """Print a run's deliveries, one a line."""
    for d in described:
        line = f'  delivery to {d["kind"]} "{d["label"]}": {d["outcome"]}, attempt {d["attempt"]}'
        if d["outcome"] == "ok":
            line += f", {d['remote_name']} ({d['bytes']} bytes)"
        else:
            line += f": {d['error']}"
            if d["next_attempt_at"]:
                line += f"; next attempt at {d['next_attempt_at']} UTC"
        click.echo(line)
