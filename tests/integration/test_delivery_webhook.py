"""Webhook delivery against a real HTTP server on loopback: the signed JSON metadata is
checked with the receivers' verify(); loopback is allowed by the test configuration only."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from impexmod.delivery import Destination, FeedMeta, InvalidDestination, check, deliver, validate
from impexmod.delivery.signing import SIGNATURE_HEADER, verify
from tests.delivery_servers import free_port, stalling_server

SECRET = "hook-secret-xyz"
META = FeedMeta(exporter="google", run_id=5, download_url="https://shop.test/d/5?sig=abc")


class Receiver:
    """What the server received, and what it answers (a status, or dropping the connection)."""

    def __init__(self):
        self.calls: list[tuple[bytes, dict]] = []
        self.status = 204
        self.drop = False


@contextmanager
def http_server():
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            length = int(self.headers["Content-Length"])
            if receiver.drop:
                self.rfile.read(min(length, 10))
                self.close_connection = True
                self.connection.close()  # gone before any answer
                return
            body = self.rfile.read(length)
            receiver.calls.append((body, dict(self.headers)))
            self.send_response(receiver.status)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        receiver.url = f"http://127.0.0.1:{server.server_port}/hooks/feed?token=t0k3n"
        yield receiver
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


@pytest.fixture
def hook(app):  # the app: its IMPORT_ALLOWED_NETWORKS lets the guard reach loopback
    with http_server() as receiver:
        yield receiver


@pytest.fixture
def feed(tmp_path) -> Path:
    path = tmp_path / "feed.xml"
    path.write_bytes(b"<feed>" + b"x" * 5000 + b"</feed>")
    return path


def settings(url, **extra) -> dict:
    return {"url": url, "secret": SECRET, "name_template": "{exporter}-{run}.{ext}"} | extra


def test_a_signed_post_carries_the_runs_metadata(hook, feed):
    outcome = deliver(Destination("webhook", settings(hook.url)), feed, META, timeout=5)
    assert outcome.ok, outcome.error
    assert outcome.remote_name == "google-5.xml" and outcome.bytes == feed.stat().st_size
    ((body, headers),) = hook.calls
    assert verify(SECRET, body, headers[SIGNATURE_HEADER])
    assert not verify("another-secret", body, headers[SIGNATURE_HEADER])
    assert headers["X-Impexmod-Event"] == "feed.delivered"
    sent = json.loads(body)
    assert sent["exporter"] == "google" and sent["run_id"] == 5
    assert sent["file_name"] == "google-5.xml"
    assert sent["bytes"] == feed.stat().st_size
    assert sent["sha256"] == hashlib.sha256(feed.read_bytes()).hexdigest()
    assert sent["download_url"] == "https://shop.test/d/5?sig=abc"


def test_check_sends_a_signed_ping(hook):
    assert check(Destination("webhook", settings(hook.url))).ok
    ((body, headers),) = hook.calls
    assert json.loads(body)["event"] == "ping" and verify(SECRET, body, headers[SIGNATURE_HEADER])


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (503, True), (429, True)])
def test_a_server_error_is_retryable(hook, feed, status, retryable):
    hook.status = status
    outcome = deliver(Destination("webhook", settings(hook.url)), feed, META, timeout=5)
    assert not outcome.ok and outcome.retryable is retryable
    port = hook.url.split(":")[2].split("/")[0]
    assert outcome.error == f"webhook http://127.0.0.1:{port}/hooks/feed: HTTP {status}: hello"
    assert "t0k3n" not in outcome.error  # the query (a token) is never shown


@pytest.mark.parametrize("status", [401, 403, 404])
def test_a_refusal_is_not_retried(hook, feed, status):
    hook.status = status
    outcome = deliver(Destination("webhook", settings(hook.url)), feed, META, timeout=5)
    assert not outcome.ok and not outcome.retryable
    assert f"HTTP {status}" in outcome.error


def test_a_redirect_is_not_followed(hook, feed):
    hook.status = 302
    outcome = deliver(Destination("webhook", settings(hook.url)), feed, META, timeout=5)
    assert not outcome.ok and not outcome.retryable and "HTTP 302" in outcome.error


def test_an_internal_address_is_refused_unless_allowed(app, hook, feed):
    app.config["IMPORT_ALLOWED_NETWORKS"] = ""
    outcome = deliver(Destination("webhook", settings(hook.url)), feed, META, timeout=5)
    assert not outcome.ok and not outcome.retryable
    assert "127.0.0.1 is a loopback address" in outcome.error
    assert hook.calls == []


def test_a_refused_connection_is_retryable(app, feed):
    url = f"http://127.0.0.1:{free_port()}/hook"
    outcome = deliver(Destination("webhook", settings(url)), feed, META, timeout=5)
    assert not outcome.ok and outcome.retryable
    assert outcome.error.endswith("/hook: connection refused"), outcome.error


def test_a_stalled_server_times_out(app, feed):
    with stalling_server() as port:
        start = time.monotonic()
        url = f"http://127.0.0.1:{port}/hook"
        outcome = deliver(Destination("webhook", settings(url)), feed, META, timeout=1.5)
        elapsed = time.monotonic() - start
    assert not outcome.ok and outcome.retryable
    assert (
        outcome.error == f"webhook http://127.0.0.1:{port}/hook: no answer within 1.5 s (timed out)"
    )
    assert elapsed < 1.5 + 2, elapsed


def test_a_connection_dropped_before_the_answer_is_retryable(hook, feed):
    hook.drop = True
    outcome = deliver(Destination("webhook", settings(hook.url)), feed, META, timeout=5)
    assert not outcome.ok and outcome.retryable
    assert outcome.error.endswith("/hooks/feed: connection lost"), outcome.error


def test_settings_are_validated_naming_the_field():
    with pytest.raises(InvalidDestination, match="^url: must be an http"):
        validate(Destination("webhook", {"url": "ftp://x/", "secret": "s"}))
    with pytest.raises(InvalidDestination, match="^secret: is required"):
        validate(Destination("webhook", {"url": "https://x/"}))
    with pytest.raises(InvalidDestination, match="^url: has a port"):
        validate(Destination("webhook", {"url": "https://x:abc/", "secret": "s"}))
