"""The feed store in an S3-compatible bucket (AWS S3, MinIO...), through boto3.

Layout under ``s3://<bucket>/<prefix>``, the local store's::

    <prefix>/<task id>/run-<run id>.<ext>       a run's file
    <prefix>/<task id>/run-<run id>.<ext>.gz    its gzip twin
    <prefix>/<task id>/current.json             which file the feed URL serves
    <prefix>/uploads/<key>                      files uploaded in the panel, for the workers

A run streams into a local scratch file (``.writing-run<id>-*`` under ``<instance>/scratch``);
``place`` uploads the finished file under its final key (a multipart upload above the
threshold: the object exists only once CompleteMultipartUpload succeeds, whole, and a failed
upload is aborted), and ``point`` replaces ``current.json`` with one PUT, atomic in S3. So, as
with the local store, a partner never reads half a file and a failed run leaves the previous
feed. Reads stream: ``open`` gives a seekable reader whose bytes come from a ranged GetObject.
"""

from __future__ import annotations

import gzip
import io
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
from typing import BinaryIO

import boto3
import botocore.exceptions as bx
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from flask import Flask

from impexmod.runs.feedstore import (
    _TEMP_RUN,
    CONTENT_TYPES,
    FeedFile,
    StoredObject,
    part_name,
)

MIB = 1024 * 1024
_KEY_RUN = re.compile(r"/run-(\d+)\.[^/]+$")
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


@dataclass(frozen=True)
class S3Settings:
    """Where the bucket is and how to reach it (credentials None: boto3's own chain)."""

    bucket: str
    prefix: str
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    multipart_bytes: int = 8 * MIB


def parse_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` as (bucket, prefix without slashes at its ends)."""
    rest = url[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"FEED_STORE {url!r}: s3://bucket/prefix names no bucket")
    return bucket, prefix.strip("/")


def make_client(settings: S3Settings):
    """A boto3 S3 client; boto3's standard retries stay on (a store read is worth retrying)."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key,
        aws_session_token=settings.session_token,
        config=BotoConfig(
            connect_timeout=10,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
            # MinIO and most S3-compatible servers want bucket names in the path.
            s3={"addressing_style": "path" if settings.endpoint_url else "auto"},
            max_pool_connections=32,
        ),
    )


def _missing(exc: bx.ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _MISSING


class S3ObjectReader(io.RawIOBase):
    """A stored object as a seekable binary stream: GetObject from the position, on demand."""

    def __init__(self, s3, bucket: str, key: str, size: int):
        self._s3, self._bucket, self._key, self._size = s3, bucket, key, size
        self._pos = 0
        self._end = size
        self._body = None

    def limit_to(self, end: int) -> None:
        """Read no further than ``end`` (exclusive): a range answer asks S3 for its bytes only,
        not for the rest of the object."""
        self._drop_body()
        self._end = min(max(end, 0), self._size)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        new = max(base + offset, 0)
        if new != self._pos:
            self._drop_body()
            self._pos = new
        return self._pos

    def readinto(self, buffer) -> int:
        if self._pos >= self._end:
            return 0
        if self._body is None:
            # Nothing is fetched until the first read: HEAD and 304 answers cost no GetObject.
            got = self._s3.get_object(
                Bucket=self._bucket, Key=self._key, Range=f"bytes={self._pos}-{self._end - 1}"
            )
            self._body = got["Body"]
        data = self._body.read(min(len(buffer), self._end - self._pos))
        n = len(data)
        buffer[:n] = data
        self._pos += n
        return n

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._drop_body()
        super().close()


class S3FeedStore:
    """A feed store in an S3 bucket, shared by web nodes and workers on any machine."""

    def __init__(
        self, settings: S3Settings, scratch: str | os.PathLike, s3=None, keep_for_gzip=True
    ):
        self.settings = settings
        self.bucket = settings.bucket
        self.prefix = settings.prefix
        self.scratch = Path(scratch)
        self.s3 = s3 if s3 is not None else make_client(settings)
        self._transfer = TransferConfig(
            multipart_threshold=settings.multipart_bytes,
            multipart_chunksize=max(settings.multipart_bytes, 5 * MIB),
            max_concurrency=4,
        )
        # Scratch files already uploaded by ``place``, kept for ``add_gzip`` in this process
        # (which then need not download the feed back); the sweeper removes any left.
        self.keep_for_gzip = keep_for_gzip
        self._placed: dict[tuple[int, str], Path] = {}

    # ------------------------------------------------------------------ keys

    def _key(self, *parts: object) -> str:
        tail = "/".join(str(p) for p in parts)
        return f"{self.prefix}/{tail}" if self.prefix else tail

    def _task_prefix(self, task_id: int) -> str:
        return self._key(task_id, "")

    def _list(self, prefix: str) -> Iterator[dict]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            yield from page.get("Contents", [])

    def _head(self, key: str) -> dict | None:
        try:
            return self.s3.head_object(Bucket=self.bucket, Key=key)
        except bx.ClientError as exc:
            if _missing(exc):
                return None
            raise

    def _upload(self, src: Path, key: str, content_type: str | None = None) -> None:
        extra = {"ContentType": content_type} if content_type else None
        self.s3.upload_file(str(src), self.bucket, key, ExtraArgs=extra, Config=self._transfer)

    # --------------------------------------------------------------- writing

    @contextmanager
    def writing(self, task_id: int, run_id: int) -> Iterator[tuple[BinaryIO, Path]]:
        """A local scratch file to write a feed into; removed if the block fails."""
        folder = self.scratch / str(task_id)
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
        """A scratch file to write one key-range part of a run's feed into, uploaded under
        ``part_name`` once the block ends (readable with ``open``); removed if it fails."""
        with self.writing(task_id, run_id) as (fh, tmp):
            yield fh
        try:
            self._upload(tmp, self._key(task_id, part_name(run_id, number)))
        finally:
            tmp.unlink(missing_ok=True)

    def remove_parts(self, task_id: int, run_id: int) -> int:
        """Delete the part objects of a run (once joined, or when it failed); bytes freed."""
        freed = 0
        for obj in self._list(self._key(task_id, part_name(run_id, "").removesuffix(".tmp"))):
            self.s3.delete_object(Bucket=self.bucket, Key=obj["Key"])
            freed += int(obj["Size"])
        return freed

    def place(self, task_id: int, run_id: int, tmp: Path, ext: str) -> FeedFile:
        """Upload a finished scratch file under its final key; the URL does not serve it yet."""
        name = f"run-{run_id}.{ext}"
        content_type = CONTENT_TYPES.get(ext, "application/octet-stream")
        size = tmp.stat().st_size
        try:
            self._upload(tmp, self._key(task_id, name), content_type)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if self.keep_for_gzip:
            self._placed[(task_id, name)] = tmp
        else:
            tmp.unlink(missing_ok=True)
        return FeedFile(
            task_id=task_id,
            run_id=run_id,
            name=name,
            size=size,
            etag=uuid.uuid4().hex,
            published_at=time.time(),
            content_type=content_type,
        )

    def placed(self, task_id: int, run_id: int, name: str) -> FeedFile | None:
        """The placed file of a run as a feed to point at, or None if it is not stored."""
        head = self._head(self._key(task_id, name))
        if head is None:
            return None
        gz = name + ".gz"
        return FeedFile(
            task_id=task_id,
            run_id=run_id,
            name=name,
            size=int(head["ContentLength"]),
            etag=uuid.uuid4().hex,
            published_at=head["LastModified"].timestamp(),
            content_type=CONTENT_TYPES.get(name.rsplit(".", 1)[-1], "application/octet-stream"),
            gzip_name=gz if self._head(self._key(task_id, gz)) is not None else None,
        )

    def point(self, feed: FeedFile, *, by_run: bool = True) -> None:
        """Make the feed URL serve a placed file (one PUT replaces ``current.json`` whole;
        there is no temporary, so ``by_run`` changes nothing)."""
        self.s3.put_object(
            Bucket=self.bucket,
            Key=self._key(feed.task_id, "current.json"),
            Body=json.dumps(asdict(feed)).encode(),
            ContentType="application/json",
        )

    def add_gzip(self, feed: FeedFile) -> FeedFile:
        """Compress a published feed into its twin, upload it, then announce it."""
        folder = self.scratch / str(feed.task_id)
        folder.mkdir(parents=True, exist_ok=True)
        kept = self._placed.pop((feed.task_id, feed.name), None)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".writing-run{feed.run_id}-", suffix=".gz")
        try:
            # The scratch file this process placed, else the object itself, streamed.
            local = kept is not None and kept.exists()
            source = open(kept, "rb") if local else self.open(feed.task_id, feed.name)
            with os.fdopen(fd, "wb") as raw, source as src:
                # mtime=0 keeps the compressed bytes a function of the content alone.
                with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz:
                    shutil.copyfileobj(src, gz, 1024 * 1024)
            self._upload(Path(tmp), self._key(feed.task_id, feed.name + ".gz"), "application/gzip")
        finally:
            Path(tmp).unlink(missing_ok=True)
            if kept is not None:
                kept.unlink(missing_ok=True)
        current = self.current(feed.task_id)
        if current and current.run_id == feed.run_id:
            current.gzip_name = feed.name + ".gz"
            self.point(current)
            return current
        return feed

    def current(self, task_id: int) -> FeedFile | None:
        """The feed a task's URL serves now, or None before its first successful run."""
        try:
            got = self.s3.get_object(Bucket=self.bucket, Key=self._key(task_id, "current.json"))
        except bx.ClientError as exc:
            if _missing(exc):
                return None
            raise
        with got["Body"] as body:
            return FeedFile(**json.loads(body.read()))

    # ---------------------------------------------------------------- reading

    def stat(self, task_id: int, name: str) -> StoredObject | None:
        """Size and time of one stored object, or None if it is not stored."""
        head = self._head(self._key(task_id, name))
        if head is None:
            return None
        return StoredObject(int(head["ContentLength"]), head["LastModified"].timestamp())

    def exists(self, task_id: int, name: str) -> bool:
        """Whether one file of a task is stored."""
        return self.stat(task_id, name) is not None

    def open(self, task_id: int, name: str) -> BinaryIO:
        """A streamed, seekable reader of a stored object (FileNotFoundError if it is gone)."""
        key = self._key(task_id, name)
        head = self._head(key)
        if head is None:
            raise FileNotFoundError(f"s3://{self.bucket}/{key}")
        return S3ObjectReader(self.s3, self.bucket, key, int(head["ContentLength"]))

    def names(self, task_id: int) -> list[str]:
        """The stored run files of a task (the pointer left out), sorted."""
        start = len(self._task_prefix(task_id))
        found = (obj["Key"][start:] for obj in self._list(self._task_prefix(task_id)))
        return sorted(n for n in found if n.startswith("run-") and "/" not in n)

    # --------------------------------------------------------------- removing

    def delete(self, task_id: int, name: str) -> int:
        """Delete one stored object; its size, or -1 if it was already gone."""
        found = self.stat(task_id, name)
        if found is None:
            return -1
        self.s3.delete_object(Bucket=self.bucket, Key=self._key(task_id, name))
        return found.size

    def remove_run_files(self, task_id: int, run_id: int) -> int:
        """Delete the placed file (and gzip twin) of a run that did not succeed; bytes freed."""
        current = self.current(task_id)
        freed = 0
        for obj in self._list(self._key(task_id, f"run-{run_id}.")):
            name = obj["Key"].rsplit("/", 1)[-1]
            if current is not None and name in (current.name, current.gzip_name):
                continue
            self.s3.delete_object(Bucket=self.bucket, Key=obj["Key"])
            freed += int(obj["Size"])
        for key in [k for k in self._placed if k[0] == task_id and f"run-{run_id}." in k[1]]:
            self._placed.pop(key).unlink(missing_ok=True)
        return freed

    def temporaries(self, task_id: int) -> list[str]:
        """A task's scratch files and unfinished multipart uploads (of runs going or dead)."""
        folder = self.scratch / str(task_id)
        local = [p.name for p in folder.iterdir()] if folder.is_dir() else []
        uploads = [u["Key"].rsplit("/", 1)[-1] for u in self._uploads(self._task_prefix(task_id))]
        found = (obj["Key"].rsplit("/", 1)[-1] for obj in self._list(self._task_prefix(task_id)))
        parts = [name for name in found if _TEMP_RUN.match(name)]
        return sorted(local + uploads + parts)

    def _uploads(self, prefix: str) -> Iterator[dict]:
        pages = self.s3.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        for page in pages:
            yield from page.get("Uploads", [])

    def remove_temporary(
        self, is_active, older_than: float, task_id: int | None = None
    ) -> tuple[int, int]:
        """Delete scratch files of runs for which ``is_active(run_id)`` is False (others once
        older than ``older_than`` seconds), and abort such runs' unfinished uploads."""
        files = freed = 0
        cutoff = time.time() - older_than
        folders = (
            [self.scratch / str(task_id)]
            if task_id is not None
            else (self.scratch.iterdir() if self.scratch.is_dir() else [])
        )
        for folder in folders:
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                match = _TEMP_RUN.match(path.name)
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue
                if (not is_active(int(match.group(1)))) if match else stat.st_mtime < cutoff:
                    path.unlink(missing_ok=True)
                    files, freed = files + 1, freed + stat.st_size
        prefix = self._task_prefix(task_id) if task_id is not None else self._key("")
        for upload in self._uploads(prefix):
            match = _KEY_RUN.search(upload["Key"])
            stale = upload["Initiated"].timestamp() < cutoff
            if (not is_active(int(match.group(1)))) if match else stale:
                self.s3.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                files += 1
        removed, size = self._remove_part_objects(prefix, is_active)
        return files + removed, freed + size

    def _remove_part_objects(self, prefix: str, is_active) -> tuple[int, int]:
        """Delete the uploaded parts (``part_name``) of runs no longer active."""
        files = freed = 0
        for obj in self._list(prefix):
            match = _TEMP_RUN.match(obj["Key"].rsplit("/", 1)[-1])
            if match is not None and not is_active(int(match.group(1))):
                self.s3.delete_object(Bucket=self.bucket, Key=obj["Key"])
                files, freed = files + 1, freed + int(obj["Size"])
        return files, freed

    def remove_task(self, task_id: int) -> None:
        """Delete every object of a task (when the task is deleted)."""
        keys = [{"Key": obj["Key"]} for obj in self._list(self._task_prefix(task_id))]
        for i in range(0, len(keys), 1000):  # DeleteObjects takes 1,000 keys at most
            self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys[i : i + 1000]})
        shutil.rmtree(self.scratch / str(task_id), ignore_errors=True)

    @contextmanager
    def local_copy(self, task_id: int, name: str) -> Iterator[Path]:
        """A scratch copy of a stored object for the block (a transport that wants a file)."""
        folder = self.scratch / str(task_id)
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".copy-", suffix=Path(name).suffix)
        os.close(fd)
        try:
            try:
                self.s3.download_file(self.bucket, self._key(task_id, name), tmp)
            except bx.ClientError as exc:
                if _missing(exc):
                    raise FileNotFoundError(name) from None
                raise
            yield Path(tmp)
        finally:
            Path(tmp).unlink(missing_ok=True)

    # ---------------------------------------------------------------- uploads

    def keep_upload(self, key: str, src: Path) -> None:
        """Keep a file uploaded in the panel under ``key``, where every worker can fetch it."""
        try:
            self._upload(src, self._key("uploads", key))
        finally:
            src.unlink(missing_ok=True)

    def fetch_upload(self, key: str, scratch: Path) -> tuple[Path, bool] | None:
        """A local temporary copy of a kept upload, to import; None if it is gone."""
        scratch.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=scratch, prefix=".upload-", suffix=Path(key).suffix)
        os.close(fd)
        try:
            self.s3.download_file(self.bucket, self._key("uploads", key), name)
        except bx.ClientError as exc:
            Path(name).unlink(missing_ok=True)
            if _missing(exc):
                return None
            raise
        return Path(name), True

    def upload_keys(self) -> list[str]:
        """The keys of the uploads kept, sorted."""
        start = len(self._key("uploads", ""))
        return sorted(obj["Key"][start:] for obj in self._list(self._key("uploads", "")))

    def remove_upload(self, key: str) -> None:
        """Delete a kept upload (nothing happens if it is already gone)."""
        self.s3.delete_object(Bucket=self.bucket, Key=self._key("uploads", key))


def settings_of(app: Flask) -> S3Settings:
    """The bucket settings from ``FEED_STORE`` and the ``S3_*`` configuration keys."""
    cfg = app.config
    bucket, prefix = parse_url(str(cfg["FEED_STORE"]))
    return S3Settings(
        bucket=bucket,
        prefix=prefix,
        endpoint_url=cfg.get("S3_ENDPOINT_URL") or None,
        region=cfg.get("S3_REGION") or None,
        access_key_id=cfg.get("S3_ACCESS_KEY_ID") or None,
        secret_access_key=cfg.get("S3_SECRET_ACCESS_KEY") or None,
        session_token=cfg.get("S3_SESSION_TOKEN") or None,
        multipart_bytes=max(int(cfg.get("S3_MULTIPART_MB") or 8), 5) * MIB,
    )


def from_config(app: Flask) -> S3FeedStore:
    """The app's S3 store, made once per process and settings (a boto3 client is slow to make
    and safe to share between threads, not across a fork)."""
    settings = settings_of(app)
    gzip_twins = bool(app.config.get("GZIP_FEEDS", True))
    cache = app.extensions.setdefault("impexmod_s3_store", {})
    key = (os.getpid(), settings, gzip_twins)
    store = cache.get(key)
    if store is None:
        for old in cache.values():
            old.s3.close()
        cache.clear()
        scratch = Path(app.instance_path) / "scratch"
        store = cache[key] = S3FeedStore(settings, scratch, keep_for_gzip=gzip_twins)
    return store
