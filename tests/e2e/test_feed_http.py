"""The feed URL over real HTTP: 404 before the first run, then 200/304/HEAD/gzip/ranges.

Every test runs on the local feed store and on an S3 bucket (``feed_store`` in
tests/conftest.py: moto's server mode on loopback, standing in for S3/MinIO)."""

from __future__ import annotations

import gzip

import pytest
import requests

from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.models import Language, Product, ProductLang
from impexmod.runs import tasks
from tests.support import live_server, parse_feed


@pytest.fixture
def served(app, feed_store):
    """A live server whose public URL is the one feed URLs are built with, on each store."""
    db.session.add(Language(id=1, iso_code="en", name="English"))
    for i in range(3):
        product = Product(reference=f"REF-{i}", price=10 + i)
        db.session.add(product)
        db.session.flush()
        db.session.add(
            ProductLang(id_product=product.id, id_lang=1, name=f"P{i}", link_rewrite=f"p{i}")
        )
    db.session.commit()
    with live_server(app) as base:
        app.config["PUBLIC_URL"] = base
        yield base


def _run(task):
    run = jobs.start_run(task, inline=True)
    assert run.status == "succeeded", run.error
    return run


def test_url_is_404_until_the_first_run_then_serves_the_feed(served):
    task = exporters.create_exporter("products", "products")
    url = tasks.feed_url(task)
    assert url.startswith(served)
    before = requests.get(url, timeout=10)
    assert before.status_code == 404
    _run(task)
    after = requests.get(url, timeout=10)
    assert after.status_code == 200
    assert after.headers["Content-Type"].startswith("application/xml")
    root = parse_feed(after.content)
    assert root.tag == "advancedimporter"
    assert [p.findtext("reference") for p in root.findall("product")] == ["REF-0", "REF-1", "REF-2"]


def test_conditional_get_head_gzip_and_ranges(served):
    task = exporters.create_exporter("products", "products")
    _run(task)
    url = tasks.feed_url(task)
    plain = requests.get(url, headers={"Accept-Encoding": "identity"}, timeout=10)
    body = plain.content
    etag, modified = plain.headers["ETag"], plain.headers["Last-Modified"]
    assert "Content-Encoding" not in plain.headers
    assert plain.headers["Vary"] == "Accept-Encoding"

    again = requests.get(
        url, headers={"If-None-Match": etag, "Accept-Encoding": "identity"}, timeout=10
    )
    assert again.status_code == 304 and again.content == b""
    since = requests.get(
        url, headers={"If-Modified-Since": modified, "Accept-Encoding": "identity"}, timeout=10
    )
    assert since.status_code == 304

    head = requests.head(url, headers={"Accept-Encoding": "identity"}, timeout=10)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["Content-Length"]) == len(body)

    zipped = requests.get(url, headers={"Accept-Encoding": "gzip"}, stream=True, timeout=10)
    raw = zipped.raw.read(decode_content=False)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["ETag"] != etag
    assert gzip.decompress(raw) == body

    part = requests.get(
        url, headers={"Range": "bytes=0-99", "Accept-Encoding": "identity"}, timeout=10
    )
    assert part.status_code == 206
    assert part.content == body[:100]
    assert part.headers["Content-Range"] == f"bytes 0-99/{len(body)}"
    tail = requests.get(
        url, headers={"Range": "bytes=100-", "Accept-Encoding": "identity"}, timeout=10
    )
    assert tail.content == body[100:]


def test_new_run_changes_the_etag(served):
    task = exporters.create_exporter("products", "products")
    _run(task)
    url = tasks.feed_url(task)
    first = requests.get(url, timeout=10).headers["ETag"]
    _run(task)
    second = requests.get(url, headers={"If-None-Match": first}, timeout=10)
    assert second.status_code == 200
    assert second.headers["ETag"] != first


def test_bad_tampered_rotated_tokens_and_wrong_names_get_the_same_404(served):
    task = exporters.create_exporter("products", "products")
    other = exporters.create_exporter("other", "products")
    _run(task)
    _run(other)
    url = tasks.feed_url(task)
    token = url.split("/")[-2]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    responses = [
        requests.get(url.replace(token, tampered), timeout=10),
        requests.get(f"{served}/feeds/not-a-token/products.xml", timeout=10),
        requests.get(url.replace("products.xml", "stock.xml"), timeout=10),
    ]
    new_url = tasks.rotate_token(task)
    responses.append(requests.get(url, timeout=10))
    assert {r.status_code for r in responses} == {404}
    assert {r.text for r in responses} == {"Not found\n"}
    assert requests.get(new_url, timeout=10).status_code == 200
    # Rotating one exporter's token leaves the others alone.
    assert requests.get(tasks.feed_url(other), timeout=10).status_code == 200


def test_failed_run_leaves_the_previous_feed_in_place(served, monkeypatch):
    task = exporters.create_exporter("products", "products")
    _run(task)
    url = tasks.feed_url(task)
    good = requests.get(url, timeout=10)

    from impexmod.entities.products import ProductDescriptor

    def explode(self, ctx, record, out):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ProductDescriptor, "render", explode)
    failed = jobs.start_run(task, inline=True)
    assert failed.status == "failed"
    assert "disk on fire" in failed.error
    still = requests.get(url, timeout=10)
    assert still.status_code == 200
    assert still.headers["ETag"] == good.headers["ETag"]
    assert still.content == good.content
    # No temporary file was left behind.
    from impexmod.runs.feedstore import get_store

    assert get_store().temporaries(task.id) == []
