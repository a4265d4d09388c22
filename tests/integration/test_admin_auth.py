"""Admin panel access: accounts, login, logout, session expiry, CSRF, redirects.

Also holds the small ``Panel`` helper the other admin tests import.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from html import unescape

import pytest

from impexmod.admin import users
from impexmod.extensions import db
from impexmod.models import User

EMAIL = "merchant@shop.test"
PASSWORD = "correct horse battery"
TOKEN = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')

PANEL_PAGES = [
    "/admin/",
    "/admin/tasks/",
    "/admin/tasks/new/",
    "/admin/tasks/1/edit/",
    "/admin/tasks/1/preview/",
    "/admin/runs/",
    "/admin/runs/1/",
    "/admin/runs/1/file",
    "/admin/runs/progress?ids=1",
    "/admin/products/",
    "/admin/products/edit/?id=1",
    "/admin/categories/",
    "/admin/suppliers/",
    "/admin/orders/",
]


class Panel:
    """A browser-like test client of the panel, posting forms with their CSRF token.

    Each request runs in its own application context, as in production: the ``app`` fixture
    keeps one pushed, and requests would otherwise share its ``g`` (the signed-in user and
    the CSRF token are cached there).
    """

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()

    def _call(self, method: str, path: str, follow_redirects: bool = False, **kwargs):
        # Buffered: the response is read and closed at once (files sent by send_file too).
        kwargs.setdefault("buffered", True)
        with self.app.app_context():
            response = getattr(self.client, method)(path, **kwargs)
        # Redirects are followed here, so that each request has its own context too.
        while follow_redirects and response.status_code in (301, 302, 303):
            with self.app.app_context():
                response = self.client.get(response.headers["Location"], buffered=True)
        return response

    def token(self, path: str = "/admin/") -> str:
        """A CSRF token of the current session, read from a page that has a form."""
        response = self.get(path)
        if response.status_code == 302:  # signed out: the login page has a form too
            response = self.get("/admin/login/")
        found = TOKEN.search(response.get_data(as_text=True))
        assert found, f"no CSRF token on {path}"
        return found.group(1)

    def login(self, email: str = EMAIL, password: str = PASSWORD):
        """Sign in through the login form."""
        token = self.token("/admin/login/")
        data = {"email": email, "password": password, "csrf_token": token}
        return self._call("post", "/admin/login/", data=data)

    def get(self, path: str, **kwargs):
        """GET a page."""
        return self._call("get", path, **kwargs)

    def text(self, path: str) -> str:
        """The text of a page, HTML entities decoded."""
        return unescape(self.get(path).get_data(as_text=True))

    def post(self, path: str, data: dict | None = None, token: bool = True, **kwargs):
        """POST a form of the panel, with a valid CSRF token unless ``token`` is False."""
        form = {"csrf_token": self.token(), **(data or {})} if token else dict(data or {})
        return self._call("post", path, data=form, **kwargs)


def signed_in(app) -> Panel:
    """A new merchant account, and a client signed in with it (for the other admin tests)."""
    users.create_user(EMAIL, PASSWORD)
    helper = Panel(app)
    assert helper.login().status_code == 302
    return helper


@pytest.fixture
def merchant(app) -> User:
    """A merchant account."""
    return users.create_user(EMAIL, PASSWORD)


@pytest.fixture
def anonymous(app) -> Panel:
    """A client that has not signed in."""
    return Panel(app)


@pytest.fixture
def panel(app, merchant) -> Panel:
    """A client signed in as the merchant."""
    helper = Panel(app)
    assert helper.login().status_code == 302
    return helper


@pytest.mark.parametrize("path", PANEL_PAGES)
def test_anonymous_visits_go_to_the_login_page(anonymous, path):
    response = anonymous.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login/?next=")


def test_anonymous_post_without_token_is_refused(anonymous):
    response = anonymous.post("/admin/tasks/new/", data={"name": "x"}, token=False)
    assert response.status_code == 400


def test_login_with_a_wrong_password_says_so_and_opens_nothing(anonymous, merchant):
    response = anonymous.login(password="wrong password")
    assert response.status_code == 200
    assert "Wrong e-mail or password." in response.get_data(as_text=True)
    assert anonymous.login(email="nobody@shop.test").status_code == 200
    assert anonymous.get("/admin/").status_code == 302


def test_login_then_logout(anonymous, merchant):
    response = anonymous.login(email="  Merchant@Shop.TEST ")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    page = anonymous.get("/admin/").get_data(as_text=True)
    assert "Dashboard" in page and EMAIL in page
    assert anonymous.post("/admin/logout/").status_code == 302
    assert anonymous.get("/admin/").status_code == 302


def test_login_returns_to_the_page_asked_for_but_never_off_site(anonymous, merchant):
    data = {"email": EMAIL, "password": PASSWORD}
    response = anonymous.post("/admin/login/?next=/admin/runs/", data=data)
    assert response.headers["Location"] == "/admin/runs/"
    anonymous.post("/admin/logout/")
    response = anonymous.post("/admin/login/?next=https://evil.test/admin/", data=data)
    assert response.headers["Location"] == "/admin/"


def test_logout_needs_a_post_with_the_token(panel):
    assert panel.get("/admin/logout/").status_code == 405
    assert panel.post("/admin/logout/", token=False).status_code == 400
    assert panel.get("/admin/").status_code == 200


def test_post_without_csrf_token_is_refused(panel):
    data = {"name": "No token", "entity": "products", "format": "xml", "strategy": "full"}
    response = panel.post("/admin/tasks/new/", data=data, token=False)
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "Form refused" in body and "Traceback" not in body
    forged = panel.post("/admin/tasks/new/", data={**data, "csrf_token": "forged"}, token=False)
    assert forged.status_code == 400
    assert "No token" not in panel.get("/admin/tasks/").get_data(as_text=True)


def test_sessions_expire(app, panel):
    assert panel.get("/admin/").status_code == 200
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=1)
    panel.get("/admin/")  # the cookie is re-issued with the short lifetime
    time.sleep(2.1)
    response = panel.get("/admin/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login/")


def test_session_lifetime_defaults_to_hours_not_a_month(app):
    assert app.config["PERMANENT_SESSION_LIFETIME"] == timedelta(hours=8)
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_disabled_account_cannot_sign_in_and_loses_its_session(app, panel, merchant):
    merchant.active = False
    db.session.commit()
    assert panel.get("/admin/").status_code == 302
    assert Panel(app).login().status_code == 200


def test_passwords_are_hashed(merchant):
    assert PASSWORD not in merchant.password_hash
    assert merchant.password_hash.startswith(("scrypt:", "pbkdf2:"))
    assert users.authenticate(EMAIL, PASSWORD) is not None
    assert users.authenticate(EMAIL, PASSWORD + "x") is None


def test_bad_accounts_are_refused(app, merchant):
    with pytest.raises(users.InvalidUser) as taken:
        users.create_user(EMAIL.upper(), "another password")
    assert taken.value.field == "email"
    with pytest.raises(users.InvalidUser) as short:
        users.create_user("new@shop.test", "short")
    assert short.value.field == "password"
    with pytest.raises(users.InvalidUser):
        users.create_user("not an address", "long enough password")


def test_cli_creates_an_account_that_can_sign_in(app, runner):
    result = runner.invoke(
        args=["users", "create", "--email", "cli@shop.test", "--password", "from the cli"]
    )
    assert result.exit_code == 0, result.output
    assert "cli@shop.test" in result.output
    again = runner.invoke(args=["users", "create", "--email", "cli@shop.test", "--password", "x"])
    assert again.exit_code != 0
    assert Panel(app).login("cli@shop.test", "from the cli").status_code == 302
    listed = runner.invoke(args=["users", "list"])
    assert "cli@shop.test" in listed.output


def test_feed_endpoint_is_not_behind_the_login(anonymous):
    # Partners poll feed URLs without a session: a bad token is a plain 404, never a redirect.
    assert anonymous.get("/feeds/not-a-token/products.xml").status_code == 404
