"""S3 and S3-compatible stores (MinIO...) through boto3: ``upload_file``, multipart above a
threshold, under a key made from the prefix and the name template.

Atomic by the protocol: an object appears only when its PUT, or the CompleteMultipartUpload of
its parts, succeeds, whole; an upload that fails is aborted (s3transfer sends
AbortMultipartUpload), so nothing is left under the key. boto3's own retries are off: retrying
is the caller's, with its backoff.
"""

from __future__ import annotations

import mimetypes
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.exceptions as bx
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig

from impexmod.delivery.base import (
    DeliveryError,
    FeedMeta,
    InvalidDestination,
    flag,
    integer,
    render_name,
    text,
)
from impexmod.messages import msg

MIB = 1024 * 1024
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
PERMANENT = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "NoSuchBucket",
        "InvalidBucketName",
        "AllAccessDisabled",
        "AccountProblem",
        "InvalidArgument",
        "403",
        "404",
    }
)


@dataclass(frozen=True)
class Config:
    bucket: str
    prefix: str
    endpoint_url: str | None
    region: str
    access_key_id: str | None
    secret_access_key: str | None
    session_token: str | None
    path_style: bool
    verify_tls: bool
    multipart_threshold: int
    name_template: str | None

    @property
    def where(self) -> str:
        return f"s3 {self.bucket}"


def validate(kind: str, settings: dict) -> Config:
    """Checked settings; InvalidDestination naming the field otherwise."""
    bucket = text(settings, "bucket")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise InvalidDestination(
            "bucket", msg("%(bucket)s is not an S3 bucket name", bucket=repr(bucket))
        )
    prefix = text(settings, "prefix", required=False, default="").strip("/")
    if any(p in ("", ".", "..") for p in prefix.split("/")) and prefix:
        raise InvalidDestination(
            "prefix", msg("%(prefix)s must not contain '..' or empty parts", prefix=repr(prefix))
        )
    endpoint = text(settings, "endpoint_url", required=False)
    if endpoint and not re.match(r"^https?://[^/\s]+", endpoint):
        raise InvalidDestination("endpoint_url", msg("must be an http:// or https:// URL"))
    key_id = text(settings, "access_key_id", required=False)
    secret = settings.get("secret_access_key") or None
    if bool(key_id) != bool(secret):
        raise InvalidDestination(
            "secret_access_key" if key_id else "access_key_id",
            msg("access_key_id and secret_access_key go together"),
        )
    return Config(
        bucket=bucket,
        prefix=prefix,
        endpoint_url=endpoint,
        region=text(settings, "region", required=False, default="us-east-1"),
        access_key_id=key_id,
        secret_access_key=secret,
        session_token=settings.get("session_token") or None,
        path_style=flag(settings, "path_style", default=bool(endpoint)),
        verify_tls=flag(settings, "verify_tls", default=True),
        multipart_threshold=integer(settings, "multipart_threshold_mb", 8, low=5, high=5000) * MIB,
        name_template=text(settings, "name_template", required=False),
    )


def remote_name(config: Config, path: Path, meta: FeedMeta) -> str:
    """The object key: the prefix, then the rendered template (which may have folders)."""
    name = render_name(config.name_template, path, meta)
    return posixpath.join(config.prefix, name) if config.prefix else name


def client(config: Config, timeout: float):
    """A boto3 S3 client with the timeouts and no retries of its own."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=config.endpoint_url,
        region_name=config.region,
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        aws_session_token=config.session_token,
        verify=config.verify_tls,
        config=BotoConfig(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"total_max_attempts": 1, "mode": "standard"},
            s3={"addressing_style": "path" if config.path_style else "auto"},
        ),
    )


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _failure(exc: BaseException, config: Config, timeout: float) -> DeliveryError:
    where = config.where
    for cause in _chain(exc):
        if isinstance(cause, bx.ClientError):
            error = cause.response.get("Error", {})
            code = str(error.get("Code") or "")
            status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            said = " ".join(str(error.get("Message") or "").split())[:150]
            retryable = code not in PERMANENT and (status >= 500 or status in (0, 408, 429))
            return DeliveryError(
                f"{where}: {code or status}{': ' + said if said else ''}", retryable
            )
        if isinstance(cause, bx.ConnectTimeoutError | bx.ReadTimeoutError):
            return DeliveryError(f"{where}: no answer within {timeout:g} s (timed out)", True)
        if isinstance(cause, bx.EndpointConnectionError):
            return DeliveryError(
                f"{where}: cannot connect to {cause.kwargs.get('endpoint_url')}", True
            )
        if isinstance(cause, bx.ConnectionClosedError | bx.ConnectionError):
            return DeliveryError(f"{where}: connection lost", True)
        if isinstance(cause, bx.NoCredentialsError):
            return DeliveryError(f"{where}: no credentials (access_key_id)", False)
    return DeliveryError(f"{where}: {type(exc).__name__}: {exc}", True)


def send(config: Config, path: Path, key: str, meta: FeedMeta, timeout: float) -> None:
    """upload_file: one PUT, or a multipart upload above the threshold (aborted on failure)."""
    s3 = client(config, timeout)
    content_type = meta.content_type or mimetypes.guess_type(path.name)[0]
    extra = {"ContentType": content_type} if content_type else None
    transfer = TransferConfig(
        multipart_threshold=config.multipart_threshold,
        multipart_chunksize=max(config.multipart_threshold, 5 * MIB),
        max_concurrency=4,
    )
    try:
        s3.upload_file(str(path), config.bucket, key, ExtraArgs=extra, Config=transfer)
    except Exception as exc:
        raise _failure(exc, config, timeout) from None
    finally:
        s3.close()


def check(config: Config, timeout: float) -> None:
    """HEAD the bucket: reachable, credentials good, bucket there."""
    s3 = client(config, timeout)
    try:
        s3.head_bucket(Bucket=config.bucket)
    except Exception as exc:
        raise _failure(exc, config, timeout) from None
    finally:
        s3.close()
