"""The catch-up cursor on a feed URL: retained deltas in order, 204 when current, 410 naming
the full feed when a delta is gone, and no change without ?cursor."""

from __future__ import annotations

import pytest

from impexmod import jobs, tasks
from impexmod.extensions import db
from impexmod.feedstore import get_store
from impexmod.models import Language, Product, StockAvailable
from tests.support import parse_feed


@pytest.fixture
def stock(app):
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
    task = tasks.create_exporter("deltas", "stock", strategy="incremental")
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


def test_an_expired_cursor_names_the_full_feed(client, stock):
    task = tasks.create_exporter("deltas", "stock", strategy="incremental")
    full = tasks.create_exporter("snapshot", "stock")
    first = run(task)
    stock.quantity = 9
    db.session.commit()
    run(task)
    store = get_store()
    store.path(task.id, first.file_key).unlink()  # as retention does
    gone = Got(client, url(task, cursor=0))
    assert gone.status_code == 410 and "X-Impexmod-Full" not in gone.headers  # not run yet
    run(full)
    gone = Got(client, url(task, cursor=0))
    assert gone.status_code == 410
    assert gone.headers["X-Impexmod-Full"] == tasks.feed_url(full)
    assert "full feed" in gone.get_data(as_text=True)


def test_a_bad_token_is_still_a_plain_404(client, stock):
    task = tasks.create_exporter("deltas", "stock", strategy="incremental")
    run(task)
    bad = url(task, cursor=0).replace("/feeds/", "/feeds/x")
    assert Got(client, bad).status_code == 404
