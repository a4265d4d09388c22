"""The panel's languages (Flask-Babel): English and French.

The language of a request is the merchant's own setting (``User.language``) when set, else the
browser's Accept-Language, else BABEL_DEFAULT_LOCALE (English unless configured). Outside a
request (a worker writing a notification) it is BABEL_DEFAULT_LOCALE.

The catalogue is impexmod/translations/<lang>/LC_MESSAGES/messages.po, extracted with babel.cfg
(docs/admin.md, "Languages"). Flask-Admin's and WTForms' own messages come from the
translations they ship, for the same language.
"""

from __future__ import annotations

from flask import Flask, has_request_context, request
from flask_babel import Babel, get_locale, refresh
from flask_babel import lazy_gettext as _l

# The languages the panel speaks, in the order the language menu lists them (by their own name).
LANGUAGES = {"en": "English", "fr": "Français"}

babel = Babel()


def language_label(code: str | None) -> str:
    """The name of a language in itself (the language menu), or "Browser's language"."""
    return LANGUAGES.get(code or "", None) or str(_l("Browser's language"))


def _account_language() -> str | None:
    from flask_login import current_user

    try:
        language = getattr(current_user, "language", None) if current_user else None
    except Exception:  # noqa: BLE001  (no user loader set up, a broken session...)
        return None
    return language if language in LANGUAGES else None


def select_locale() -> str | None:
    """The account's language, else the browser's, else None (BABEL_DEFAULT_LOCALE)."""
    if not has_request_context():
        return None
    return _account_language() or request.accept_languages.best_match(list(LANGUAGES))


def current_language() -> str:
    """The language code of the current request ("en" or "fr")."""
    locale = get_locale()
    return locale.language if locale is not None else "en"


def init_app(app: Flask) -> None:
    """Bind Flask-Babel: impexmod/translations, the locale selector, fresh per request."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "en")
    babel.init_app(app, locale_selector=select_locale)

    @app.before_request
    def _fresh_locale():
        # The locale is cached on ``g``: a test (or a CLI) may hold one app context across
        # several requests, each of which must choose its own language.
        refresh()

    @app.context_processor
    def _languages():
        return {"languages": LANGUAGES, "current_language": current_language}
