"""The catch-up cursor on a feed URL: retained deltas in order, 204 when current, 410 naming
the full feed when a delta is gone, and no change without ?cursor; on the local store and on
S3 (``feed_store``: moto's server on loopback, standing in for S3/MinIO)."""

from __future__ import annotations

import pytest

from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.models import Language, Product, StockAvailable
from impexmod.runs import tasks
from impexmod.runs.feedstore import get_store
from tests.support import parse_feed


@pytest.fixture
def stock(app, feed_store):
    db.session.add(Language(id=1, iso_code="en", name="English"))
    product = Product(reference="P", price=1)
    db.session.add(product)
    db.session.flush()
    db.session.add(StockAvailable(id_product=product.id, quantity=1))
    db.session.commit()
    return db.session.query(StockAvailable).one()


def run(task):
    done = jobs.start_run(task, inline=True)
    assert done.status == "succeeded", done.error
    return done


class Got:
    """A response read and closed (the served file must not stay open)."""

    def __init__(self, client, path: str):
        response = client.get(path)
        self.status_code, self.headers = response.status_code, response.headers
        self.data = response.get_data()
        response.close()

    def get_data(self, as_text: bool = False):
        return self.data.decode() if as_text else self.data


def url(task, **query) -> str:
    path = tasks.feed_url(task).split("://", 1)[1].split("/", 1)[1]
    return "/" + path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def test_cursor_walks_the_retained_deltas(client, stock):
    task = exporters.create_exporter("deltas", "stock", strategy="incremental")
    first = run(task)
    windows = []
    for quantity in (5, 6, 7):
        stock.quantity = quantity
        db.session.commit()
        windows.append(run(task))
    plain = Got(client, url(task))
    assert plain.status_code == 200
    assert plain.headers["X-Impexmod-Cursor"] == str(windows[-1].epoch_to)
    assert plain.headers["X-Impexmod-Window-From"] == str(windows[-1].epoch_from)
    cursor, seen = first.epoch_to, []
    while True:
        got = Got(client, url(task, cursor=cursor))
        if got.status_code == 204:
            break
        assert got.status_code == 200
        seen.append(int(parse_feed(got.data).findtext("stock/quantity")))
        cursor = int(got.headers["X-Impexmod-Cursor"])
        assert got.headers["X-Impexmod-More"] == ("1" if cursor < windows[-1].epoch_to else "0")
    assert seen == [5, 6, 7]
    assert Got(client, url(task, cursor=0)).data == Got(client, url(task, cursor=0)).data
    assert parse_feed(Got(client, url(task, cursor=0)).data).get("strategy") == "full"
    assert Got(client, url(task, cursor="x")).status_code == 400


def _expired(task):
    """Run ``task`` twice and remove its first file, as retention does: cursor 0 is expired."""
    first = run(task)
    StockAvailable.query.one().quantity += 8
    db.session.commit()
    run(task)
    assert get_store().delete(task.id, first.file_key) > 0


def test_an_expired_cursor_names_the_full_feed_under_its_own_token(client, stock):
    task = exporters.create_exporter("deltas", "stock", strategy="incremental")
    full = exporters.create_exporter("snapshot", "stock")
    _expired(task)
    gone = Got(client, url(task, cursor=0))
    assert gone.status_code == 410 and "X-Impexmod-Full" not in gone.headers  # none named
    exporters.set_full_companion(task, full.id)
    gone = Got(client, url(task, cursor=0))
    assert gone.status_code == 410 and "X-Impexmod-Full" not in gone.headers  # not run yet
    snapshot = run(full)
    gone = Got(client, url(task, cursor=0))
    assert gone.status_code == 410
    assert gone.headers["X-Impexmod-Full"] == tasks.feed_url(task) + "?snapshot=full"
    assert "full feed" in gone.get_data(as_text=True)
    served = Got(client, url(task, snapshot="full"))
    assert served.status_code == 200
    assert parse_feed(served.data).get("strategy") == "full"
    assert served.headers["X-Impexmod-Cursor"] == str(snapshot.epoch_to)
    with get_store().open(full.id, snapshot.file_key) as stored:
        assert served.data == stored.read()


def test_a_token_never_opens_or_hands_out_another_exporters_feed(client, stock):
    task = exporters.create_exporter("deltas", "stock", strategy="incremental")
    other = exporters.create_exporter("given to someone else", "stock")
    run(other)
    _expired(task)
    # An exporter the merchant did not name is never offered, whatever it lists.
    gone = Got(client, url(task, cursor=0))
    assert gone.status_code == 410 and "X-Impexmod-Full" not in gone.headers
    assert tasks.feed_url(other) not in gone.get_data(as_text=True)
    assert Got(client, url(task, snapshot="full")).status_code == 404
    exporters.set_full_companion(task, other.id)
    old_url = url(task, snapshot="full")
    assert Got(client, old_url).status_code == 200
    # Rotating the incremental exporter's token kills its snapshot URL with it.
    tasks.rotate_token(task)
    assert Got(client, old_url).status_code == 404
    # The companion's own URL is never given out, and its rotation changes nothing here.
    tasks.rotate_token(other)
    gone = Got(client, url(task, cursor=0))
    assert tasks.feed_url(other).split("/feeds/")[1] not in gone.headers["X-Impexmod-Full"]
    assert Got(client, url(task, snapshot="full")).status_code == 200


def test_a_full_companion_must_list_the_same_entities(stock):
    task = exporters.create_exporter("deltas", "stock", strategy="incremental")
    csv = exporters.create_exporter("csv", "stock", "csv")
    picked = exporters.create_exporter(
        "picked", "stock", filters=[{"field": "id", "op": "in", "value": "1"}]
    )
    products = exporters.create_exporter("products", "products")
    deltas = exporters.create_exporter("more deltas", "stock", strategy="incremental")
    for wrong, why in (
        (csv, "format"),
        (picked, "filters"),
        (products, "entity"),
        (deltas, "not a full exporter"),
    ):
        with pytest.raises(tasks.InvalidTask, match=why):
            exporters.set_full_companion(task, wrong.id)
    assert task.full_companion_id is None
    same = exporters.create_exporter("same", "stock")
    run(same)
    exporters.set_full_companion(task, same.id)
    _expired(task)
    same.format = "csv"  # edited since it was chosen: no longer the same file
    db.session.commit()
    from impexmod.importing import cursor

    assert cursor.full_companion(task) is None


def test_a_bad_token_is_still_a_plain_404(client, stock):
    task = exporters.create_exporter("deltas", "stock", strategy="incremental")
    run(task)
    bad = url(task, cursor=0).replace("/feeds/", "/feeds/x")
    assert Got(client, bad).status_code == 404
