"""Signing in: Flask-Login over impexmod.admin.users, and the base every secured view inherits."""

from __future__ import annotations

import hashlib
import math
import time
from urllib.parse import urlsplit

from flask import current_app, redirect, request, url_for
from flask_babel import ngettext
from flask_login import LoginManager, current_user

from impexmod.admin import users
from impexmod.admin.i18n import lazy_gettext as _l
from impexmod.extensions import LIMITER, Throttle


def is_panel_request() -> bool:
    """Whether the current request is for a page of the panel."""
    return request.path == "/admin" or request.path.startswith("/admin/")


class PanelLoginManager(LoginManager):
    """Flask-Login, kept out of the responses of the rest of the app."""

    def _update_remember_cookie(self, response):
        # Flask-Login reads the session after every request; Flask then adds "Vary: Cookie",
        # which must not reach feed responses (partners' caches would split on cookies).
        if not is_panel_request():
            return response
        return super()._update_remember_cookie(response)


login_manager = PanelLoginManager()
# A session cookie replayed from another browser (other address or user agent) is dropped.
login_manager.session_protection = "strong"
login_manager.login_view = "admin.login_view"
login_manager.login_message = _l("Please sign in to open this page.")
login_manager.login_message_category = "info"


@login_manager.user_loader
def _load_user(user_id: str):
    user = users.get_user(user_id)
    return user if user is not None and user.is_active else None


MAX_NEXT = 2000


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a page of the panel on this site, else None (no open redirects)."""
    if not target or len(target) > MAX_NEXT:
        return None
    # CR/LF would split the Location header (Werkzeug refuses it: a 500). Browsers drop tabs
    # and newlines and read "\\" as "/", and "///admin/" is the host "admin" to them though
    # urlsplit sees a path: what a browser follows must be what is checked here.
    if not target.isprintable() or "\\" in target or "//" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    if parts.path != "/admin" and not parts.path.startswith("/admin/"):
        return None
    if any(segment in (".", "..") for segment in parts.path.split("/")):
        return None  # "/admin/../feeds/..." is not a page of the panel
    return target


# ------------------------------------------------------------------- failed sign-in throttle


class SignInThrottled(Exception):
    """Too many failed sign-ins for this account or address; ``seconds`` until the next try."""

    def __init__(self, seconds: int):
        super().__init__(f"try again in {seconds} s")
        self.seconds = seconds

    @property
    def message(self) -> str:
        """What the login page says."""
        minutes = max(1, math.ceil(self.seconds / 60))
        return ngettext(
            "Too many failed sign-ins for this account or address; try again in %(num)d minute.",
            "Too many failed sign-ins for this account or address; try again in %(num)d minutes.",
            minutes,
        )


def _limits(name: str) -> list:
    from limits import parse_many

    value = current_app.config.get(name)
    return parse_many(str(value)) if value else []


def _account(email: str | None) -> str:
    # Hashed: short keys, and no e-mail address kept in Redis. Unknown e-mails are counted
    # the same way, so the throttle says nothing about which accounts exist.
    return "account:" + hashlib.sha256(users.normalize_email(email).encode()).hexdigest()[:32]


def _address() -> str:
    return "address:" + (request.remote_addr or "unknown")


def _counted(action):
    """``action(strategy, prefix)`` on the configured storage, or in memory if Redis is down."""
    from limits.errors import StorageError

    throttle: Throttle = current_app.extensions[LIMITER]
    try:
        return action(throttle.strategy, throttle.prefix)
    except StorageError as exc:
        # Still throttled, per process, rather than open to guessing or closed to merchants.
        current_app.logger.error(
            "sign-in throttle: storage unreachable, counting in memory: %s", exc.storage_error
        )
        return action(throttle.fallback, throttle.prefix)


def _wait(strategy, item, *keys) -> int:
    reset = strategy.get_window_stats(item, *keys).reset_time
    return max(1, math.ceil(reset - time.time()))


def begin_sign_in(email: str | None) -> None:
    """Count a sign-in try to ``email`` from this address; SignInThrottled if it is refused.

    The try counts against the account at once (atomically: parallel guesses cannot all slip
    through); a sign-in that works forgets the account's tries (``signed_in``), one that fails
    is also counted against the address (``failed_sign_in``)."""

    def check(strategy, prefix):
        address = (prefix, _address())
        for item in _limits("LOGIN_ADDRESS_LIMIT"):
            if not strategy.test(item, *address):
                raise SignInThrottled(_wait(strategy, item, *address))
        account = (prefix, _account(email))
        for item in _limits("LOGIN_ACCOUNT_LIMIT"):
            if not strategy.hit(item, *account):
                raise SignInThrottled(_wait(strategy, item, *account))

    _counted(check)


def failed_sign_in(email: str | None) -> None:
    """Count a failed sign-in against this address (the account's was counted on trying)."""

    def count(strategy, prefix):
        for item in _limits("LOGIN_ADDRESS_LIMIT"):
            strategy.hit(item, prefix, _address())

    _counted(count)


def signed_in(email: str | None) -> None:
    """Forget the account's counted tries: the merchant knew the password."""

    def forget(strategy, prefix):
        for item in _limits("LOGIN_ACCOUNT_LIMIT"):
            strategy.clear(item, prefix, _account(email))

    _counted(forget)


def to_login():
    """Send an anonymous visitor to the login page, coming back here afterwards."""
    here = request.full_path if request.query_string else request.path
    return redirect(url_for("admin.login_view", next=here))


class SecuredView:
    """Mixin of every panel view: signed-in merchants only, others go to the login page."""

    def is_accessible(self) -> bool:
        return current_user.is_authenticated

    def inaccessible_callback(self, name, **kwargs):
        return to_login()
