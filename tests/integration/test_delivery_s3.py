"""S3 delivery against moto's server mode on loopback: a real S3-protocol HTTP server, standing
in here for S3 and MinIO (boto3 speaks to it exactly as to them, multipart uploads included)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig

from impexmod.delivery import Destination, FeedMeta, InvalidDestination, check, deliver, validate
from tests.delivery_servers import cutting_proxy, free_port, stalling_server

META = FeedMeta(exporter="google", run_id=77)
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def moto_port():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield port
    server.stop()


@pytest.fixture
def bucket(moto_port):
    s3 = s3_client(moto_port)
    name = f"feeds-{os.urandom(4).hex()}"
    s3.create_bucket(Bucket=name)
    yield s3, name
    s3.close()


def s3_client(port):
    return boto3.session.Session().client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test-secret",
        config=BotoConfig(s3={"addressing_style": "path"}),
    )


def settings(port, bucket, **extra) -> dict:
    return {
        "bucket": bucket,
        "prefix": "exports/shop",
        "endpoint_url": f"http://127.0.0.1:{port}",
        "access_key_id": "test",
        "secret_access_key": "test-secret",
        "name_template": "{exporter}/{date:%Y/%m}/{exporter}-{run}.{ext}",
        "multipart_threshold_mb": 5,
    } | extra


def keys(s3, bucket) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


@pytest.fixture
def feed(tmp_path) -> Path:
    path = tmp_path / "feed.xml"
    path.write_bytes(os.urandom(MIB) * 12)  # 12 MiB: a multipart upload of three parts
    return path


def test_a_feed_is_uploaded_multipart_under_its_key(moto_port, bucket, feed):
    s3, name = bucket
    destination = Destination("s3", settings(moto_port, name))
    assert check(destination).ok
    outcome = deliver(destination, feed, META, timeout=10)
    assert outcome.ok, outcome.error
    month = outcome.started_at.strftime("%Y/%m")
    assert outcome.remote_name == f"exports/shop/google/{month}/google-77.xml"
    assert outcome.bytes == 12 * MIB
    assert keys(s3, name) == [outcome.remote_name]
    got = s3.get_object(Bucket=name, Key=outcome.remote_name)
    assert got["Body"].read() == feed.read_bytes()
    assert got["ContentType"] == "application/xml"
    assert got["ETag"].strip('"').endswith("-3")  # three parts


def test_a_missing_bucket_is_not_retried(moto_port, feed):
    outcome = deliver(Destination("s3", settings(moto_port, "no-such-bucket")), feed, META, 10)
    assert not outcome.ok and not outcome.retryable
    assert outcome.error.startswith("s3 no-such-bucket: NoSuchBucket"), outcome.error
    assert "test-secret" not in outcome.error
    assert not check(Destination("s3", settings(moto_port, "no-such-bucket"))).ok


def test_a_refused_connection_is_retryable(feed):
    outcome = deliver(Destination("s3", settings(free_port(), "feeds")), feed, META, timeout=5)
    assert not outcome.ok and outcome.retryable
    assert outcome.error.startswith("s3 feeds: cannot connect to http://127.0.0.1:"), outcome


def test_a_stalled_server_times_out(feed):
    with stalling_server() as port:
        start = time.monotonic()
        outcome = deliver(Destination("s3", settings(port, "feeds")), feed, META, timeout=1.5)
        elapsed = time.monotonic() - start
    assert not outcome.ok and outcome.retryable
    assert outcome.error == "s3 feeds: no answer within 1.5 s (timed out)"
    assert elapsed < 1.5 + 3, elapsed


def test_a_connection_dropped_mid_upload_leaves_no_object(moto_port, bucket, feed):
    s3, name = bucket
    with cutting_proxy(moto_port, cut_after=3 * MIB) as port:
        start = time.monotonic()
        outcome = deliver(Destination("s3", settings(port, name)), feed, META, timeout=5)
        elapsed = time.monotonic() - start
    assert not outcome.ok and outcome.retryable, outcome
    assert elapsed < 5 + 3
    assert keys(s3, name) == []
    # The multipart upload was aborted: no parts are left either.
    assert s3.list_multipart_uploads(Bucket=name).get("Uploads", []) == []


def test_settings_are_validated_naming_the_field():
    good = {"bucket": "feeds", "access_key_id": "a", "secret_access_key": "b"}
    with pytest.raises(InvalidDestination, match="^bucket:"):
        validate(Destination("s3", dict(good, bucket="Not_A_Bucket")))
    with pytest.raises(InvalidDestination, match="^secret_access_key: access_key_id and"):
        validate(Destination("s3", dict(good, secret_access_key="")))
    with pytest.raises(InvalidDestination, match="^prefix:"):
        validate(Destination("s3", dict(good, prefix="a/../b")))
    with pytest.raises(InvalidDestination, match="^endpoint_url:"):
        validate(Destination("s3", dict(good, endpoint_url="minio:9000")))


def test_bad_credentials_are_not_retried(moto_port, bucket, feed):
    import requests

    s3, name = bucket
    # moto checks credentials once told to (its IAM has no such key): every request is refused.
    requests.post(f"http://127.0.0.1:{moto_port}/moto-api/reset-auth", data=b"0", timeout=5)
    try:
        wrong = settings(moto_port, name, access_key_id="AKIAWRONG", secret_access_key="nope-123")
        outcome = deliver(Destination("s3", wrong), feed, META, timeout=10)
        checked = check(Destination("s3", wrong))
    finally:
        requests.post(f"http://127.0.0.1:{moto_port}/moto-api/reset-auth", data=b"inf", timeout=5)
    assert not outcome.ok and not outcome.retryable
    assert outcome.error.startswith(f"s3 {name}: InvalidAccessKeyId"), outcome.error
    assert "nope-123" not in outcome.error
    assert not checked.ok and not checked.retryable
    assert keys(s3, name) == []
