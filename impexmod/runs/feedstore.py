"""The feed store: where runs write their files and where the feed endpoint reads them.

Layout of the local store, one folder per task::

    <root>/<task id>/run-<run id>.<ext>       the file a run produced (kept for the run history)
    <root>/<task id>/run-<run id>.<ext>.gz    its gzip twin, for clients that accept gzip
    <root>/<task id>/current.json             which file the feed URL serves, and its metadata

A run writes into a temporary file next to its final name (``.writing-run<id>-*``, so that
the files of a run that died can be found and removed). Publishing is two steps, each an atomic
rename on one file system: ``place`` moves the finished file to its final name, and ``point``
replaces ``current.json``. The export commits its run's success between the two
(impexmod.export.runner), so the URL never serves the file of a run that is not recorded as
succeeded; a crash between them leaves the previous feed, and the sweeper points the URL at the
newer file (impexmod.dispatch.liveness). A partner never reads half a file and a failed run
leaves the previous feed in place.

The same interface, with the same guarantees, keeps the files in an S3-compatible bucket
(``impexmod.runs.s3store``, chosen by ``FEED_STORE=s3://bucket/prefix``). What readers (the
feed endpoint, downloads, previews, retention) need is ``FeedStore``: they never ask for a
local path, so they work with either.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

import boto3.exceptions
import botocore.exceptions
from flask import current_app

if TYPE_CHECKING:
    from impexmod.runs.s3store import S3FeedStore

CONTENT_TYPES = {
    "xml": "application/xml; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "txt": "text/plain; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


# What a store raises when it cannot be reached or refuses (a disk, or a bucket's server).
STORE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    botocore.exceptions.BotoCoreError,
    botocore.exceptions.ClientError,
    boto3.exceptions.Boto3Error,
)

# Temporary files of a run carry its id; those of the current.json swap carry none.
_TEMP_RUN = re.compile(r"^\.writing-run(\d+)-")
_TEMP_PREFIXES = (".writing-", ".current-")


def part_name(run_id: int, number: int | str) -> str:
    """The stored name of one part of a run's feed (a temporary of the run: the sweeper
    removes it once the run is no longer active)."""
    return f".writing-run{run_id}-part{number}.tmp"


@dataclass
class FeedFile:
    """What the feed URL of a task serves."""

    task_id: int
    run_id: int
    name: str
    size: int
    etag: str
    published_at: float
    content_type: str
    gzip_name: str | None = None


@dataclass(frozen=True)
class StoredObject:
    """One stored file as readers see it: its size and when it was written."""

    size: int
    modified: float


class FeedStore(Protocol):
    """What the feed endpoint, downloads and retention need from a store (local or S3).

    Both stores also share the writing side (``writing``, ``place``, ``placed``, ``point``,
    ``add_gzip``, the removals) and the uploads' (``keep_upload``, ``fetch_upload``...)."""

    def current(self, task_id: int) -> FeedFile | None: ...

    def stat(self, task_id: int, name: str) -> StoredObject | None: ...

    def exists(self, task_id: int, name: str) -> bool: ...

    def open(self, task_id: int, name: str) -> BinaryIO:
        """A seekable binary stream of a stored file, read as it goes; FileNotFoundError."""

    def delete(self, task_id: int, name: str) -> int: ...

    def names(self, task_id: int) -> list[str]: ...


def _fsync_replace(src: Path, dst: Path) -> None:
    with open(src, "rb") as fh:
        os.fsync(fh.fileno())
    # mkstemp creates 0600 files; the web server may run as another user than the worker.
    os.chmod(src, 0o644)
    os.replace(src, dst)


class LocalFeedStore:
    """A feed store in a local folder (shared by the web and worker processes)."""

    def __init__(self, root: str | os.PathLike, uploads: str | os.PathLike | None = None):
        self.root = Path(root)
        # The panel's uploads for import; beside the feeds unless the app says where.
        self.uploads = Path(uploads) if uploads is not None else self.root / "uploads"

    def folder(self, task_id: int) -> Path:
        """The folder of one task's files."""
        return self.root / str(task_id)

    @contextmanager
    def writing(self, task_id: int, run_id: int) -> Iterator[tuple[BinaryIO, Path]]:
        """A temporary file to write a feed into; removed if the block fails."""
        folder = self.folder(task_id)
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix=f".writing-run{run_id}-", suffix=".tmp")
        path = Path(name)
        try:
            with os.fdopen(fd, "wb", buffering=1024 * 1024) as fh:
                yield fh, path
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    @contextmanager
    def writing_part(self, task_id: int, run_id: int, number: int) -> Iterator[BinaryIO]:
        """A file to write one key-range part of a run's feed into; stored under
        ``part_name`` once the block ends (readable with ``open``), removed if it fails."""
        with self.writing(task_id, run_id) as (fh, tmp):
            yield fh
        os.replace(tmp, self.folder(task_id) / part_name(run_id, number))

    def remove_parts(self, task_id: int, run_id: int) -> int:
        """Delete the part files of a run (once joined, or when it failed); bytes freed."""
        folder = self.folder(task_id)
        return sum(max(_unlink(p), 0) for p in folder.glob(part_name(run_id, "*")))

    def place(self, task_id: int, run_id: int, tmp: Path, ext: str) -> FeedFile:
        """Move a finished temporary file to its final name; the URL does not serve it yet."""
        name = f"run-{run_id}.{ext}"
        final = self.folder(task_id) / name
        _fsync_replace(tmp, final)
        feed = FeedFile(
            task_id=task_id,
            run_id=run_id,
            name=name,
            size=final.stat().st_size,
            etag=uuid.uuid4().hex,
            published_at=final.stat().st_mtime,
            content_type=CONTENT_TYPES.get(ext, "application/octet-stream"),
        )
        return feed

    def placed(self, task_id: int, run_id: int, name: str) -> FeedFile | None:
        """The placed file of a run as a feed to point at, or None if it is not stored."""
        path = self.folder(task_id) / name
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        gz = name + ".gz"
        return FeedFile(
            task_id=task_id,
            run_id=run_id,
            name=name,
            size=stat.st_size,
            etag=uuid.uuid4().hex,
            published_at=stat.st_mtime,
            content_type=CONTENT_TYPES.get(name.rsplit(".", 1)[-1], "application/octet-stream"),
            gzip_name=gz if (self.folder(task_id) / gz).exists() else None,
        )

    def point(self, feed: FeedFile, *, by_run: bool = True) -> None:
        """Make the feed URL serve a placed file (an atomic replace of ``current.json``);
        ``by_run`` when the feed's own run switches it, not the sweeper."""
        self._write_current(feed, by_run)

    def add_gzip(self, feed: FeedFile) -> FeedFile:
        """Write the gzip twin of a published feed, then announce it in ``current.json``."""
        folder = self.folder(feed.task_id)
        gz_name = feed.name + ".gz"
        prefix = f".writing-run{feed.run_id}-"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as raw, open(folder / feed.name, "rb") as src:
                # mtime=0 keeps the compressed bytes a function of the content alone.
                with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz:
                    shutil.copyfileobj(src, gz, 1024 * 1024)
            _fsync_replace(Path(tmp), folder / gz_name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        current = self.current(feed.task_id)
        if current and current.run_id == feed.run_id:
            current.gzip_name = gz_name
            self._write_current(current, by_run=True)
            return current
        return feed

    def _write_current(self, feed: FeedFile, by_run: bool) -> None:
        folder = self.folder(feed.task_id)
        # A run killed mid-swap leaves this temporary: named after the run, it goes with the
        # run's others at once; the sweeper's own carries no run and goes once stale.
        prefix = f".writing-run{feed.run_id}-current-" if by_run else ".current-"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(feed), fh)
        _fsync_replace(Path(tmp), folder / "current.json")

    def current(self, task_id: int) -> FeedFile | None:
        """The feed a task's URL serves now, or None before its first successful run."""
        try:
            data = json.loads((self.folder(task_id) / "current.json").read_text())
        except FileNotFoundError:
            return None
        return FeedFile(**data)

    def path(self, task_id: int, name: str) -> Path:
        """The path of one stored file of a task."""
        return self.folder(task_id) / name

    def stat(self, task_id: int, name: str) -> StoredObject | None:
        """Size and time of one stored file, or None if it is not stored."""
        try:
            found = self.path(task_id, name).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return StoredObject(found.st_size, found.st_mtime)

    def exists(self, task_id: int, name: str) -> bool:
        """Whether one file of a task is stored."""
        return self.path(task_id, name).is_file()

    def open(self, task_id: int, name: str) -> BinaryIO:
        """The stored file, opened for reading (FileNotFoundError if it is gone)."""
        return open(self.path(task_id, name), "rb")

    def delete(self, task_id: int, name: str) -> int:
        """Delete one stored file; its size, or -1 if it was already gone."""
        return _unlink(self.path(task_id, name))

    def names(self, task_id: int) -> list[str]:
        """The stored run files of a task (temporaries and the pointer left out), sorted."""
        folder = self.folder(task_id)
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.glob("run-*") if p.is_file())

    def temporaries(self, task_id: int) -> list[str]:
        """The names of a task's temporary files (of runs going, or left by dead ones)."""
        folder = self.folder(task_id)
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.name.startswith(_TEMP_PREFIXES))

    @contextmanager
    def local_copy(self, task_id: int, name: str) -> Iterator[Path]:
        """A local path of a stored file for the block (a transport that wants a file)."""
        path = self.path(task_id, name)
        if not path.is_file():
            raise FileNotFoundError(path)
        yield path

    def keep_upload(self, key: str, src: Path) -> None:
        """Keep a file uploaded in the panel under ``key`` (moved from ``src``)."""
        self.uploads.mkdir(parents=True, exist_ok=True)
        os.replace(src, self.uploads / key)

    def fetch_upload(self, key: str, scratch: Path) -> tuple[Path, bool] | None:
        """Where a kept upload can be read, and whether that is a temporary copy; None if gone."""
        path = self.uploads / key
        return (path, False) if path.is_file() else None

    def upload_keys(self) -> list[str]:
        """The keys of the uploads kept, sorted."""
        return sorted(p.name for p in self.uploads.iterdir()) if self.uploads.is_dir() else []

    def remove_upload(self, key: str) -> None:
        """Delete a kept upload (nothing happens if it is already gone)."""
        (self.uploads / key).unlink(missing_ok=True)

    def remove_run_files(self, task_id: int, run_id: int) -> int:
        """Delete the placed file (and gzip twin) of a run that did not succeed; bytes freed."""
        current = self.current(task_id)
        freed = 0
        for path in self.folder(task_id).glob(f"run-{run_id}.*"):
            if current is not None and path.name in (current.name, current.gzip_name):
                continue
            freed += max(_unlink(path), 0)
        return freed

    def remove_temporary(
        self, is_active, older_than: float, task_id: int | None = None
    ) -> tuple[int, int]:
        """Delete temporary files of runs for which ``is_active(run_id)`` is False, and those
        naming no run once older than ``older_than`` seconds (in one task's folder, or all);
        (files, bytes) removed."""
        files = freed = 0
        if not self.root.is_dir():
            return files, freed
        cutoff = time.time() - older_than
        folders = [self.folder(task_id)] if task_id is not None else self.root.iterdir()
        for folder in folders:
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if not path.name.startswith(_TEMP_PREFIXES):
                    continue
                match = _TEMP_RUN.match(path.name)
                if match is not None:
                    garbage = not is_active(int(match.group(1)))
                else:
                    try:
                        garbage = path.stat().st_mtime < cutoff
                    except FileNotFoundError:
                        continue
                if garbage:
                    size = _unlink(path)
                    files += 1 if size >= 0 else 0
                    freed += max(size, 0)
        return files, freed

    def remove_task(self, task_id: int) -> None:
        """Delete every file of a task (when the task is deleted)."""
        shutil.rmtree(self.folder(task_id), ignore_errors=True)


def _unlink(path: Path) -> int:
    """Remove a file; its size, or -1 if it was already gone."""
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return -1
    return size


def get_store() -> LocalFeedStore | S3FeedStore:
    """The configured feed store: a local folder, or a bucket for ``s3://bucket/prefix``."""
    where = str(current_app.config["FEED_STORE"])
    if where.startswith("s3://"):
        from impexmod.runs import s3store

        return s3store.from_config(current_app)
    return LocalFeedStore(where, Path(current_app.instance_path) / "uploads")
