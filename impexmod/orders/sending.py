"""Sending one document of orders to an order exporter's HTTP endpoint: a signed POST, retried
with backoff until it is answered 2xx or the attempts are spent, each attempt told in the run
log with its response code and the first characters of the body.

Each attempt is bounded: connecting and getting the answer together take at most ``timeout``
seconds (urllib3's total timeout), and the body excerpt is read within what is left of it. The
addresses reached go through the importers' guard (impexmod.importing.netguard), as webhooks do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from flask import current_app
from urllib3.util import Timeout

from impexmod.delivery.signing import SIGNATURE_HEADER, sign
from impexmod.importing import netguard

EXCERPT = 200
# The longest wait between two attempts, whatever the backoff says.
MAX_BACKOFF = 60.0


@dataclass
class Request:
    """What one send is: the document, its headers but the signature, and where it goes."""

    url: str
    secret: str
    body: bytes
    headers: dict[str, str]
    what: str  # "order ORD1" or "batch of 10 orders": for the log


@dataclass
class Attempt:
    """How one attempt went."""

    number: int
    ok: bool
    status: int | None  # the response code, None when nothing answered
    said: str  # the body excerpt, or why nothing answered
    retryable: bool = True

    def describe(self) -> str:
        """One line: ``HTTP 500: body...`` or ``no answer within 5 s (timed out)``."""
        if self.status is None:
            return self.said
        return f"HTTP {self.status}" + (f": {self.said}" if self.said else "")


@dataclass
class Outcome:
    """How a send ended, after all its attempts."""

    attempts: list[Attempt] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the last attempt was answered 2xx."""
        return bool(self.attempts) and self.attempts[-1].ok

    @property
    def last(self) -> Attempt:
        """The last attempt."""
        return self.attempts[-1]


def excerpt(data: bytes | str) -> str:
    """The first characters of a body, on one line, printable only."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = "".join(c if c.isprintable() else " " for c in text[: EXCERPT * 2])
    return " ".join(text.split())[:EXCERPT]


def where(url: str) -> str:
    """The URL without its query or user part, for messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _refused(exc: BaseException) -> bool:
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError) or "Connection refused" in str(current):
            return True
        if isinstance(current, netguard.BlockedAddress):
            return False
        stack.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        stack.extend(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))
    return False


def _blocked(exc: BaseException) -> netguard.BlockedAddress | None:
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, netguard.BlockedAddress):
            return current
        stack.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        stack.extend(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))
    return None


def attempt(request: Request, number: int, timeout: float) -> Attempt:
    """POST the document once; never longer than about ``timeout`` seconds."""
    headers = {**request.headers, SIGNATURE_HEADER: sign(request.secret, request.body)}
    started = time.monotonic()
    try:
        with netguard.session() as guarded:
            response = guarded.post(
                request.url,
                data=request.body,
                headers=headers,
                timeout=Timeout(total=timeout),
                allow_redirects=False,
                stream=True,
            )
            with response:
                body = b""
                try:
                    left = timeout - (time.monotonic() - started)
                    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
                    if left > 0:
                        if sock is not None:  # the body too within what is left
                            sock.settimeout(left)
                        body = response.raw.read(EXCERPT * 4, decode_content=True) or b""
                except Exception:  # the excerpt is a courtesy: the code decides
                    pass
                code = response.status_code
                return Attempt(number, 200 <= code < 300, code, excerpt(body))
    except requests.Timeout:
        return Attempt(number, False, None, f"no answer within {timeout:g} s (timed out)")
    except requests.ConnectionError as exc:
        blocked = _blocked(exc)
        if blocked is not None:
            return Attempt(number, False, None, f"refused address: {blocked}", retryable=False)
        said = "connection refused" if _refused(exc) else "connection lost"
        return Attempt(number, False, None, said)
    except netguard.BlockedAddress as exc:
        return Attempt(number, False, None, f"refused address: {exc}", retryable=False)
    except requests.RequestException as exc:
        return Attempt(number, False, None, f"{type(exc).__name__}: {excerpt(str(exc))}")


def backoff(number: int) -> float:
    """Seconds to wait after failed attempt ``number`` (1, 2, ...) before the next one."""
    base = float(current_app.config.get("ORDER_EXPORT_BACKOFF", 1.0))
    return min(base * 2 ** (number - 1), MAX_BACKOFF)


def send(
    request: Request,
    *,
    timeout: float,
    attempts: int,
    log: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """POST the document until it is answered 2xx, at most ``attempts`` times, waiting longer
    after each failure; every attempt is told to ``log``."""
    outcome = Outcome()
    for number in range(1, attempts + 1):
        tried = attempt(request, number, timeout)
        outcome.attempts.append(tried)
        log(
            f"{request.what} to {where(request.url)}: attempt {number}/{attempts}: "
            f"{tried.describe()}"
        )
        if tried.ok or not tried.retryable:
            break
        if number < attempts:
            sleep(backoff(number))
    return outcome
