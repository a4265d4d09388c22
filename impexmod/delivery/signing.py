"""Webhook signatures: one scheme for delivery webhooks and notification webhooks, so a
receiver checks both the same way (``X-Impexmod-Signature: sha256=<HMAC-SHA256 hex>``)."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Impexmod-Signature"


def sign(secret: str, body: bytes) -> str:
    """The signature header value of a webhook body: ``sha256=<hex HMAC-SHA256>``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` (for receivers, and tests)."""
    return bool(header) and hmac.compare_digest(sign(secret, body), header)
