"""Delivery channels: e-mail through SMTP and signed webhook POSTs. Each raises on failure."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

from impexmod.delivery.signing import SIGNATURE_HEADER, sign


def post_webhook(
    url: str, body: bytes, secret: str | None, event: str, delivery_id: int, timeout: float
) -> None:
    """POST a JSON body; raise unless the endpoint answers 2xx."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "impexmod-webhook",
        "X-Impexmod-Event": event,
        "X-Impexmod-Delivery": str(delivery_id),
    }
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    # No redirects: a signed body must not be replayed to wherever a 30x points.
    # Through the importers' address guard: a merchant's webhook URL must not reach the
    # server's own network either (and the answer's text is shown back on failure).
    from impexmod.importing import netguard

    with netguard.session() as guarded:
        response = guarded.post(
            url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        )
    if not 200 <= response.status_code < 300:
        raise RuntimeError(f"HTTP {response.status_code} from {url}: {response.text[:200]}")


def send_email(config: Any, recipients: list[str], subject: str, body: str) -> None:
    """Send a plain-text e-mail through the configured SMTP server."""
    host = config.get("SMTP_HOST")
    if not host:
        raise RuntimeError("IMPEXMOD_SMTP_HOST is not set: e-mail notifications are off")
    message = EmailMessage()
    message["From"] = config.get("SMTP_FROM") or "impexmod@localhost"
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message.set_content(body)
    timeout = float(config.get("NOTIFY_TIMEOUT", 10))
    with smtplib.SMTP(str(host), int(config.get("SMTP_PORT") or 25), timeout=timeout) as smtp:
        if config.get("SMTP_STARTTLS"):
            smtp.starttls(context=ssl.create_default_context())
        if config.get("SMTP_USERNAME"):
            smtp.login(str(config["SMTP_USERNAME"]), str(config.get("SMTP_PASSWORD") or ""))
        smtp.send_message(message)
