"""The values of delivery: a destination, the metadata of a feed file, the outcome record.

A transport raises :class:`DeliveryError` (a one-line message and whether a retry may help);
:func:`impexmod.delivery.deliver` turns that, or any other exception, into a :class:`Delivery`.
"""

from __future__ import annotations

import posixpath
import re
import secrets as _secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from impexmod.messages import msg

DEFAULT_TEMPLATE = "{exporter}-{date:%Y%m%d-%H%M%S}-{run}.{ext}"
# Characters kept in a remote name: what every server and file system accepts.
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class InvalidDestination(ValueError):
    """A destination whose settings cannot work; ``field`` names the setting at fault,
    ``message`` says why (in English; a Message the panel translates, impexmod.messages)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class DeliveryError(Exception):
    """A failed delivery, said in one line; ``retryable`` when trying again later may work."""

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Destination:
    """Where a feed goes: a kind (``sftp``, ``ftp``, ``ftps``, ``email``, ``webhook``, ``s3``)
    and its settings, secrets already decrypted by the caller."""

    kind: str
    settings: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # never a secret in a log line or a traceback
        return f"Destination(kind={self.kind!r})"


@dataclass(frozen=True)
class FeedMeta:
    """What a delivery says about the file: the exporter, the run, when, and (for e-mail over
    the size limit and webhooks) a download link the caller made, valid for a set time."""

    exporter: str
    run_id: int | str
    date: datetime | None = None
    download_url: str | None = None
    content_type: str | None = None


@dataclass
class Delivery:
    """The outcome of one delivery of one file to one destination."""

    kind: str
    started_at: datetime
    ended_at: datetime | None = None
    ok: bool = False
    bytes: int = 0
    remote_name: str | None = None
    error: str | None = None
    retryable: bool = False
    # Settings the caller should save with the destination: an SFTP host key accepted on
    # first use ({"host_key": "ssh-ed25519 AAAA..."}), so later deliveries check it.
    learned: dict[str, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The record as plain values (datetimes as ISO 8601), for JSON or a database row."""
        return {
            "kind": self.kind,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "ok": self.ok,
            "bytes": self.bytes,
            "remote_name": self.remote_name,
            "error": self.error,
            "retryable": self.retryable,
            "learned": self.learned,
        }


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def extension(path: Path) -> str:
    """The file's extension as a template's ``{ext}``: ``xml``, ``csv.gz``..."""
    suffixes = [s.lstrip(".") for s in path.suffixes[-2:]]
    if len(suffixes) == 2 and suffixes[1] not in ("gz", "zip", "bz2", "xz"):
        suffixes = suffixes[1:]
    return ".".join(suffixes) or "dat"


def _safe(value: Any) -> str:
    return re.sub(r"\.{2,}", ".", _UNSAFE.sub("_", str(value))).strip("._") or "_"


class _SafeDate:
    """``{date:%Y%m%d}`` in a template: formatted, then made safe like every other field
    (but for the ``/`` of the format itself: ``{date:%Y/%m}`` makes folders)."""

    def __init__(self, when: datetime):
        self.when = when

    def __format__(self, spec: str) -> str:
        text = self.when.strftime(spec or "%Y%m%d-%H%M%S")
        return "/".join(_safe(part) for part in text.split("/"))


def render_name(template: str | None, path: Path, meta: FeedMeta) -> str:
    """The remote file name of ``path`` from a template of ``{exporter}``, ``{run}``,
    ``{date:<strftime>}``, ``{ext}`` and ``{name}`` (the local file name).

    Every field is reduced to letters, digits, ``.``, ``_`` and ``-``, so no value can add a
    ``/`` or ``..``; the template's own ``/`` make sub-folders (for S3 keys), but a result that
    is absolute, climbs with ``..`` or names a hidden file is refused (InvalidDestination).
    """
    template = template or DEFAULT_TEMPLATE
    fields = {
        "exporter": _safe(meta.exporter),
        "run": _safe(meta.run_id),
        "date": _SafeDate(meta.date or now()),
        "ext": _safe(extension(path)),
        "name": _safe(path.name),
    }
    try:
        name = template.format(**fields)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise InvalidDestination(
            "name_template",
            msg(
                "%(template)s is not a template of {exporter}, {run}, {date:%%Y%%m%%d}, "
                "{ext}, {name} (%(error)s)",
                template=repr(template),
                error=f"{type(exc).__name__}: {exc}",
            ),
        ) from None
    parts = name.split("/")
    if (
        name.startswith("/")
        or "\\" in name
        or any(p in ("", ".", "..") for p in parts)
        or any(p.startswith(".") for p in parts)
        or posixpath.normpath(name) != name
    ):
        raise InvalidDestination(
            "name_template",
            msg(
                "%(template)s gives %(name)s, which is not a safe relative name",
                template=repr(template),
                name=repr(name),
            ),
        )
    return name


def temporary_name(final: str) -> str:
    """A hidden name beside ``final`` to upload under before the rename."""
    folder, base = posixpath.split(final)
    return posixpath.join(folder, f".{base}.part-{_secrets.token_hex(4)}")


# -- settings validation ---------------------------------------------------------------------


def text(settings: dict, name: str, required: bool = True, default: str | None = None) -> str:
    """A string setting, stripped; InvalidDestination if required and missing."""
    value = settings.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidDestination(name, msg("is required"))
        return default  # type: ignore[return-value]
    if not isinstance(value, str):
        raise InvalidDestination(name, msg("must be text, not %(type)s", type=type(value).__name__))
    return value.strip()


def integer(settings: dict, name: str, default: int, low: int = 1, high: int = 65535) -> int:
    """An integer setting within [low, high]."""
    value = settings.get(name, default)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidDestination(
            name, msg("%(value)s is not a whole number", value=repr(value))
        ) from None
    if isinstance(value, bool) or not low <= number <= high:
        raise InvalidDestination(
            name,
            msg(
                "%(value)s is not between %(low)s and %(high)s",
                value=repr(value),
                low=low,
                high=high,
            ),
        )
    return number


def flag(settings: dict, name: str, default: bool = False) -> bool:
    """A boolean setting (true/false, yes/no, 1/0, on/off)."""
    value = settings.get(name, default)
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise InvalidDestination(name, msg("%(value)s is not true or false", value=repr(value)))


def host(settings: dict, name: str = "host") -> str:
    """A host name or address: no scheme, path, spaces or user part."""
    value = text(settings, name)
    if re.search(r"[\s/@?#]", value) or value.startswith("-"):
        raise InvalidDestination(
            name, msg("%(value)s is not a host name or address", value=repr(value))
        )
    return value.strip("[]")


def folder(settings: dict, name: str = "directory") -> str:
    """A remote folder ('' for the login folder); no ``..`` part."""
    value = text(settings, name, required=False, default="")
    if "\x00" in value or any(p == ".." for p in value.split("/")):
        raise InvalidDestination(name, msg("%(value)s must not contain '..'", value=repr(value)))
    return value.rstrip("/") if value not in ("/",) else value


def scrub(message: str, settings: dict) -> str:
    """One line, no secret of the settings in it, at most 300 characters."""
    line = " ".join(str(message).split())
    for key in (
        "password",
        "private_key",
        "passphrase",
        "secret",
        "secret_access_key",
        "session_token",
    ):
        value = settings.get(key)
        if isinstance(value, str) and len(value) >= 3:
            line = line.replace(value, "***")
    return line[:300] or "failed (no message)"
