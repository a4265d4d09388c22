"""FTP and FTPS (ftplib; FTPS is explicit TLS: AUTH TLS on the control connection, then
PROT P so the data connections are encrypted too).

Atomic: the file is stored under a hidden temporary name in the target folder (STOR), then
renamed over the final name (RNFR/RNTO). Servers that refuse to rename over an existing file
get the old one deleted first (a short moment without the file; never a half file).
"""

from __future__ import annotations

import ftplib
import posixpath
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

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


@dataclass(frozen=True)
class Config:
    tls: bool
    host: str
    port: int
    username: str
    password: str
    directory: str
    passive: bool
    ca_cert: str | None
    name_template: str | None


def validate(kind: str, settings: dict) -> Config:
    """Checked settings; InvalidDestination naming the field otherwise."""
    ca_cert = text(settings, "ca_cert", required=False)
    if ca_cert and kind == "ftps":
        try:
            ssl.create_default_context(cadata=ca_cert)
        except (ssl.SSLError, ValueError):
            raise InvalidDestination("ca_cert", msg("is not a PEM certificate")) from None
    return Config(
        tls=kind == "ftps",
        host=host(settings),
        port=integer(settings, "port", 21),
        username=text(settings, "username", required=False, default="anonymous"),
        password=str(settings.get("password") or ""),
        directory=folder(settings),
        passive=flag(settings, "passive", default=True),
        ca_cert=ca_cert,
        name_template=text(settings, "name_template", required=False),
    )


def remote_name(config: Config, path: Path, meta: FeedMeta) -> str:
    """The final path on the server: the folder, then the rendered template."""
    name = render_name(config.name_template, path, meta)
    return posixpath.join(config.directory, name) if config.directory else name


def _where(config: Config) -> str:
    return f"{'ftps' if config.tls else 'ftp'} {config.host}:{config.port}"


def _reply(exc: ftplib.Error, where: str, doing: str) -> DeliveryError:
    """A server's error reply: 4xx (temporary) is retryable, 5xx is not."""
    said = " ".join(str(exc).split())[:200]
    if isinstance(exc, ftplib.error_perm) and said.startswith("530"):
        return DeliveryError(f"{where}: authentication failed ({said})", False)
    return DeliveryError(f"{where}: {doing} refused ({said})", isinstance(exc, ftplib.error_temp))


def _connect(config: Config, timeout: float) -> ftplib.FTP:
    where = _where(config)
    if config.tls:
        context = ssl.create_default_context(cadata=config.ca_cert or None)
        ftp: ftplib.FTP = ftplib.FTP_TLS(context=context, timeout=timeout)
    else:
        ftp = ftplib.FTP(timeout=timeout)
    try:
        try:
            ftp.connect(config.host, config.port, timeout=timeout)
            ftp.login(config.username, config.password)  # FTP_TLS: AUTH TLS first
            if isinstance(ftp, ftplib.FTP_TLS):
                ftp.prot_p()
        except ftplib.Error as exc:
            raise _reply(exc, where, "sign-in") from None
        ftp.set_pasv(config.passive)
        if config.directory:
            try:
                ftp.cwd(config.directory)
            except ftplib.Error as exc:
                raise _reply(exc, where, f"opening the folder {config.directory}") from None
        return ftp
    except BaseException:
        ftp.close()
        raise


def send(config: Config, path: Path, final: str, meta: FeedMeta, timeout: float) -> None:
    """STOR under a temporary name in the folder, then RNFR/RNTO over the final name."""
    where = _where(config)
    name = posixpath.basename(final) if config.directory else final
    temporary = temporary_name(name)
    ftp = _connect(config, timeout)
    try:
        try:
            with path.open("rb") as source:
                ftp.storbinary(f"STOR {temporary}", source, blocksize=65536)
        except BaseException as exc:
            _remove(ftp, temporary, exc, reply_pending=not isinstance(exc, ftplib.Error))
            if isinstance(exc, ftplib.Error):
                raise _reply(exc, where, "the upload") from None
            raise
        try:
            try:
                ftp.rename(temporary, name)
            except ftplib.error_perm:
                # A server that will not rename over an existing file.
                try:
                    ftp.delete(name)
                except ftplib.error_perm:
                    pass
                ftp.rename(temporary, name)
        except BaseException as exc:
            _remove(ftp, temporary, exc, reply_pending=False)
            if isinstance(exc, ftplib.Error):
                raise _reply(exc, where, "renaming the upload") from None
            raise
        try:
            ftp.quit()
        except (OSError, EOFError, ftplib.Error):
            pass  # delivered; a QUIT that fails changes nothing
    finally:
        ftp.close()


def _remove(ftp: ftplib.FTP, temporary: str, exc: BaseException, reply_pending: bool) -> None:
    """Delete the temporary while the control connection still answers (not after a timeout:
    that would wait again)."""
    if isinstance(exc, socket.timeout | TimeoutError | EOFError) or ftp.sock is None:
        return
    try:
        ftp.sock.settimeout(min(ftp.sock.gettimeout() or 5, 5))
        if reply_pending:  # the data connection broke: the server's 426 is still to be read
            try:
                ftp.voidresp()
            except ftplib.Error:
                pass
        ftp.delete(temporary)
    except (OSError, EOFError, ftplib.Error):
        pass


def check(config: Config, timeout: float) -> None:
    """Connect, sign in (over TLS for FTPS) and open the folder (no data connection:
    an empty listing over TLS is what some servers get wrong)."""
    ftp = _connect(config, timeout)
    try:
        try:
            ftp.pwd()
        except ftplib.Error as exc:
            raise _reply(exc, _where(config), "PWD") from None
        ftp.quit()
    finally:
        ftp.close()
