"""Signing in: Flask-Login over impexmod.users, and the base every secured view inherits."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import redirect, request, url_for
from flask_login import LoginManager, current_user

from impexmod import users


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
login_manager.login_message = "Please sign in to open this page."
login_manager.login_message_category = "info"


@login_manager.user_loader
def _load_user(user_id: str):
    user = users.get_user(user_id)
    return user if user is not None and user.is_active else None


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a page of the panel on this site, else None (no open redirects)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/admin"):
        return None
    return target


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
