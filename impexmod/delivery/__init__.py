"""Delivery of one finished feed file to one destination (issue 13 item 2, the transport).

The caller (the run lifecycle) makes a :class:`Destination` with its settings decrypted, and
calls :func:`deliver`; it never raises, and returns a :class:`Delivery` record to store, whose
``retryable`` says whether to try again later (the caller's retry machinery). :func:`check` is
the panel's "Test connection"; :func:`validate` checks settings when they are saved.
See docs/delivery.md.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from types import ModuleType

from impexmod.delivery.base import (
    DEFAULT_TEMPLATE,
    Delivery,
    DeliveryError,
    Destination,
    FeedMeta,
    InvalidDestination,
    now,
    render_name,
    scrub,
)
from impexmod.messages import msg

__all__ = [
    "DEFAULT_TEMPLATE",
    "DEFAULT_TIMEOUT",
    "KINDS",
    "Delivery",
    "DeliveryError",
    "Destination",
    "FeedMeta",
    "InvalidDestination",
    "check",
    "deliver",
    "render_name",
    "validate",
]

DEFAULT_TIMEOUT = 30.0
KINDS = ("sftp", "ftp", "ftps", "email", "webhook", "s3")


def _transport(kind: str) -> ModuleType:
    # Imported on use: paramiko and boto3 are loaded only by the workers that need them.
    if kind == "sftp":
        from impexmod.delivery import sftp as module
    elif kind in ("ftp", "ftps"):
        from impexmod.delivery import ftp as module
    elif kind == "email":
        from impexmod.delivery import mail as module
    elif kind == "webhook":
        from impexmod.delivery import webhook as module
    elif kind == "s3":
        from impexmod.delivery import s3 as module
    else:
        raise InvalidDestination(
            "kind", msg("%(kind)s is not one of %(kinds)s", kind=repr(kind), kinds=", ".join(KINDS))
        )
    return module


def validate(destination: Destination) -> object:
    """The destination's checked settings (a transport's config); InvalidDestination naming
    the field at fault otherwise."""
    if not isinstance(destination.settings, dict):
        raise InvalidDestination("settings", msg("must be a mapping"))
    module = _transport(destination.kind)
    return module.validate(destination.kind, destination.settings)


def explain(exc: BaseException, where: str, timeout: float) -> DeliveryError:
    """A one-line DeliveryError for a network exception (retryable unless it cannot help)."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, socket.timeout | TimeoutError):
        return DeliveryError(f"{where}: no answer within {timeout:g} s (timed out)", True)
    if isinstance(exc, ConnectionRefusedError):
        return DeliveryError(f"{where}: connection refused", True)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DeliveryError(f"{where}: TLS certificate not trusted ({exc.verify_message})", False)
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return DeliveryError(f"{where}: connection lost (TLS cut short)", True)
    if isinstance(exc, ssl.SSLError):
        return DeliveryError(f"{where}: TLS failed ({exc.reason or exc})", True)
    if isinstance(exc, socket.gaierror):
        return DeliveryError(f"{where}: the host name does not resolve ({exc.strerror})", True)
    if isinstance(exc, ConnectionError | EOFError):
        return DeliveryError(f"{where}: connection lost ({type(exc).__name__})", True)
    if isinstance(exc, OSError):
        return DeliveryError(f"{where}: {exc.strerror or exc}", True)
    return DeliveryError(f"{where}: {type(exc).__name__}: {exc}", False)


def deliver(
    destination: Destination,
    path: str | Path,
    meta: FeedMeta,
    timeout: float = DEFAULT_TIMEOUT,
) -> Delivery:
    """Deliver the file at ``path`` to ``destination``; never raises.

    ``timeout`` bounds every network wait (connecting, each answer, each read or write): a dead
    or stalled server fails the delivery after about that long; a transfer that keeps moving
    is not cut. Where the protocol allows, the file is uploaded under a temporary name and
    renamed over the final one, so the final name only ever holds a whole file.
    """
    path = Path(path)
    record = Delivery(kind=destination.kind, started_at=now())
    settings = destination.settings if isinstance(destination.settings, dict) else {}
    try:
        config = validate(destination)
        module = _transport(destination.kind)
        record.remote_name = module.remote_name(config, path, meta)
        record.bytes = path.stat().st_size
        record.learned = module.send(config, path, record.remote_name, meta, timeout) or None
        record.ok = True
    except InvalidDestination as exc:
        record.error, record.retryable = scrub(f"invalid destination: {exc}", settings), False
    except FileNotFoundError:
        record.error, record.retryable = f"the feed file {path.name} does not exist", False
    except Exception as exc:  # every failure is an outcome, never a crash
        failure = explain(exc, destination.kind, timeout)
        record.error, record.retryable = scrub(str(failure), settings), failure.retryable
    record.ended_at = now()
    return record


def check(destination: Destination, timeout: float = 10.0) -> Delivery:
    """The panel's "Test connection": validate, connect, sign in and look at the target (the
    folder, the bucket...) without writing anything; the outcome says what failed."""
    record = Delivery(kind=destination.kind, started_at=now())
    settings = destination.settings if isinstance(destination.settings, dict) else {}
    try:
        config = validate(destination)
        record.learned = _transport(destination.kind).check(config, timeout) or None
        record.ok = True
    except InvalidDestination as exc:
        record.error, record.retryable = scrub(f"invalid destination: {exc}", settings), False
    except Exception as exc:
        failure = explain(exc, destination.kind, timeout)
        record.error, record.retryable = scrub(str(failure), settings), failure.retryable
    record.ended_at = now()
    return record
