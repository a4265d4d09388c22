"""Webhook: a POST of the run's metadata as JSON (run id, exporter, bytes, SHA-256, file name
and the caller's download link), signed like the notification webhooks
(:func:`impexmod.delivery.signing.sign`: ``X-Impexmod-Signature: sha256=<HMAC-SHA256 hex>``
of the body), through the importers' address guard (:func:`impexmod.importing.netguard.session`).

Nothing is uploaded, so there is nothing to make atomic; redirects are not followed (a signed
body is not replayed to wherever a 30x points).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests

from impexmod.delivery.base import (
    DeliveryError,
    FeedMeta,
    InvalidDestination,
    now,
    render_name,
    text,
)
from impexmod.delivery.signing import SIGNATURE_HEADER, sign
from impexmod.importing import netguard
from impexmod.messages import msg

EVENT = "feed.delivered"
RETRY_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True)
class Config:
    url: str
    secret: str
    name_template: str | None

    @property
    def where(self) -> str:
        """The URL without its query (which may hold a token), for messages."""
        parts = urlsplit(self.url)
        return f"webhook {parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def validate(kind: str, settings: dict) -> Config:
    """Checked settings; InvalidDestination naming the field otherwise."""
    url = text(settings, "url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidDestination("url", msg("must be an http:// or https:// URL with a host"))
    try:
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise InvalidDestination("url", msg("has a port that is not a number")) from None
    return Config(
        url=url,
        secret=text(settings, "secret"),
        name_template=text(settings, "name_template", required=False),
    )


def remote_name(config: Config, path: Path, meta: FeedMeta) -> str:
    """The file name the payload announces."""
    return render_name(config.name_template, path, meta)


def payload(path: Path, name: str, meta: FeedMeta) -> dict:
    """The JSON body: what the receiver needs to fetch and check the file."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return {
        "event": EVENT,
        "exporter": meta.exporter,
        "run_id": meta.run_id,
        "file_name": name,
        "bytes": size,
        "sha256": digest.hexdigest(),
        "download_url": meta.download_url,
        "generated_at": (meta.date or now()).isoformat(),
    }


def _post(config: Config, body: bytes, event: str, timeout: float) -> requests.Response:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "impexmod-webhook",
        "X-Impexmod-Event": event,
        "X-Impexmod-Delivery": uuid.uuid4().hex,  # the same for none: receivers may dedupe
        SIGNATURE_HEADER: sign(config.secret, body),
    }
    try:
        with netguard.session() as guarded:
            return guarded.post(
                config.url,
                data=body,
                headers=headers,
                timeout=(timeout, timeout),
                allow_redirects=False,
            )
    except requests.Timeout:
        said = f"no answer within {timeout:g} s (timed out)"
        raise DeliveryError(f"{config.where}: {said}", True) from None
    except requests.ConnectionError as exc:
        blocked = _blocked(exc)
        if blocked is not None:
            raise DeliveryError(f"{config.where}: {blocked}", False) from None
        said = "connection refused" if _refused(exc) else "connection lost"
        raise DeliveryError(f"{config.where}: {said}", True) from None
    except netguard.BlockedAddress as exc:
        raise DeliveryError(f"{config.where}: {exc}", False) from None
    except requests.RequestException as exc:
        raise DeliveryError(f"{config.where}: {type(exc).__name__}", True) from None


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        for arg in getattr(exc, "args", ()):
            if isinstance(arg, BaseException):
                yield from _chain(arg)
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "reason", None)


def _blocked(exc: BaseException) -> netguard.BlockedAddress | None:
    return next((e for e in _chain(exc) if isinstance(e, netguard.BlockedAddress)), None)


def _refused(exc: BaseException) -> bool:
    return any(isinstance(e, ConnectionRefusedError) for e in _chain(exc)) or (
        "Connection refused" in str(exc)
    )


def _answer(config: Config, response: requests.Response) -> None:
    code = response.status_code
    if 200 <= code < 300:
        return
    said = " ".join(response.text[:120].split())
    retryable = code >= 500 or code in RETRY_STATUSES
    raise DeliveryError(f"{config.where}: HTTP {code}{': ' + said if said else ''}", retryable)


def send(config: Config, path: Path, name: str, meta: FeedMeta, timeout: float) -> None:
    """POST the signed metadata; a 2xx answer is success."""
    body = json.dumps(payload(path, name, meta), sort_keys=True).encode()
    with _post(config, body, EVENT, timeout) as response:
        _answer(config, response)


def check(config: Config, timeout: float) -> None:
    """POST a signed ``ping`` event; the receiver should answer 2xx."""
    body = json.dumps({"event": "ping", "generated_at": now().isoformat()}).encode()
    with _post(config, body, "ping", timeout) as response:
        _answer(config, response)
