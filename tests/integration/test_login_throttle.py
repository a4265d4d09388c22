"""Failed sign-ins are throttled per account and per address (Flask-Limiter's storage: memory,
or the real Redis when the app has one); only failures count, and feeds are never limited."""

from __future__ import annotations

import re
import uuid
from html import unescape

import pytest
import redis

from impexmod.admin import users
from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.models import Language, Product, ProductLang
from impexmod.runs import tasks
from tests.integration.test_admin_auth import EMAIL, PASSWORD, TOKEN, Panel

REDIS_URL = "redis://127.0.0.1:6379/0"
TOO_MANY = re.compile(
    r"Too many failed sign-ins for this account or address; try again in (\d+) minutes?\."
)


class Visitor(Panel):
    """A browser at one address."""

    def __init__(self, app, address: str = "192.0.2.1"):
        super().__init__(app)
        self.address = address

    def _call(self, method, path, follow_redirects=False, **kwargs):
        kwargs.setdefault("environ_base", {"REMOTE_ADDR": self.address})
        return super()._call(method, path, follow_redirects, **kwargs)

    def try_password(self, email: str = EMAIL, password: str = "wrong password"):
        """Post the login form; the response."""
        found = TOKEN.search(self.get("/admin/login/").get_data(as_text=True))
        data = {"email": email, "password": password, "csrf_token": found.group(1)}
        return self.post("/admin/login/", data=data, token=False)


def refusal(response) -> str | None:
    """The throttling message on a login page, if any."""
    found = TOO_MANY.search(unescape(response.get_data(as_text=True)))
    return found.group(0) if found else None


@pytest.fixture
def merchant(app):
    """A merchant account."""
    return users.create_user(EMAIL, PASSWORD)


def test_defaults_are_five_per_account_and_twenty_per_address_in_fifteen_minutes(app):
    assert app.config["LOGIN_ACCOUNT_LIMIT"] == "5 per 15 minutes"
    assert app.config["LOGIN_ADDRESS_LIMIT"] == "20 per 15 minutes"


def test_failures_lock_the_account_even_with_the_right_password(app, merchant):
    visitor = Visitor(app)
    for _ in range(5):
        response = visitor.try_password()
        assert response.status_code == 200 and refusal(response) is None
        assert "Wrong e-mail or password." in response.get_data(as_text=True)
    locked = visitor.try_password(password=PASSWORD)
    assert locked.status_code == 429
    assert refusal(locked) == (
        "Too many failed sign-ins for this account or address; try again in 15 minutes."
    )
    assert "Traceback" not in locked.get_data(as_text=True)
    assert 840 <= int(locked.headers["Retry-After"]) <= 900
    assert visitor.get("/admin/").status_code == 302  # not signed in
    # From another address too: the account is what is guessed at.
    assert Visitor(app, "198.51.100.7").try_password(password=PASSWORD).status_code == 429
    # Another account from the first address is not locked by it.
    users.create_user("other@shop.test", PASSWORD)
    assert visitor.try_password("other@shop.test", PASSWORD).status_code == 302


def test_unknown_accounts_are_counted_like_known_ones(app):
    visitor = Visitor(app)
    for _ in range(5):
        assert visitor.try_password("nobody@shop.test").status_code == 200
    assert visitor.try_password(" NoBody@Shop.test ").status_code == 429


def test_failures_from_one_address_lock_that_address_only(app, merchant):
    sprayer = Visitor(app, "203.0.113.9")
    for i in range(20):
        assert sprayer.try_password(f"guess{i}@shop.test").status_code == 200
    locked = sprayer.try_password(password=PASSWORD)
    assert locked.status_code == 429 and refusal(locked)
    # The merchant at another address signs in as usual.
    assert Visitor(app, "192.0.2.50").try_password(password=PASSWORD).status_code == 302


def test_only_failures_count(app, merchant):
    visitor = Visitor(app)
    for _ in range(25):  # more than either limit
        assert visitor.try_password(password=PASSWORD).status_code == 302
        assert visitor.post("/admin/logout/").status_code == 302
    for _ in range(4):
        assert visitor.try_password().status_code == 200
    # A sign-in that works forgets the account's failures: four more are still allowed.
    assert visitor.try_password(password=PASSWORD).status_code == 302
    visitor.post("/admin/logout/")
    for _ in range(4):
        assert visitor.try_password().status_code == 200
    assert visitor.try_password(password=PASSWORD).status_code == 302


def test_limits_are_configuration(app, app_like, merchant):
    other = app_like(LOGIN_ACCOUNT_LIMIT="2 per 1 minute", LOGIN_ADDRESS_LIMIT="100 per hour")
    visitor = Visitor(other)
    assert visitor.try_password().status_code == 200
    assert visitor.try_password().status_code == 200
    locked = visitor.try_password(password=PASSWORD)
    assert locked.status_code == 429
    assert refusal(locked).endswith("try again in 1 minute.")
    unlimited = Visitor(app_like(LOGIN_ACCOUNT_LIMIT="", LOGIN_ADDRESS_LIMIT=""))
    for _ in range(30):
        assert unlimited.try_password().status_code == 200
    assert unlimited.try_password(password=PASSWORD).status_code == 302


@pytest.fixture
def redis_prefix():
    """A key prefix of this test's own in the shared Redis, removed afterwards."""
    prefix = f"impexmod-login-throttle-test-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    yield prefix, client
    for key in client.scan_iter(f"*{prefix}*"):
        client.delete(key)
    client.close()


@pytest.mark.redis
def test_with_redis_the_counts_are_shared_by_every_web_process(app, app_like, merchant,
                                                               redis_prefix):  # fmt: skip
    prefix, client = redis_prefix
    settings = {"REDIS_URL": REDIS_URL, "LOGIN_THROTTLE_PREFIX": prefix}
    first, second = app_like(**settings), app_like(**settings)
    for _ in range(3):
        assert Visitor(first).try_password().status_code == 200
    for _ in range(2):
        assert Visitor(second).try_password().status_code == 200
    assert list(client.scan_iter(f"*{prefix}*")), "the failures are counted in Redis"
    assert EMAIL not in " ".join(k.decode() for k in client.scan_iter(f"*{prefix}*"))
    assert Visitor(first).try_password(password=PASSWORD).status_code == 429
    # A process on another prefix (another shop on the same Redis) is not affected.
    elsewhere = app_like(REDIS_URL=REDIS_URL, LOGIN_THROTTLE_PREFIX=prefix + "-b")
    assert Visitor(elsewhere).try_password(password=PASSWORD).status_code == 302


def test_an_unreachable_redis_still_throttles_in_memory(app, app_like, merchant):
    down = app_like(REDIS_URL="redis://127.0.0.1:1/0")
    visitor = Visitor(down)
    assert visitor.try_password(password=PASSWORD).status_code == 302
    visitor.post("/admin/logout/")
    for _ in range(5):
        assert visitor.try_password().status_code == 200
    assert visitor.try_password(password=PASSWORD).status_code == 429


def test_feeds_are_never_limited_nor_given_limiter_headers(app, merchant):
    db.session.add(Language(id=1, iso_code="en", name="English"))
    product = Product(reference="REF-0", price=10)
    db.session.add(product)
    db.session.flush()
    db.session.add(ProductLang(id_product=product.id, id_lang=1, name="P0", link_rewrite="p0"))
    db.session.commit()
    task = exporters.create_exporter("products", "products")
    assert jobs.start_run(task, inline=True).status == "succeeded"
    path = tasks.feed_url(task).removeprefix(app.config["PUBLIC_URL"])
    partner = Visitor(app, "192.0.2.1")
    for i in range(20):  # the address is locked for sign-ins...
        assert partner.try_password(f"x{i}@shop.test").status_code == 200
    assert partner.try_password().status_code == 429
    for _ in range(60):  # ...and its feed polls all go through, untouched
        response = partner.get(path)
        assert response.status_code == 200
        limiter_headers = [h for h in response.headers.keys() if "ratelimit" in h.lower()]
        assert limiter_headers == [] and "Retry-After" not in response.headers
    assert partner.get("/feeds/not-a-token/products.xml").status_code == 404


def test_flask_limiter_settings_cannot_put_limits_or_headers_on_feeds(app, app_like, merchant):
    db.session.add(Language(id=1, iso_code="en", name="English"))
    db.session.commit()
    task = exporters.create_exporter("products", "products")
    assert jobs.start_run(task, inline=True).status == "succeeded"
    path = tasks.feed_url(task).removeprefix(app.config["PUBLIC_URL"])
    # Flask-Limiter's own settings, as an operator might put them in the environment.
    other = app_like(
        SECRET_KEY=app.config["SECRET_KEY"],
        FEED_STORE=app.config["FEED_STORE"],
        RATELIMIT_DEFAULT="1 per minute",
        RATELIMIT_APPLICATION="1 per minute",
        RATELIMIT_HEADERS_ENABLED=True,
    )
    partner = Visitor(other)
    for _ in range(5):
        response = partner.get(path)
        assert response.status_code == 200
        assert [h for h in response.headers.keys() if "ratelimit" in h.lower()] == []
    assert partner.try_password(password=PASSWORD).status_code == 302
