"""The feed URL's per-process cache (impexmod.runs.feedcache): a rotated or deleted task's old
URL dies at once in the process that rotated it, and within IMPEXMOD_FEED_CACHE_SECONDS in the
others (another app on the same database and store stands for another web process); a token
that opens nothing is never kept; 0 turns the cache off."""

from __future__ import annotations

import time

import pytest

from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.factories.seed import seed_catalog
from impexmod.runs import feedcache, tasks, tokens


@pytest.fixture
def feed(app):
    """An exporter whose feed has been produced; its feed path."""
    seed_catalog(db.engine, 5, seed=2)
    task = exporters.create_exporter("cached", "products", "xml")
    assert jobs.start_run(task, inline=True).status == "succeeded"
    return task, f"/feeds/{tokens.make_token(task)}/products.xml"


def _status(client, path: str) -> int:
    """The status of a GET, its response closed (it holds the feed file open)."""
    response = client.get(path)
    response.close()
    return response.status_code


def _other(app, app_like, seconds):
    """Another web process of the same shop: same database, store and secret key."""
    return app_like(
        FEED_STORE=app.config["FEED_STORE"],
        SECRET_KEY=app.config["SECRET_KEY"],
        FEED_CACHE_SECONDS=seconds,
    )


def test_a_rotated_url_dies_at_once_here_and_within_the_cache_seconds_elsewhere(
    app, app_like, feed
):
    task, path = feed
    other = _other(app, app_like, 0.5).test_client()
    here = app.test_client()
    assert _status(here, path) == 200
    assert _status(other, path) == 200  # now kept by the other process
    tasks.rotate_token(task)
    assert _status(here, path) == 404  # forgotten where it was rotated
    assert _status(other, path) == 200  # the other process has not seen it yet
    time.sleep(0.6)
    assert _status(other, path) == 404
    new_path = f"/feeds/{tokens.make_token(task)}/products.xml"
    assert _status(here, new_path) == 200 and _status(other, new_path) == 200


def test_a_deleted_task_is_forgotten_and_wrong_tokens_are_never_kept(app, feed):
    task, path = feed
    client = app.test_client()
    assert _status(client, path) == 200
    for n in range(50):
        assert _status(client, f"/feeds/wrong{n}/products.xml") == 404
    cache = feedcache.cache(app)
    assert len(cache.tokens) == 1
    tasks.delete_task(db.session.get(type(task), task.id))
    assert cache.tokens == {}
    assert _status(client, path) == 404


def test_zero_seconds_turns_the_cache_off(app, app_like, feed):
    task, path = feed
    other = _other(app, app_like, 0).test_client()
    assert _status(other, path) == 200
    tasks.rotate_token(task)
    assert _status(other, path) == 404
