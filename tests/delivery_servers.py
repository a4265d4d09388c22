"""Real servers on loopback for the delivery tests, and the misbehaving ones: a port that
refuses, a server that accepts then stalls, a proxy that drops the connection mid-upload."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

SSHD = "/usr/sbin/sshd"
SFTP_USER = "impexmod-sftp"  # the password-login test user (made when the tests run as root)


def free_port() -> int:
    """A loopback port free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, seconds: float = 10) -> None:
    """Return once something accepts on the loopback port (or raise after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def stalling_server() -> Iterator[int]:
    """A server that accepts connections and then never says or reads anything."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        listener.close()


@contextmanager
def cutting_proxy(upstream_port: int, cut_after: int) -> Iterator[int]:
    """A TCP proxy to ``upstream_port`` that drops both sides of a connection once the client
    has sent ``cut_after`` bytes through it (a connection lost mid-upload)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    sockets: list[socket.socket] = []

    def pump(src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if limit is not None and sent + len(data) >= limit:
                    dst.sendall(data[: max(0, limit - sent)])
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            upstream = socket.create_connection(("127.0.0.1", upstream_port))
            sockets.extend((client, upstream))
            for args in ((client, upstream, cut_after), (upstream, client, None)):
                t = threading.Thread(target=pump, args=args, daemon=True)
                t.start()
                threads.append(t)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        acceptor.join(2)
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(2)
        for s in sockets:
            s.close()
        listener.close()


# -- keys and certificates -------------------------------------------------------------------


def ssh_key() -> tuple[str, str]:
    """A new Ed25519 key: (OpenSSH private key text, ``ssh-ed25519 AAAA...`` public key)."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return private, public


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


# -- OpenSSH sshd ----------------------------------------------------------------------------


class Sshd:
    """A running sshd: its port, host public key, client key pair, and a folder to write to
    (``root``: world-writable, reachable by the password test user too)."""

    def __init__(self, port, host_key, client_key, client_public, root, password):
        self.port = port
        self.host_key = host_key
        self.client_key = client_key
        self.client_public = client_public
        self.root = root
        self.password = password


def _test_user() -> str | None:
    """The password-login user, with a new password; None unless running as root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SFTP_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--no-create-home", "--shell", "/bin/sh", SFTP_USER],
            check=True,
            capture_output=True,
        )
    return SFTP_USER


@contextmanager
def sshd(folder: Path) -> Iterator[Sshd]:
    """OpenSSH's sshd on a free loopback port with its own host key, key login for the
    current user (root: ``PermitRootLogin prohibit-password``) and password login for the
    test user, SFTP only."""
    folder.mkdir(parents=True, exist_ok=True)
    host_private, host_public = ssh_key()
    host_key = folder / "host_ed25519"
    host_key.write_text(host_private)
    host_key.chmod(0o600)
    client_private, client_public = ssh_key()
    (folder / "authorized_keys").write_text(client_public + "\n")
    password = None
    user = _test_user()
    if user:
        password = secrets.token_urlsafe(12)
        subprocess.run(
            ["chpasswd"], input=f"{user}:{password}\n", text=True, check=True, capture_output=True
        )
    # /tmp, not pytest's tmp_path: the password user must reach it (pytest's folders are 0700).
    root = Path(tempfile.mkdtemp(prefix="impexmod-sftp-"))
    root.chmod(0o777)
    port = free_port()
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\n"
        "ListenAddress 127.0.0.1\n"
        f"HostKey {host_key}\n"
        f"PidFile {folder / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\n"
        "StrictModes no\n"
        "UsePAM no\n"
        "PasswordAuthentication yes\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"
        "MaxStartups 100\n"
        "Subsystem sftp internal-sftp\n"
        "ForceCommand internal-sftp\n"
        "LogLevel ERROR\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # its privilege separation folder
    log = (folder / "sshd.log").open("wb")
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=log, stdout=log)
    try:
        wait_listening(port)
        yield Sshd(port, host_public, client_private, client_public, root, password)
    finally:
        process.terminate()
        process.wait(10)
        log.close()
        shutil.rmtree(root, ignore_errors=True)
