"""SFTP (paramiko): password or private key, the server's host key checked.

Atomic: the file is written under a hidden temporary name in the target folder, then renamed
over the final name with OpenSSH's ``posix-rename`` (an atomic replace); a server without it
gets a plain rename, after removing an older file of the final name.
"""

from __future__ import annotations

import base64
import binascii
import errno
import io
import posixpath
import socket
from dataclasses import dataclass
from pathlib import Path

import paramiko

from impexmod.delivery.base import (
    DeliveryError,
    FeedMeta,
    InvalidDestination,
    flag,
    folder,
    host,
    integer,
    render_name,
    temporary_name,
    text,
)
from impexmod.messages import msg

KEY_TYPES = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)


@dataclass(frozen=True)
class Config:
    host: str
    port: int
    username: str
    password: str | None
    private_key: paramiko.PKey | None
    host_key: tuple[str, str] | None  # (type, base64)
    accept_new_host_key: bool
    directory: str
    name_template: str | None


def parse_host_key(value: str) -> tuple[str, str]:
    """``ssh-ed25519 AAAA...`` (or a known_hosts line ``host ssh-ed25519 AAAA...``)."""
    parts = value.split()
    for i, part in enumerate(parts[:-1]):
        if part.startswith(("ssh-", "ecdsa-", "rsa-")):
            blob = parts[i + 1]
            try:
                base64.b64decode(blob, validate=True)
            except (binascii.Error, ValueError):
                break
            return part, blob
    raise InvalidDestination(
        "host_key", msg("is not a public host key such as 'ssh-ed25519 AAAA...' (ssh-keyscan)")
    )


def load_key(value: str, passphrase: str | None) -> paramiko.PKey:
    """A private key in OpenSSH or PEM text (Ed25519, ECDSA or RSA)."""
    for cls in KEY_TYPES:
        try:
            return cls.from_private_key(io.StringIO(value), password=passphrase)
        except paramiko.PasswordRequiredException:
            raise InvalidDestination("passphrase", msg("the private key is encrypted")) from None
        except (paramiko.SSHException, ValueError, TypeError, IndexError):
            continue
    raise InvalidDestination(
        "private_key",
        msg("is not an Ed25519, ECDSA or RSA private key (or the passphrase is wrong)"),
    )


def validate(kind: str, settings: dict) -> Config:
    """Checked settings; InvalidDestination naming the field otherwise."""
    password = settings.get("password") or None
    key_text = settings.get("private_key") or None
    if not password and not key_text:
        raise InvalidDestination("password", msg("a password or a private_key is required"))
    accept_new = flag(settings, "accept_new_host_key")
    host_key_text = text(settings, "host_key", required=not accept_new)
    return Config(
        host=host(settings),
        port=integer(settings, "port", 22),
        username=text(settings, "username"),
        password=password,
        private_key=load_key(key_text, settings.get("passphrase") or None) if key_text else None,
        host_key=parse_host_key(host_key_text) if host_key_text else None,
        accept_new_host_key=accept_new,
        directory=folder(settings),
        name_template=text(settings, "name_template", required=False),
    )


def remote_name(config: Config, path: Path, meta: FeedMeta) -> str:
    """The final path on the server: the folder, then the rendered template."""
    name = render_name(config.name_template, path, meta)
    return posixpath.join(config.directory, name) if config.directory else name


def _connect(config: Config, timeout: float) -> tuple[paramiko.Transport, paramiko.SFTPClient]:
    where = f"sftp {config.host}:{config.port}"
    sock = socket.create_connection((config.host, config.port), timeout=timeout)
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout
    transport.handshake_timeout = timeout
    transport.auth_timeout = timeout
    try:
        try:
            transport.start_client(timeout=timeout)
        except paramiko.SSHException as exc:
            raise DeliveryError(f"{where}: SSH handshake failed ({exc})", True) from None
        try:
            # start_client returns quietly when its timeout passes: no key means no handshake.
            seen = transport.get_remote_server_key()
        except paramiko.SSHException:
            raise DeliveryError(
                f"{where}: SSH handshake failed (no answer within {timeout:g} s)", True
            ) from None
        seen_text = (seen.get_name(), seen.get_base64())
        if config.host_key is None:
            if not config.accept_new_host_key:  # validate() prevents it; be sure anyway
                raise DeliveryError(f"{where}: no host key configured", False)
        elif config.host_key != seen_text:
            raise DeliveryError(
                f"{where}: the server's host key {seen.get_name()} "
                f"SHA256:{seen.fingerprint.split(':', 1)[-1]} is not the configured one "
                f"(refused: a changed key may mean another server)",
                False,
            )
        try:
            if config.private_key is not None:
                transport.auth_publickey(config.username, config.private_key)
            else:
                transport.auth_password(config.username, config.password)
        except paramiko.AuthenticationException:
            raise DeliveryError(
                f"{where}: authentication failed for user {config.username!r}", False
            ) from None
        except paramiko.SSHException as exc:
            raise DeliveryError(f"{where}: sign-in failed ({exc})", True) from None
        client = paramiko.SFTPClient.from_transport(transport)
        if client is None:
            raise DeliveryError(f"{where}: the server refused the SFTP subsystem", False)
        client.get_channel().settimeout(timeout)
        return transport, client
    except BaseException:
        transport.close()
        sock.close()
        raise


def _failure(exc: Exception, where: str, transport: paramiko.Transport) -> Exception:
    if isinstance(exc, socket.timeout | TimeoutError):
        return exc
    if not transport.is_active() or isinstance(exc, EOFError | paramiko.SSHException):
        return DeliveryError(f"{where}: connection lost ({exc})", True)
    if isinstance(exc, OSError):
        # An SFTP status from the server: no such folder and permission denied stay so.
        permanent = exc.errno in (errno.ENOENT, errno.EACCES, errno.EPERM)
        return DeliveryError(f"{where}: {exc.strerror or exc}", not permanent)
    return exc


def _learned(config: Config, transport: paramiko.Transport) -> dict | None:
    """Trust on first use: the host key accepted, for the caller to save with the settings
    (from then on, only that key is accepted)."""
    if config.host_key is not None:
        return None
    key = transport.get_remote_server_key()
    return {"host_key": f"{key.get_name()} {key.get_base64()}"}


def send(config: Config, path: Path, final: str, meta: FeedMeta, timeout: float) -> dict | None:
    """Upload under a temporary name, then rename over ``final``; the settings learned (a
    host key accepted on first use), if any."""
    where = f"sftp {config.host}:{config.port}"
    transport, client = _connect(config, timeout)
    temporary = temporary_name(final)
    try:
        try:
            client.put(str(path), temporary, confirm=True)
            try:
                client.posix_rename(temporary, final)
            except OSError:
                # No posix-rename extension: a plain rename refuses an existing target.
                try:
                    client.remove(final)
                except OSError:
                    pass
                client.rename(temporary, final)
            return _learned(config, transport)
        except Exception as exc:
            # Remove the temporary while the connection still answers (not after a timeout
            # or a lost connection: that would wait again; the hidden name is left then).
            if transport.is_active() and not isinstance(
                exc, socket.timeout | TimeoutError | EOFError | paramiko.SSHException
            ):
                try:
                    client.remove(temporary)
                except OSError:
                    pass
            raise _failure(exc, where, transport) from None
    finally:
        client.close()
        transport.close()


def check(config: Config, timeout: float) -> dict | None:
    """Connect, sign in and list the target folder; the settings learned, as send()."""
    transport, client = _connect(config, timeout)
    try:
        try:
            client.listdir(config.directory or ".")
            return _learned(config, transport)
        except OSError as exc:
            raise _failure(exc, f"sftp {config.host}:{config.port}", transport) from None
    finally:
        client.close()
        transport.close()
