"""Sign-in hardening: where ``next=`` may send a merchant after signing in, and the flags of the
session cookie (Secure when the shop is served over HTTPS, HttpOnly, SameSite=Lax)."""

from __future__ import annotations

import pytest

from impexmod.admin import users
from impexmod.admin.auth import safe_next
from tests.integration.test_admin_auth import EMAIL, PASSWORD, Panel

REFUSED = [
    "/admin/\r\nSet-Cookie: stolen=1",
    "/admin/runs/\nLocation: https://evil.test/",
    "/admin/%0d%0a\r",
    "/admin/\t/evil",
    "/admin/\x00",
    "/admin/\u2028",
    "/\\evil.test",
    "/admin\\..\\..\\evil.test",
    "\\\\evil.test/admin/",
    "//evil.test/admin/",
    "///admin/",
    "////evil.test/admin/",
    "/admin//evil.test",
    "https://evil.test/admin/",
    "http:/admin/",
    "javascript:alert(1)//admin/",
    "/administrator",
    "/admin/../feeds/x/products.xml",
    "/admin/./",
    "/feeds/",
    "admin/",
    "/admin/" + "x" * 3000,
]
KEPT = ["/admin", "/admin/", "/admin/runs/?task=3&status=failed", "/admin/import/7/"]


@pytest.mark.parametrize("target", REFUSED, ids=repr)
def test_safe_next_refuses_what_a_browser_could_follow_elsewhere(target):
    assert safe_next(target) is None


@pytest.mark.parametrize("target", KEPT)
def test_safe_next_keeps_panel_pages(target):
    assert safe_next(target) == target


@pytest.mark.parametrize("target", REFUSED[:6], ids=repr)
def test_signing_in_with_a_bad_next_lands_on_the_dashboard(app, target):
    users.create_user(EMAIL, PASSWORD)
    visitor = Panel(app)
    data = {"email": EMAIL, "password": PASSWORD, "csrf_token": visitor.token("/admin/login/")}
    response = visitor._call("post", "/admin/login/", query_string={"next": target}, data=data)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    assert "stolen" not in str(response.headers)


def _sign_in_cookie(app_like, **config) -> str:
    """The Set-Cookie header of a sign-in on an app with ``config``."""
    other = app_like(**config)
    visitor = Panel(other)
    response = visitor.login()
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("session=")
    return cookie


def test_the_session_cookie_is_secure_when_the_shop_is_served_over_https(app, app_like):
    users.create_user(EMAIL, PASSWORD)
    cookie = _sign_in_cookie(app_like, PUBLIC_URL="https://shop.test")
    assert "; Secure" in cookie and "; HttpOnly" in cookie and "SameSite=Lax" in cookie
    other = app_like(PUBLIC_URL="https://shop.test")
    assert other.config["REMEMBER_COOKIE_SECURE"] is True
    assert other.config["REMEMBER_COOKIE_HTTPONLY"] is True
    assert other.config["REMEMBER_COOKIE_SAMESITE"] == "Lax"


def test_over_plain_http_the_cookie_is_not_secure_but_still_httponly(app, app_like):
    users.create_user(EMAIL, PASSWORD)
    cookie = _sign_in_cookie(app_like)  # PUBLIC_URL: http://127.0.0.1:5000
    assert "Secure" not in cookie and "; HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_configuration_overrides_the_secure_flag_both_ways(app, app_like, monkeypatch):
    users.create_user(EMAIL, PASSWORD)
    # As an operator would, through the environment (values are read as JSON).
    monkeypatch.setenv("IMPEXMOD_SESSION_COOKIE_SECURE", "false")
    off = _sign_in_cookie(app_like, PUBLIC_URL="https://shop.test")
    assert "Secure" not in off
    monkeypatch.setenv("IMPEXMOD_SESSION_COOKIE_SECURE", "true")
    on = _sign_in_cookie(app_like)
    assert "; Secure" in on
