"""An exporter's destinations: which fields each kind has, checked, saved and described.

Secret settings (passwords, keys, tokens) are kept apart from the others
(TaskDestination.set_secrets) and never described back: a blank secret on an update keeps the
stored one. Delivering them after each run is impexmod.dispatch.deliveries'.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import current_app

from impexmod import delivery
from impexmod.delivery.base import now
from impexmod.extensions import db
from impexmod.messages import msg
from impexmod.models import Task, TaskDestination
from impexmod.runs.tasks import InvalidTask, describe_destination, destinations_of  # noqa: F401

KINDS = delivery.KINDS
# The settings each kind takes, in the order the panel shows them (docs/delivery.md).
FIELDS: dict[str, tuple[str, ...]] = {
    "sftp": (
        "host",
        "port",
        "username",
        "password",
        "private_key",
        "passphrase",
        "host_key",
        "accept_new_host_key",
        "directory",
        "name_template",
    ),
    "ftp": ("host", "port", "username", "password", "directory", "passive", "name_template"),
    "ftps": (
        "host",
        "port",
        "username",
        "password",
        "directory",
        "passive",
        "ca_cert",
        "name_template",
    ),
    "email": (
        "host",
        "port",
        "starttls",
        "ca_cert",
        "username",
        "password",
        "from",
        "to",
        "subject",
        "max_attachment_bytes",
        "name_template",
    ),
    "webhook": ("url", "secret", "name_template"),
    "s3": (
        "bucket",
        "prefix",
        "endpoint_url",
        "region",
        "access_key_id",
        "secret_access_key",
        "session_token",
        "path_style",
        "verify_tls",
        "multipart_threshold_mb",
        "name_template",
    ),
}
SECRETS = frozenset(
    ("password", "private_key", "passphrase", "secret", "secret_access_key", "session_token")
)
FLAGS = frozenset(("accept_new_host_key", "passive", "starttls", "path_style", "verify_tls"))
# Several lines of text (PEM blocks).
LONG = frozenset(("private_key", "ca_cert"))
# Settings whose change means another server: what was learned from the old one is dropped.
_SERVER = ("host", "port")


@dataclass
class DestinationSpec:
    """A destination as a form or the CLI gives it: ``id`` for an existing one, settings
    with the secrets among them (blank: keep the stored one)."""

    kind: str
    settings: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    enabled: bool = True
    id: int | None = None


def _clean(kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    if kind not in FIELDS:
        raise InvalidTask(
            "destination",
            msg("kind %(kind)s is not one of %(kinds)s", kind=repr(kind), kinds=", ".join(KINDS)),
        )
    cleaned = {}
    for key, value in (settings or {}).items():
        if key not in FIELDS[kind]:
            raise InvalidTask(
                "destination",
                msg(
                    "%(kind)s: no setting %(key)s; it takes %(known)s",
                    kind=kind,
                    key=repr(key),
                    known=", ".join(FIELDS[kind]),
                ),
            )
        if isinstance(value, str):
            value = value.strip() if key not in LONG else value.strip() + "\n"
            if value in ("", "\n"):
                continue
        if value is None:
            continue
        cleaned[key] = value
    return cleaned


def default_label(kind: str, settings: dict[str, Any]) -> str:
    """A label naming where the destination points: ``sftp files.example.com``..."""
    where = settings.get("host") or settings.get("bucket") or settings.get("url") or ""
    if kind == "email" and settings.get("to"):
        where = settings["to"] if isinstance(settings["to"], str) else ", ".join(settings["to"])
    return f"{kind} {where}".strip()[:128]


@dataclass
class _Checked:
    spec: DestinationSpec
    settings: dict[str, Any]
    secrets: dict[str, str]
    label: str


def check(spec: DestinationSpec, existing: TaskDestination | None = None) -> _Checked:
    """Check one destination (blank secrets taken from ``existing``); InvalidTask naming the
    destination and its setting at fault otherwise."""
    kind = (spec.kind or "").strip().lower()
    cleaned = _clean(kind, spec.settings)
    secrets = {k: v for k, v in cleaned.items() if k in SECRETS}
    plain = {k: v for k, v in cleaned.items() if k not in SECRETS}
    if existing is not None and existing.kind == kind:
        secrets = {**existing.get_secrets(), **secrets}
    label = (spec.label or "").strip()[:128] or default_label(kind, plain)
    learned = existing.learned if existing is not None and existing.kind == kind else None
    try:
        delivery.validate(delivery.Destination(kind, {**(learned or {}), **plain, **secrets}))
    except delivery.InvalidDestination as exc:
        # "label: setting: reason", the reason said in the panel's language.
        raise InvalidTask(
            "destination",
            msg(
                "%(label)s: %(setting)s: %(reason)s",
                label=label,
                setting=exc.field,
                reason=exc.message,
            ),
        ) from None
    checked = DestinationSpec(kind, cleaned, label, spec.enabled, spec.id)
    return _Checked(checked, plain, secrets, label)


def _apply(row: TaskDestination, checked: _Checked, position: int) -> None:
    before = row.settings or {}
    moved = any(before.get(k) != checked.settings.get(k) for k in _SERVER)
    if row.kind != checked.spec.kind or moved:
        row.learned = None
    row.kind, row.label, row.position = checked.spec.kind, checked.label, position
    row.enabled = bool(checked.spec.enabled)
    row.settings = checked.settings
    row.set_secrets(checked.secrets)


def set_destinations(task: Task, specs: list[DestinationSpec], commit: bool = True) -> None:
    """Make ``specs`` the task's destinations: those with an id are updated, those without
    are added, the others removed. All are checked first: nothing changes if one is wrong."""
    current = {d.id: d for d in destinations_of(task)}
    checked = []
    for spec in specs:
        existing = current.get(spec.id) if spec.id is not None else None
        if spec.id is not None and existing is None:
            raise InvalidTask(
                "destination", msg("no destination %(id)s on this exporter", id=spec.id)
            )
        checked.append(check(spec, existing))
    kept = {c.spec.id for c in checked if c.spec.id is not None}
    for dest_id, row in current.items():
        if dest_id not in kept:
            db.session.delete(row)
    for position, item in enumerate(checked):
        row = current.get(item.spec.id) if item.spec.id is not None else None
        if row is None:
            row = TaskDestination(task_id=task.id)
            db.session.add(row)
        _apply(row, item, position)
    if commit:
        db.session.commit()


def add_destination(task: Task, spec: DestinationSpec) -> TaskDestination:
    """Add one destination after the task's others."""
    item = check(spec)
    row = TaskDestination(task_id=task.id)
    _apply(row, item, len(destinations_of(task)))
    db.session.add(row)
    db.session.commit()
    return row


def remove_destination(task: Task, destination_id: int) -> None:
    """Remove one of the task's destinations (its past deliveries stay, unlinked)."""
    row = db.session.get(TaskDestination, destination_id)
    if row is None or row.task_id != task.id:
        raise InvalidTask(
            "destination", msg("no destination %(id)s on this exporter", id=destination_id)
        )
    db.session.delete(row)
    db.session.commit()


def test_connection(
    spec: DestinationSpec, existing: TaskDestination | None = None
) -> delivery.Delivery:
    """Connect and sign in without writing (``delivery.check``); an SFTP host key accepted on
    first use is saved with ``existing``. Invalid settings are a failed outcome too."""
    try:
        item = check(spec, existing)
    except InvalidTask as exc:
        outcome = delivery.Delivery(kind=spec.kind or "?", started_at=now())
        outcome.error = exc.message
        outcome.ended_at = outcome.started_at
        return outcome
    learned = existing.learned if existing is not None and existing.kind == item.spec.kind else {}
    settings = {**(learned or {}), **item.settings, **item.secrets}
    timeout = float(current_app.config.get("DELIVERY_CHECK_TIMEOUT", 10))
    outcome = delivery.check(delivery.Destination(item.spec.kind, settings), timeout=timeout)
    if outcome.ok and outcome.learned and existing is not None:
        existing.learned = {**(existing.learned or {}), **outcome.learned}
        db.session.commit()
    return outcome


def outcome_line(outcome: delivery.Delivery) -> str:
    """A "Test connection" outcome in one line."""
    if not outcome.ok:
        return msg("Failed: %(error)s", error=outcome.error)
    if outcome.learned and outcome.learned.get("host_key"):
        return msg(
            "Connected: the destination answers and accepts the credentials; "
            "host key accepted: %(key)s",
            key=outcome.learned["host_key"][:80],
        )
    return msg("Connected: the destination answers and accepts the credentials")
