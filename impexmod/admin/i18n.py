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
from flask_babel import Babel, LazyString, get_locale, gettext, refresh
from markupsafe import Markup, escape

from impexmod.messages import Message

# The languages the panel speaks, in the order the language menu lists them (by their own name).
LANGUAGES = {"en": "English", "fr": "Français"}

babel = Babel()


class LazyText(LazyString):
    """A translation made when it is shown, escaped in HTML like any text.

    Flask-Babel's LazyString declares itself safe HTML (``__html__`` returns it as it is), so a
    label or description such as "shop:<id>" would reach the page as a tag.
    """

    def __html__(self) -> Markup:
        return escape(str(self))


def lazy_gettext(string: str, **variables) -> LazyText:
    """``gettext`` when the text is shown (form labels, menu names: defined at import time)."""
    return LazyText(gettext, string, **variables)


def say(said: object) -> str:
    """A service's message in the panel's language.

    ``said`` is a Message (``impexmod.messages``: its msgid translated, then its values), an
    exception carrying one (as its ``message``, such as InvalidTask, InvalidImporter or
    InvalidSchedule, or as its only argument), or anything else, said as ``str()`` says it (in
    English: a message the services have not marked).
    """
    if isinstance(said, BaseException):
        carried = getattr(said, "message", None)
        if not isinstance(carried, Message) and len(said.args) == 1:
            carried = said.args[0]
        said = carried if isinstance(carried, Message) else said
    if isinstance(said, Message):
        return said.translate(gettext)
    return str(said)


def _account_language() -> str | None:
    from flask_login import current_user

    language = getattr(current_user, "language", None)
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
