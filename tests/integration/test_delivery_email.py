"""E-mail delivery against a real SMTP server on loopback (aiosmtpd), with STARTTLS and
sign-in, the attachment's bytes read back from the message the server received."""

from __future__ import annotations

import email
import email.policy
import os
import ssl
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from impexmod.delivery import Destination, FeedMeta, InvalidDestination, check, deliver, validate
from tests.delivery_servers import cutting_proxy, free_port, self_signed, stalling_server

META = FeedMeta(exporter="google", run_id=12, download_url="https://shop.test/d/abc?sig=1")
PASSWORD = "smtp-pass-987"


class Inbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self):
        return [
            email.message_from_bytes(e.original_content, policy=email.policy.default)
            for e in self.envelopes
        ]


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"shop"
    # handled=False: aiosmtpd answers 535 itself (with True it would say nothing).
    return AuthResult(success=ok and auth_data.password == PASSWORD.encode(), handled=False)


@pytest.fixture
def cert(tmp_path):
    return self_signed(tmp_path)


@pytest.fixture
def smtp(cert):
    """aiosmtpd on loopback, STARTTLS offered (self-signed) and sign-in required after it."""
    inbox = Inbox()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*cert)
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        authenticator=authenticate,
        auth_require_tls=True,
        data_size_limit=50 * 1024 * 1024,
    )
    controller.start()
    inbox.port = port
    yield inbox
    controller.stop()


@pytest.fixture
def feed(tmp_path) -> Path:
    path = tmp_path / "feed.xml"
    path.write_bytes(b"<feed>" + os.urandom(300_000).hex().encode() + b"</feed>")
    return path


def settings(port, cert, **extra) -> dict:
    return {
        "host": "127.0.0.1",
        "port": port,
        "starttls": True,
        "ca_cert": cert[0].read_text(),
        "username": "shop",
        "password": PASSWORD,
        "from": "feeds@shop.test",
        "to": "partner@example.test, backup@example.test",
        "name_template": "{exporter}-{run}.{ext}",
    } | extra


def test_the_file_is_attached_over_starttls(smtp, cert, feed):
    destination = Destination("email", settings(smtp.port, cert))
    assert check(destination).ok
    outcome = deliver(destination, feed, META, timeout=10)
    assert outcome.ok, outcome.error
    assert outcome.remote_name == "google-12.xml"
    assert outcome.bytes == feed.stat().st_size
    (envelope,) = smtp.envelopes
    assert envelope.rcpt_tos == ["partner@example.test", "backup@example.test"]
    (mail,) = smtp.messages()
    assert mail["Subject"] == "google feed, run 12"
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_filename() == "google-12.xml"
    assert attachment.get_content_type() == "application/xml"
    assert attachment.get_payload(decode=True) == feed.read_bytes()


def test_over_the_size_limit_a_download_link_is_sent_instead(smtp, cert, feed):
    limited = settings(smtp.port, cert, max_attachment_bytes=1000)
    outcome = deliver(Destination("email", limited), feed, META, timeout=10)
    assert outcome.ok, outcome.error
    (mail,) = smtp.messages()
    assert list(mail.iter_attachments()) == []
    assert "https://shop.test/d/abc?sig=1" in mail.get_body().get_content()

    no_link = FeedMeta(exporter="google", run_id=12)
    outcome = deliver(Destination("email", limited), feed, no_link, timeout=10)
    assert not outcome.ok and not outcome.retryable
    assert "over the attachment limit (1000 bytes) and no download link" in outcome.error
    assert len(smtp.envelopes) == 1


def test_bad_credentials_fail_without_retry(smtp, cert, feed):
    wrong = settings(smtp.port, cert, password="wrong-pass-555")
    outcome = deliver(Destination("email", wrong), feed, META, timeout=10)
    assert not outcome.ok and not outcome.retryable
    assert outcome.error == f"email 127.0.0.1:{smtp.port}: authentication failed (535)"
    assert smtp.envelopes == []


def test_an_untrusted_certificate_is_refused(smtp, cert, feed, tmp_path):
    (tmp_path / "other").mkdir()
    other = self_signed(tmp_path / "other")
    outcome = deliver(Destination("email", settings(smtp.port, other)), feed, META, timeout=10)
    assert not outcome.ok and not outcome.retryable
    assert outcome.error.startswith("email: TLS certificate not trusted"), outcome.error


def test_a_refused_connection_is_retryable(cert, feed):
    outcome = deliver(Destination("email", settings(free_port(), cert)), feed, META, timeout=5)
    assert not outcome.ok and outcome.retryable
    assert outcome.error == "email: connection refused"


def test_a_stalled_server_times_out(cert, feed):
    with stalling_server() as port:
        start = time.monotonic()
        outcome = deliver(Destination("email", settings(port, cert)), feed, META, timeout=1.5)
        elapsed = time.monotonic() - start
    assert not outcome.ok and outcome.retryable
    assert outcome.error == f"email 127.0.0.1:{port}: no answer within 1.5 s (timed out)"
    assert elapsed < 1.5 + 2, elapsed


def test_a_connection_dropped_mid_message_delivers_nothing(smtp, cert, feed):
    with cutting_proxy(smtp.port, cut_after=100_000) as port:
        start = time.monotonic()
        outcome = deliver(Destination("email", settings(port, cert)), feed, META, timeout=5)
        elapsed = time.monotonic() - start
    assert not outcome.ok and outcome.retryable, outcome
    assert "connection lost" in outcome.error, outcome.error
    assert elapsed < 5 + 2
    assert smtp.envelopes == []


def test_settings_are_validated_naming_the_field(cert):
    good = settings(25, cert)
    with pytest.raises(InvalidDestination, match="^to: 'nobody' is not an e-mail address"):
        validate(Destination("email", dict(good, to="nobody")))
    with pytest.raises(InvalidDestination, match="^from: at least one"):
        validate(Destination("email", dict(good, **{"from": ""})))
    with pytest.raises(InvalidDestination, match="^max_attachment_bytes:"):
        validate(Destination("email", dict(good, max_attachment_bytes=-1)))
    with pytest.raises(InvalidDestination, match="^starttls:"):
        validate(Destination("email", dict(good, starttls="sometimes")))
