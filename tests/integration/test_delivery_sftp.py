"""SFTP delivery against a real OpenSSH sshd on loopback (started here, with its own host key)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from impexmod.delivery import Destination, FeedMeta, InvalidDestination, check, deliver, validate
from tests.delivery_servers import cutting_proxy, free_port, ssh_key, sshd, stalling_server

META = FeedMeta(exporter="google", run_id=42)


pytestmark = pytest.mark.needs("sshd")  # checked before any fixture starts sshd


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with sshd(tmp_path_factory.mktemp("sshd")) as running:
        yield running


@pytest.fixture
def feed(tmp_path) -> Path:
    path = tmp_path / "feed.xml"
    path.write_bytes(os.urandom(1024) * 1024)  # 1 MiB
    return path


def key_settings(server, **extra) -> dict:
    return {
        "host": "127.0.0.1",
        "port": server.port,
        "username": "root",
        "private_key": server.client_key,
        "host_key": server.host_key,
        "directory": str(server.root),
        "name_template": "{exporter}-{run}.{ext}",
        **extra,
    }


def leftovers(server) -> list[str]:
    return sorted(p.name for p in server.root.iterdir())


def clean(server) -> None:
    for p in server.root.iterdir():
        p.unlink()


@pytest.mark.skipif(os.geteuid() != 0, reason="key login is tested as root here")
def test_a_feed_is_delivered_with_a_key_under_its_final_name_only(server, feed):
    clean(server)
    outcome = deliver(Destination("sftp", key_settings(server)), feed, META, timeout=10)
    assert outcome.ok, outcome.error
    assert outcome.remote_name == f"{server.root}/google-42.xml"
    assert outcome.bytes == feed.stat().st_size
    assert outcome.error is None and outcome.ended_at >= outcome.started_at
    assert (server.root / "google-42.xml").read_bytes() == feed.read_bytes()
    assert leftovers(server) == ["google-42.xml"]  # the temporary was renamed away

    # A second run replaces the file (atomic posix-rename over the old one).
    feed.write_bytes(b"<feed>second</feed>")
    assert deliver(Destination("sftp", key_settings(server)), feed, META, timeout=10).ok
    assert (server.root / "google-42.xml").read_bytes() == b"<feed>second</feed>"
    assert leftovers(server) == ["google-42.xml"]


def test_a_feed_is_delivered_with_a_password(server, feed):
    if server.password is None:
        pytest.skip("the password user is made only when the tests run as root")
    clean(server)
    settings = key_settings(server, username="impexmod-sftp", password=server.password)
    del settings["private_key"]
    outcome = deliver(Destination("sftp", settings), feed, META, timeout=10)
    assert outcome.ok, outcome.error
    assert (server.root / "google-42.xml").read_bytes() == feed.read_bytes()

    wrong = dict(settings, password="not-the-password")
    outcome = deliver(Destination("sftp", wrong), feed, META, timeout=10)
    assert not outcome.ok and not outcome.retryable
    assert "authentication failed for user 'impexmod-sftp'" in outcome.error
    assert "not-the-password" not in outcome.error


def test_a_wrong_key_fails_without_retry(server, feed):
    clean(server)
    other, _ = ssh_key()
    outcome = deliver(
        Destination("sftp", key_settings(server, private_key=other)), feed, META, timeout=10
    )
    assert not outcome.ok and not outcome.retryable
    assert outcome.error == f"sftp 127.0.0.1:{server.port}: authentication failed for user 'root'"
    assert leftovers(server) == []


def test_an_unknown_host_key_is_refused_unless_accepting_new_keys(server, feed):
    clean(server)
    _, other_public = ssh_key()
    outcome = deliver(
        Destination("sftp", key_settings(server, host_key=other_public)), feed, META, timeout=10
    )
    assert not outcome.ok and not outcome.retryable
    assert "host key ssh-ed25519 SHA256:" in outcome.error
    assert "is not the configured one" in outcome.error
    assert leftovers(server) == []

    with pytest.raises(InvalidDestination, match="^host_key: is required"):
        validate(Destination("sftp", key_settings(server, host_key="")))
    # Trust on first use: accepted, and the key seen is handed back to be saved.
    tofu = key_settings(server, host_key="", accept_new_host_key=True)
    if os.geteuid() == 0:
        first = deliver(Destination("sftp", tofu), feed, META, timeout=10)
        assert first.ok and first.learned == {"host_key": server.host_key}
        assert check(Destination("sftp", tofu)).learned == {"host_key": server.host_key}
        saved = dict(tofu, **first.learned)
        later = deliver(Destination("sftp", saved), feed, META, timeout=10)
        assert later.ok and later.learned is None


def test_a_refused_connection_is_retryable(feed):
    settings = {"host": "127.0.0.1", "port": free_port(), "username": "u", "password": "p"}
    settings["host_key"] = ssh_key()[1]
    outcome = deliver(Destination("sftp", settings), feed, META, timeout=5)
    assert not outcome.ok and outcome.retryable
    assert outcome.error == "sftp: connection refused"


def test_a_stalled_server_times_out(feed):
    with stalling_server() as port:
        settings = {"host": "127.0.0.1", "port": port, "username": "u", "password": "p"}
        settings["host_key"] = ssh_key()[1]
        start = time.monotonic()
        outcome = deliver(Destination("sftp", settings), feed, META, timeout=1.5)
        elapsed = time.monotonic() - start
    assert not outcome.ok and outcome.retryable
    assert elapsed < 1.5 + 2, elapsed
    assert outcome.error.startswith(f"sftp 127.0.0.1:{port}: SSH handshake failed"), outcome.error


@pytest.mark.skipif(os.geteuid() != 0, reason="key login is tested as root here")
def test_a_connection_dropped_mid_upload_leaves_nothing_under_the_final_name(server, feed):
    clean(server)
    with cutting_proxy(server.port, cut_after=300_000) as port:
        start = time.monotonic()
        outcome = deliver(
            Destination("sftp", key_settings(server, port=port)), feed, META, timeout=3
        )
        elapsed = time.monotonic() - start
    assert not outcome.ok and outcome.retryable, outcome
    assert "connection lost" in outcome.error or "timed out" in outcome.error, outcome.error
    assert elapsed < 3 + 2
    assert not (server.root / "google-42.xml").exists()
    # Only a hidden temporary may be left (the connection was gone: it could not be removed).
    assert all(name.startswith(".google-42.xml.part-") for name in leftovers(server))


@pytest.mark.skipif(os.geteuid() != 0, reason="key login is tested as root here")
def test_check_lists_the_folder_without_writing(server):
    clean(server)
    assert check(Destination("sftp", key_settings(server))).ok
    missing = check(Destination("sftp", key_settings(server, directory="/no/such/folder")))
    assert not missing.ok and "No such file" in missing.error, missing.error
    assert leftovers(server) == []


def test_settings_are_validated_naming_the_field():
    base = {"host": "example.org", "username": "u", "password": "p", "host_key": ssh_key()[1]}
    with pytest.raises(InvalidDestination, match="^password: a password or a private_key"):
        validate(Destination("sftp", {k: v for k, v in base.items() if k != "password"}))
    with pytest.raises(InvalidDestination, match="^port:"):
        validate(Destination("sftp", dict(base, port="99999")))
    with pytest.raises(InvalidDestination, match="^host:"):
        validate(Destination("sftp", dict(base, host="sftp://example.org/")))
    with pytest.raises(InvalidDestination, match="^private_key:"):
        validate(Destination("sftp", dict(base, private_key="not a key")))
    with pytest.raises(InvalidDestination, match="^directory:"):
        validate(Destination("sftp", dict(base, directory="feeds/../../etc")))
    outcome = deliver(Destination("sftp", dict(base, port="x")), Path("/nonexistent"), META)
    assert not outcome.ok and not outcome.retryable
    assert outcome.error == "invalid destination: port: 'x' is not a whole number"
