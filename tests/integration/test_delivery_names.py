"""The remote-name template, the outcome record, and what deliver() does before any network."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from impexmod.delivery import (
    DEFAULT_TEMPLATE,
    Destination,
    FeedMeta,
    InvalidDestination,
    check,
    deliver,
    render_name,
    validate,
)

WHEN = datetime(2026, 3, 9, 14, 5, 7, tzinfo=UTC)
META = FeedMeta(exporter="Google Shopping", run_id=42, date=WHEN)


def test_the_template_fills_date_exporter_run_and_extension():
    name = render_name("{exporter}-{date:%Y%m%d}-{run}.{ext}", Path("/x/run-42.xml"), META)
    assert name == "Google_Shopping-20260309-42.xml"
    assert render_name(None, Path("f.csv.gz"), META) == "Google_Shopping-20260309-140507-42.csv.gz"
    assert DEFAULT_TEMPLATE == "{exporter}-{date:%Y%m%d-%H%M%S}-{run}.{ext}"
    assert render_name("{date:%Y/%m}/{name}", Path("feed.v2.xlsx"), META) == "2026/03/feed.v2.xlsx"


@pytest.mark.parametrize(
    "exporter", ["../../etc/passwd", "/etc/passwd", "..", "a/../../b", "x\\..\\y", ".hidden"]
)
def test_no_value_can_climb_out_of_the_folder(exporter):
    name = render_name("{exporter}.{ext}", Path("f.xml"), FeedMeta(exporter=exporter, run_id=1))
    assert "/" not in name and ".." not in name and not name.startswith(".")


@pytest.mark.parametrize(
    "template",
    [
        "../{exporter}.{ext}",
        "/abs/{run}.{ext}",
        "a//{run}",
        ".{run}",
        "{nope}",
        "{run",
        "a/./{run}",
    ],
)
def test_an_unsafe_or_broken_template_is_refused(template):
    with pytest.raises(InvalidDestination, match="^name_template: "):
        render_name(template, Path("f.xml"), META)


def test_an_unknown_kind_or_a_missing_file_is_a_failed_outcome_not_an_exception(tmp_path):
    outcome = deliver(Destination("gopher", {}), tmp_path / "f.xml", META)
    assert not outcome.ok and not outcome.retryable
    assert outcome.error == (
        "invalid destination: kind: 'gopher' is not one of sftp, ftp, ftps, email, webhook, s3"
    )
    with pytest.raises(InvalidDestination, match="^kind:"):
        validate(Destination("gopher", {}))
    hook = Destination("webhook", {"url": "https://example.test/h", "secret": "s3cr3t"})
    outcome = deliver(hook, tmp_path / "missing.xml", META)
    assert not outcome.ok and not outcome.retryable
    assert outcome.error == "the feed file missing.xml does not exist"
    assert not check(Destination("s3", {"bucket": "x"})).ok


def test_the_record_is_plain_values_and_the_destination_hides_its_secrets(tmp_path):
    secret = Destination("sftp", {"host": "h", "username": "u", "password": "hunter22"})
    assert "hunter22" not in repr(secret) and "hunter22" not in str(secret)
    outcome = deliver(secret, tmp_path / "f.xml", META)
    record = outcome.as_dict()
    assert json.loads(json.dumps(record)) == record
    assert set(record) == {
        "kind",
        "started_at",
        "ended_at",
        "ok",
        "bytes",
        "remote_name",
        "error",
        "retryable",
        "learned",
    }
    assert "hunter22" not in json.dumps(record)
