"""Where an import reads from: a local path, an uploaded file, or a URL.

Downloads go to a temporary file, never to memory: the size limit is checked against
``Content-Length`` before reading and again while reading (a server may lie or compress), with a
connect timeout and a timeout between received bytes. Conditional GET (``If-None-Match``,
``If-Modified-Since``) lets an unchanged feed be skipped without downloading it. Every connection
(redirects included) reaches public addresses only, unless allow-listed (``netguard``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

import requests
from flask import current_app, has_app_context

from impexmod.importing import netguard
from impexmod.importing.defaults import setting
from impexmod.importing.errors import ImportRefused


@dataclass
class Fetched:
    """A file ready to import, and what its source said about it."""

    path: Path | None
    name: str
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    sha256: str | None = None
    temporary: bool = False

    @property
    def not_modified(self) -> bool:
        """The source answered 304: nothing new to import."""
        return self.status == 304

    def cleanup(self) -> None:
        """Remove the temporary copy, if this is one."""
        if self.temporary and self.path is not None:
            self.path.unlink(missing_ok=True)


def _scratch() -> Path:
    base = Path(current_app.instance_path) if has_app_context() else Path(tempfile.gettempdir())
    folder = base / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _limit() -> int:
    return int(setting("IMPORT_MAX_BYTES"))


def from_path(path: str | os.PathLike) -> Fetched:
    """A local file, checked for existence and size before anything reads it."""
    path = Path(path)
    if not path.is_file():
        raise ImportRefused(f"{path}: no such file")
    size = path.stat().st_size
    if size > _limit():
        raise ImportRefused(f"{path.name}: {size:,} bytes is over the import limit of {_limit():,}")
    return Fetched(path=path, name=path.name)


def from_stream(stream: BinaryIO, name: str) -> Fetched:
    """An uploaded file, copied to a temporary file with the size limit enforced."""
    safe = Path(name or "upload").name or "upload"
    # The client's name is the Fetched's display name only, never part of a path.
    fd, tmp = tempfile.mkstemp(dir=_scratch(), prefix=".upload-")
    digest = hashlib.sha256()
    total = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while block := stream.read(1024 * 1024):
                total += len(block)
                if total > _limit():
                    raise ImportRefused(f"{safe}: over the import limit of {_limit():,} bytes")
                digest.update(block)
                out.write(block)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Fetched(path=Path(tmp), name=safe, sha256=digest.hexdigest(), temporary=True)


def fetch_url(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    auth: tuple[str, str] | None = None,
    params: dict | None = None,
) -> Fetched:
    """Download ``url`` (http or https) into a temporary file; a 304 has no file."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ImportRefused(f"{url}: only http and https URLs can be imported")
    headers = {"Accept-Encoding": "gzip", "User-Agent": "impexmod-importer"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    timeout = float(setting("IMPORT_HTTP_TIMEOUT"))
    name = unquote(Path(parts.path).name) or parts.netloc
    try:
        # A session of its own whose every connection is checked (no proxy, no environment).
        getter = netguard.session()
    except netguard.BlockedAddress as exc:  # the allow-list itself is wrong
        raise ImportRefused(f"{url}: refused: {exc}") from None
    try:
        response = getter.get(
            url, headers=headers, auth=auth, params=params, stream=True, timeout=(timeout, timeout)
        )
    except netguard.BlockedAddress as exc:
        getter.close()
        hop = " after a redirect" if (exc.host or "").lower() != parts.hostname else ""
        raise ImportRefused(f"{url}: refused{hop}: {exc}") from None
    except requests.RequestException as exc:
        getter.close()
        raise ImportRefused(f"{url}: cannot be downloaded: {exc}") from None
    with getter, response:
        kept = {k: v for k, v in response.headers.items() if k.lower().startswith("x-impexmod")}
        meta = dict(
            name=name,
            status=response.status_code,
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
            headers=kept | {"Location": response.headers.get("Location", "")},
        )
        if response.status_code in (204, 304, 410):
            return Fetched(path=None, **meta)
        if response.status_code >= 400:
            raise ImportRefused(f"{url}: the server answered {response.status_code}")
        announced = response.headers.get("Content-Length")
        encoded = response.headers.get("Content-Encoding")
        if announced and announced.isdigit() and not encoded and int(announced) > _limit():
            raise ImportRefused(
                f"{name}: {int(announced):,} bytes is over the import limit of {_limit():,}"
            )
        fd, tmp = tempfile.mkstemp(dir=_scratch(), prefix=".download-", suffix="-" + name[-40:])
        digest, total = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                # Counted after decoding: a small gzip body must not expand past the limit.
                for block in response.iter_content(1024 * 1024):
                    total += len(block)
                    if total > _limit():
                        raise ImportRefused(f"{name}: over the import limit of {_limit():,} bytes")
                    digest.update(block)
                    out.write(block)
        except requests.RequestException as exc:
            Path(tmp).unlink(missing_ok=True)
            raise ImportRefused(f"{url}: the download failed: {exc}") from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return Fetched(path=Path(tmp), sha256=digest.hexdigest(), temporary=True, **meta)
