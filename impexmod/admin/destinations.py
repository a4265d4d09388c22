"""The exporter form's destinations: blocks of fields read from and written to the request.

Each destination is a block of ``dest-<n>-<setting>`` inputs (its kind's fields,
impexmod.export.destinations.FIELDS). Secret inputs are always rendered empty: a blank one
keeps the stored secret. "Add" and "Test connection" re-render the form without saving.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from impexmod.admin.i18n import lazy_gettext as _l
from impexmod.admin.i18n import say
from impexmod.export import destinations as dests
from impexmod.models import Task, TaskDestination
from impexmod.runs import history
from impexmod.runs.tasks import destinations_of

_INDEX = re.compile(r"^dest-(\d+)-kind$")

KIND_LABELS = {
    "sftp": _l("SFTP server"),
    "ftp": _l("FTP server"),
    "ftps": _l("FTPS server (FTP over TLS)"),
    "email": _l("E-mail"),
    "webhook": _l("Webhook"),
    "s3": _l("S3 / MinIO bucket"),
}
SETTING_LABELS = {
    "host": _l("Host"),
    "port": _l("Port"),
    "username": _l("User name"),
    "password": _l("Password"),
    "private_key": _l("Private key"),
    "passphrase": _l("Key passphrase"),
    "host_key": _l("Host key"),
    "accept_new_host_key": _l("Accept the host key on first connection"),
    "directory": _l("Folder"),
    "name_template": _l("File name"),
    "passive": _l("Passive mode"),
    "ca_cert": _l("CA certificate (PEM)"),
    "starttls": _l("STARTTLS"),
    "from": _l("Sender (From)"),
    "to": _l("Recipients (To, comma-separated)"),
    "subject": _l("Subject"),
    "max_attachment_bytes": _l("Largest attachment (bytes)"),
    "url": _l("URL"),
    "secret": _l("Signing secret"),
    "bucket": _l("Bucket"),
    "prefix": _l("Key prefix"),
    "endpoint_url": _l("Endpoint URL"),
    "region": _l("Region"),
    "access_key_id": _l("Access key id"),
    "secret_access_key": _l("Secret access key"),
    "session_token": _l("Session token"),
    "path_style": _l("Path-style addressing"),
    "verify_tls": _l("Verify the TLS certificate"),
    "multipart_threshold_mb": _l("Multipart above (MiB)"),
}


OUTCOME_LABELS = {"ok": _l("delivered"), "failed": _l("failed"), "retrying": _l("retrying")}
OUTCOME_STYLES = {"ok": "success", "failed": "danger", "retrying": "warning"}


def deliveries_by_run(runs: list) -> dict[int, list]:
    """The deliveries of some runs by run id (one query), for the run history."""
    return history.deliveries_of([run.id for run in runs])


def init_app(app: Any) -> None:
    """Make the run pages' delivery helpers template globals."""
    app.add_template_global(deliveries_by_run, "deliveries_by_run")
    app.add_template_global(lambda o: OUTCOME_LABELS.get(o, o), "delivery_outcome_label")
    app.add_template_global(lambda o: OUTCOME_STYLES.get(o, "secondary"), "delivery_outcome_style")


@dataclass
class Block:
    """One destination as the form shows it; ``stored`` names the secrets kept."""

    index: int
    kind: str
    id: int | None = None
    label: str = ""
    enabled: bool = True
    values: dict[str, Any] = field(default_factory=dict)
    stored: list[str] = field(default_factory=list)
    outcome: str | None = None  # a "Test connection" line
    outcome_ok: bool = False
    source: int = -1  # its number in the request, where its secrets are
    learned: dict[str, Any] = field(default_factory=dict)  # the SFTP host key accepted

    @property
    def fields(self) -> tuple[str, ...]:
        return dests.FIELDS.get(self.kind, ())


def blocks_of(task: Task | None) -> list[Block]:
    """The saved destinations of ``task`` as form blocks (secrets named, never filled)."""
    if task is None:
        return []
    return [
        Block(
            i,
            d.kind,
            d.id,
            d.label,
            bool(d.enabled),
            dict(d.settings or {}),
            sorted(d.get_secrets()),
            learned=dict(d.learned or {}),
        )
        for i, d in enumerate(destinations_of(task))
    ]


def blocks_from(form: Any, task: Task | None) -> list[Block]:
    """The blocks the merchant submitted, in order, without those marked for removal (secrets
    are not echoed back: a typed one must be typed again)."""
    saved = {d.id: d for d in destinations_of(task)} if task is not None else {}
    indexes = sorted(int(m.group(1)) for key in form if (m := _INDEX.match(key)))
    blocks = []
    for index in indexes:
        prefix = f"dest-{index}-"
        if form.get(prefix + "remove"):
            continue
        kind = form.get(prefix + "kind", "")
        raw_id = form.get(prefix + "id", "")
        dest_id = int(raw_id) if raw_id.isdigit() and int(raw_id) in saved else None
        values = {}
        for name in dests.FIELDS.get(kind, ()):
            if name in dests.FLAGS:
                values[name] = bool(form.get(prefix + name))
            elif name not in dests.SECRETS:
                values[name] = form.get(prefix + name, "")
        row = saved.get(dest_id)
        stored = sorted(row.get_secrets()) if row is not None and row.kind == kind else []
        blocks.append(
            Block(
                len(blocks),
                kind,
                dest_id,
                form.get(prefix + "label", ""),
                bool(form.get(prefix + "enabled")),
                values,
                stored,
                learned=dict(row.learned or {}) if row is not None and row.kind == kind else {},
            )
        )
        blocks[-1].source = index
    return blocks


def specs_from(form: Any, blocks: list[Block]) -> list[dests.DestinationSpec]:
    """The blocks as the destination services take them, with the secrets typed in."""
    specs = []
    for block in blocks:
        prefix = f"dest-{block.source if block.source >= 0 else block.index}-"
        settings = {k: v for k, v in block.values.items() if v not in ("", None)}
        for name in block.fields:
            if name in dests.SECRETS and form.get(prefix + name):
                settings[name] = form.get(prefix + name)
        for flag in dests.FLAGS & set(block.fields):
            settings[flag] = bool(block.values.get(flag))
        specs.append(
            dests.DestinationSpec(block.kind, settings, block.label, block.enabled, block.id)
        )
    return specs


def new_block(kind: str, index: int) -> Block | None:
    """An empty block of ``kind`` (None for an unknown kind)."""
    if kind not in dests.FIELDS:
        return None
    defaults = {"passive": True, "verify_tls": True} if kind in ("ftp", "ftps", "s3") else {}
    return Block(index, kind, values=defaults)


def try_block(block: Block, spec: dests.DestinationSpec, saved: TaskDestination | None) -> None:
    """Run "Test connection" for one block and put its one-line outcome on it."""
    outcome = dests.test_connection(spec, saved)
    block.outcome, block.outcome_ok = say(dests.outcome_line(outcome)), outcome.ok
