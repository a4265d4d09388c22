"""E-mail (smtplib): the file attached, or a download link instead when it is over the size
limit (the link is made by the caller, valid for a set time: ``FeedMeta.download_url``).

Atomic by the protocol: a message is accepted whole at the end of DATA, or not at all.
"""

from __future__ import annotations

import mimetypes
import re
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from impexmod.delivery.base import (
    DeliveryError,
    FeedMeta,
    InvalidDestination,
    flag,
    host,
    integer,
    render_name,
    text,
)
from impexmod.messages import msg

DEFAULT_LIMIT = 10 * 1024 * 1024  # attachments above 10 MiB are sent as a link
_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+$")


@dataclass(frozen=True)
class Config:
    host: str
    port: int
    starttls: bool
    ca_cert: str | None
    username: str | None
    password: str | None
    sender: str
    recipients: tuple[str, ...]
    subject: str
    max_attachment_bytes: int
    name_template: str | None


def _addresses(value, name: str) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else str(value or "").split(",")
    found = tuple(str(a).strip() for a in items if str(a).strip())
    if not found:
        raise InvalidDestination(name, msg("at least one e-mail address is required"))
    for address in found:
        if not _ADDRESS.match(address):
            raise InvalidDestination(
                name, msg("%(address)s is not an e-mail address", address=repr(address))
            )
    return found


def validate(kind: str, settings: dict) -> Config:
    """Checked settings; InvalidDestination naming the field otherwise."""
    ca_cert = text(settings, "ca_cert", required=False)
    if ca_cert:
        try:
            ssl.create_default_context(cadata=ca_cert)
        except (ssl.SSLError, ValueError):
            raise InvalidDestination("ca_cert", msg("is not a PEM certificate")) from None
    username = text(settings, "username", required=False)
    return Config(
        host=host(settings),
        port=integer(settings, "port", 25),
        starttls=flag(settings, "starttls"),
        ca_cert=ca_cert,
        username=username,
        password=str(settings.get("password") or "") if username else None,
        sender=_addresses(settings.get("from"), "from")[0],
        recipients=_addresses(settings.get("to"), "to"),
        subject=text(settings, "subject", required=False, default="{exporter} feed, run {run}"),
        max_attachment_bytes=integer(
            settings, "max_attachment_bytes", DEFAULT_LIMIT, low=0, high=100 * 1024 * 1024
        ),
        name_template=text(settings, "name_template", required=False),
    )


def remote_name(config: Config, path: Path, meta: FeedMeta) -> str:
    """The attachment's file name."""
    return render_name(config.name_template, path, meta)


def message(config: Config, path: Path, name: str, meta: FeedMeta) -> EmailMessage:
    """The e-mail: the file attached, or its download link when over the size limit."""
    size = path.stat().st_size
    mail = EmailMessage()
    mail["From"] = config.sender
    mail["To"] = ", ".join(config.recipients)
    try:
        mail["Subject"] = config.subject.format(exporter=meta.exporter, run=meta.run_id)
    except (KeyError, IndexError, ValueError):
        raise InvalidDestination("subject", msg("may only use {exporter} and {run}")) from None
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain="impexmod")
    if size > config.max_attachment_bytes:
        if not meta.download_url:
            raise DeliveryError(
                f"email: the file ({size} bytes) is over the attachment limit "
                f"({config.max_attachment_bytes} bytes) and no download link was given",
                False,
            )
        mail.set_content(
            f"The {meta.exporter} feed of run {meta.run_id} ({size} bytes) is too large to "
            f"attach. Download it here (the link expires):\n\n{meta.download_url}\n"
        )
        return mail
    mail.set_content(f"The {meta.exporter} feed of run {meta.run_id} is attached ({name}).\n")
    ctype = meta.content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    maintype, _, subtype = ctype.partition("/")
    mail.add_attachment(
        path.read_bytes(), maintype=maintype, subtype=subtype or "octet-stream", filename=name
    )
    return mail


def _where(config: Config) -> str:
    return f"email {config.host}:{config.port}"


def _failure(exc: Exception, where: str, timeout: float) -> Exception:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return DeliveryError(f"{where}: authentication failed ({exc.smtp_code})", False)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = ", ".join(sorted(exc.recipients))
        return DeliveryError(f"{where}: recipients refused: {refused}", False)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return DeliveryError(f"{where}: {exc}", False)
    if isinstance(exc, smtplib.SMTPResponseException):
        said = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else ""
        said = " ".join(said.split())[:200]
        return DeliveryError(
            f"{where}: the server answered {exc.smtp_code} {said}", 400 <= exc.smtp_code < 500
        )
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        if "timed out" in str(exc):
            return DeliveryError(f"{where}: no answer within {timeout:g} s (timed out)", True)
        return DeliveryError(f"{where}: connection lost", True)
    if isinstance(exc, smtplib.SMTPException):
        return DeliveryError(f"{where}: {exc}", True)
    return exc


def _connect(config: Config, timeout: float) -> smtplib.SMTP:
    # Connected by the constructor, which also keeps the host name for STARTTLS's checks.
    smtp = smtplib.SMTP(config.host, config.port, timeout=timeout)
    try:
        smtp.ehlo()
        if config.starttls:
            smtp.starttls(context=ssl.create_default_context(cadata=config.ca_cert or None))
            smtp.ehlo()
        if config.username:
            smtp.login(config.username, config.password or "")
        return smtp
    except BaseException:
        smtp.close()
        raise


def send(config: Config, path: Path, name: str, meta: FeedMeta, timeout: float) -> None:
    """Send the e-mail."""
    mail = message(config, path, name, meta)
    try:
        smtp = _connect(config, timeout)
        try:
            refused = smtp.send_message(mail, config.sender, list(config.recipients))
            if refused:
                raise DeliveryError(
                    f"{_where(config)}: recipients refused: {', '.join(sorted(refused))}", False
                )
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass  # accepted at the end of DATA: a failed QUIT changes nothing
        finally:
            smtp.close()
    except (TimeoutError, smtplib.SMTPException) as exc:
        raise _failure(exc, _where(config), timeout) from None


def check(config: Config, timeout: float) -> None:
    """Connect, STARTTLS and sign in as configured, then say goodbye."""
    try:
        smtp = _connect(config, timeout)
        try:
            smtp.noop()
            smtp.quit()
        finally:
            smtp.close()
    except smtplib.SMTPException as exc:
        raise _failure(exc, _where(config), timeout) from None
