"""Files a merchant uploads in the panel to import, kept by the feed store: under the
instance folder with the local store, in the bucket with S3 (so that a worker on another
machine than the web process that took the upload can import it).

Each is stored under a random name (``<32 hex digits>.<ext>``) that says nothing of the
merchant's file: the client's file name is only a label, never part of a path. A key read
back from a task is checked against that shape before it names a file.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flask import current_app

from impexmod.importing import sources
from impexmod.importing.defaults import setting
from impexmod.importing.errors import ImportRefused
from impexmod.importing.validation import InvalidImporter
from impexmod.messages import msg
from impexmod.runs.feedstore import get_store

EXTENSIONS = ("xml", "csv", "xlsx", "zip")
KEY = re.compile(r"[0-9a-f]{32}\.(?:xml|csv|xlsx|zip)")
MAX_LABEL = 120


@dataclass
class StoredUpload:
    """An upload saved for import: its key (stored name), the client's name, size and digest."""

    key: str
    name: str
    size: int
    sha256: str | None


def _scratch() -> Path:
    """Where a worker puts its local copy of an upload kept in a bucket."""
    return Path(current_app.instance_path) / "imports"


def label_of(filename: str | None) -> str:
    """The client's file name as a label: its last part, without control characters."""
    name = Path((filename or "").replace("\\", "/")).name
    name = "".join(c for c in name if c.isprintable()).strip()
    return name[-MAX_LABEL:] or "upload"


def extension(filename: str | None) -> str:
    """The lower-case extension of an acceptable file, or InvalidImporter on ``file``."""
    name = label_of(filename)
    ext = Path(name).suffix.lower().lstrip(".")
    if ext not in EXTENSIONS:
        raise InvalidImporter(
            "file",
            msg("only .xml, .csv, .xlsx and .zip files can be imported, not “%(name)s”", name=name),
        )
    return ext


def store(stream: BinaryIO, filename: str | None) -> StoredUpload:
    """Copy an uploaded file into the uploads folder, refusing other types and files over
    ``IMPORT_MAX_BYTES`` (InvalidImporter on ``file``; nothing is kept then)."""
    ext = extension(filename)
    name = label_of(filename)
    try:
        copied = sources.from_stream(stream, name)
    except ImportRefused:  # the only refusal of a copy: the size limit
        limit = int(setting("IMPORT_MAX_BYTES"))
        raise InvalidImporter(
            "file",
            msg(
                "“%(name)s” is over the import limit of %(limit)s bytes (IMPORT_MAX_BYTES)",
                name=name,
                limit=format(limit, ","),
            ),
        ) from None
    key = f"{secrets.token_hex(16)}.{ext}"
    size = copied.path.stat().st_size
    get_store().keep_upload(key, copied.path)
    return StoredUpload(key=key, name=name, size=size, sha256=copied.sha256)


def _valid(key: str | None) -> bool:
    """Whether a key read back from a task has the shape of one this module made."""
    return bool(key) and KEY.fullmatch(key) is not None


def fetched(key: str | None, name: str) -> sources.Fetched:
    """A stored upload ready to import under its client's name (ImportRefused if gone)."""
    found = get_store().fetch_upload(key, _scratch()) if _valid(key) else None
    if found is None:
        raise ImportRefused(f"{name}: the uploaded file is no longer stored; upload it again")
    path, temporary = found
    return sources.Fetched(path=path, name=name, temporary=temporary)


def remove(key: str | None) -> None:
    """Delete a stored upload (nothing happens if it is already gone)."""
    if _valid(key):
        get_store().remove_upload(key)
