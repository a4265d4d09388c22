"""Translatable messages of the services, without Flask-Babel or a request.

A service says why it refuses something with ``msg``::

    raise InvalidTask("notify_emails", msg("%(address)s is not an e-mail address",
                                           address=repr(address)))

``msg`` returns a :class:`Message`: a ``str`` whose text is the English message, its
placeholders filled in, so the command line, the logs and the workers print it as before, and
anything that compares, slices or joins it sees that English text. It also keeps its English
template (``msgid``) and its values (``params``), with which the panel says it in the
merchant's language (``impexmod.admin.i18n.say``: gettext of the msgid, then the values).

The msgid is what translators see: its placeholders are ``%(name)s``, and the values a merchant
typed or named (a name, an address, a cron expression, a library's own error) are values, never
part of the msgid. A value that is itself a Message is translated too (a destination's label
before the reason its setting is refused). ``msg`` is the keyword pybabel extracts (``-k msg``,
docs/admin.md, "Languages"); the files that use it are listed in babel.cfg.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


class Message(str):
    """The English text of a message, with its ``msgid`` template and ``params`` to translate."""

    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, params: Mapping[str, Any] | None = None) -> Message:
        params = dict(params or {})
        self = super().__new__(cls, msgid % params if params else msgid)
        self.msgid = msgid
        self.params = params
        return self

    def __getnewargs__(self) -> tuple:  # pickled (an RQ job's exception) with its msgid
        return self.msgid, self.params

    def translate(self, gettext: Callable[[str], str]) -> str:
        """The message in ``gettext``'s language; Message values are translated the same way."""
        params = {
            name: value.translate(gettext) if isinstance(value, Message) else value
            for name, value in self.params.items()
        }
        text = gettext(self.msgid)
        return text % params if params else text


def msg(msgid: str, /, **params: Any) -> Message:
    """Mark an English message for the catalogue and fill in its ``%(name)s`` placeholders."""
    return Message(msgid, params)
