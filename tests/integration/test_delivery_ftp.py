"""FTP and FTPS (explicit TLS) delivery against a real FTP server on loopback (pyftpdlib),
FTPS with a self-signed certificate made here and trusted as the CA."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import pytest

from impexmod.delivery import Destination, FeedMeta, InvalidDestination, check, deliver, validate
from tests.delivery_servers import free_port, self_signed, stalling_server

with warnings.catch_warnings():
    # pyftpdlib is built on asyncore/asynchat, deprecated in Python 3.11 (the suite makes
    # warnings errors): the server's own business, not the client's under test.
    warnings.simplefilter("ignore", DeprecationWarning)
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import DTPHandler, FTPHandler, TLS_FTPHandler
    from pyftpdlib.handlers.ftps.data import TLS_DTPHandler
    from pyftpdlib.servers import FTPServer

META = FeedMeta(exporter="idealo", run_id=7)
PASSWORD = "s3cret-ftp-pass"
CUT_AFTER = 200_000  # bytes of an upload after which the dropping server closes the data link


def dropping(base):
    """A data channel class that drops the connection part-way through an upload."""

    class Dropping(base):
        def handle_read_event(self):  # pyftpdlib's alias of handle_read, called on data
            super().handle_read_event()
            if self.tot_bytes_received > CUT_AFTER and not self._closed:
                # As if the server went away: reset the data link, close the control one.
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.transfer_finished = False
                self.cmd_channel.close()

    return Dropping


@contextmanager
def ftp_server(home: Path, tls: bool = False, cert=None, drop: bool = False):
    authorizer = DummyAuthorizer()
    authorizer.add_user("shop", PASSWORD, str(home), perm="elradfmw")
    base = TLS_FTPHandler if tls else FTPHandler
    attributes = {"authorizer": authorizer, "banner": "test server", "timeout": 30}
    if tls:
        attributes.update(certfile=str(cert[0]), keyfile=str(cert[1]), tls_control_required=True)
        attributes["tls_data_required"] = True
    if drop:
        attributes["dtp_handler"] = dropping(TLS_DTPHandler if tls else DTPHandler)
    handler = type("Handler", (base,), attributes)
    server = FTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"timeout": 0.05, "handle_exit": False}, daemon=True
    )
    thread.start()
    try:
        yield server.address[1]
    finally:
        server.close_all()
        thread.join(5)


@pytest.fixture
def home(tmp_path) -> Path:
    folder = tmp_path / "ftp-home"
    (folder / "feeds").mkdir(parents=True)
    return folder


@pytest.fixture
def cert(tmp_path):
    return self_signed(tmp_path)


@pytest.fixture
def feed(tmp_path) -> Path:
    path = tmp_path / "feed.csv"
    path.write_bytes(os.urandom(1024) * 4096)  # 4 MiB
    return path


def settings(port, cert=None, **extra) -> dict:
    values = {
        "host": "127.0.0.1",
        "port": port,
        "username": "shop",
        "password": PASSWORD,
        "directory": "feeds",
        "name_template": "{exporter}-{run}.{ext}",
    }
    if cert:
        values["ca_cert"] = cert[0].read_text()
    return values | extra


@pytest.mark.parametrize("kind", ["ftp", "ftps"])
def test_a_feed_is_delivered_under_its_final_name_only(kind, home, cert, feed):
    tls = kind == "ftps"
    with ftp_server(home, tls=tls, cert=cert) as port:
        destination = Destination(kind, settings(port, cert if tls else None))
        assert check(destination).ok
        outcome = deliver(destination, feed, META, timeout=10)
        assert outcome.ok, outcome.error
        assert outcome.remote_name == "feeds/idealo-7.csv"
        assert outcome.bytes == feed.stat().st_size
        assert (home / "feeds" / "idealo-7.csv").read_bytes() == feed.read_bytes()
        # Again: the new file replaces the old one by rename.
        feed.write_bytes(b"sku;price\n1;9.99\n")
        assert deliver(destination, feed, META, timeout=10).ok
    assert (home / "feeds" / "idealo-7.csv").read_bytes() == b"sku;price\n1;9.99\n"
    assert sorted(p.name for p in (home / "feeds").iterdir()) == ["idealo-7.csv"]


def test_ftps_refuses_a_certificate_it_does_not_trust(home, cert, feed, tmp_path):
    (tmp_path / "other").mkdir()
    other = self_signed(tmp_path / "other")  # a certificate, but not the server's
    with ftp_server(home, tls=True, cert=cert) as port:
        outcome = deliver(Destination("ftps", settings(port, other)), feed, META, timeout=10)
    assert not outcome.ok and not outcome.retryable
    assert outcome.error.startswith("ftps: TLS certificate not trusted"), outcome.error
    assert list((home / "feeds").iterdir()) == []


@pytest.mark.parametrize("kind", ["ftp", "ftps"])
def test_bad_credentials_fail_without_retry_and_never_show_the_password(kind, home, cert, feed):
    tls = kind == "ftps"
    with ftp_server(home, tls=tls, cert=cert) as port:
        wrong = settings(port, cert if tls else None, password="wrong-password-123")
        outcome = deliver(Destination(kind, wrong), feed, META, timeout=10)
    assert not outcome.ok and not outcome.retryable
    assert outcome.error.startswith(f"{kind} 127.0.0.1:{port}: authentication failed (530")
    assert "wrong-password-123" not in outcome.error
    assert list((home / "feeds").iterdir()) == []


def test_a_missing_folder_is_said(home, feed):
    with ftp_server(home) as port:
        outcome = deliver(Destination("ftp", settings(port, directory="nope")), feed, META)
    assert not outcome.ok and not outcome.retryable
    assert "opening the folder nope refused (550" in outcome.error


def test_a_refused_connection_is_retryable(feed):
    outcome = deliver(Destination("ftp", settings(free_port())), feed, META, timeout=5)
    assert not outcome.ok and outcome.retryable
    assert outcome.error == "ftp: connection refused"


@pytest.mark.parametrize("kind", ["ftp", "ftps"])
def test_a_stalled_server_times_out(kind, feed):
    with stalling_server() as port:
        start = time.monotonic()
        outcome = deliver(Destination(kind, settings(port)), feed, META, timeout=1.5)
        elapsed = time.monotonic() - start
    assert not outcome.ok and outcome.retryable
    assert outcome.error == f"{kind}: no answer within 1.5 s (timed out)"
    assert elapsed < 1.5 + 2, elapsed


@pytest.mark.parametrize("kind", ["ftp", "ftps"])
def test_a_connection_dropped_mid_upload_leaves_nothing(kind, home, cert, feed):
    tls = kind == "ftps"
    with ftp_server(home, tls=tls, cert=cert, drop=True) as port:
        start = time.monotonic()
        outcome = deliver(Destination(kind, settings(port, cert if tls else None)), feed, META, 5)
        elapsed = time.monotonic() - start
    assert not outcome.ok and outcome.retryable, outcome
    assert "connection lost" in outcome.error or "timed out" in outcome.error, outcome.error
    assert elapsed < 5 + 2
    # Nothing under the final name; only the hidden temporary (the server was gone).
    names = [p.name for p in (home / "feeds").iterdir()]
    assert all(name.startswith(".idealo-7.csv.part-") for name in names), names


def test_settings_are_validated_naming_the_field():
    with pytest.raises(InvalidDestination, match="^host: is required"):
        validate(Destination("ftp", {"username": "u"}))
    with pytest.raises(InvalidDestination, match="^ca_cert: is not a PEM"):
        validate(Destination("ftps", {"host": "h", "ca_cert": "junk"}))
    with pytest.raises(InvalidDestination, match="^passive:"):
        validate(Destination("ftp", {"host": "h", "passive": "maybe"}))
    outcome = deliver(
        Destination("ftp", {"host": "h", "name_template": "../{exporter}.{ext}"}), "f.xml", META
    )
    assert not outcome.ok and not outcome.retryable
    assert outcome.error.startswith("invalid destination: name_template: '../{exporter}.{ext}'")
