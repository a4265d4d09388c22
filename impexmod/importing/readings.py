"""How the children of a native element are read: each shape compiled, once per element name,
to a table (child name -> how it is read, its converter or link kind), so that the parser
(:mod:`impexmod.importing.native`) does one lookup per child element of a large feed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from impexmod.entities.derived import SHAPES, SHAPES_SKIP
from impexmod.entities.shape import IGNORED
from impexmod.importing.entry import converter

PRICES = ("price", "wholesale_price")
# How a child element is read: one lookup in a per-element table says what it is, for each of
# the millions of child elements of a large feed.
VALUE, PRICE, LANG, LINK, NESTED, EXTRA, IGNORE, TEXT, LANG_TEXT = range(9)


@dataclass(frozen=True)
class Compiled:
    """A shape as a table: child name -> (how it is read, its converter or link kind)."""

    kind: str
    fields: dict[str, tuple[int, object, str]]


_COMPILED: dict[str, Compiled] = {}


def compiled(tag: str) -> Compiled:
    """The compiled shape of an element name."""
    plan = _COMPILED.get(tag)
    if plan is None:
        shape = SHAPES[tag]
        columns = shape.columns()
        for name in SHAPES_SKIP.get(tag, ()):
            columns.pop(name, None)
        # Filled from the lowest precedence up, so a name that is, say, both a column and a
        # nested element is read as the column.
        readings: dict[str, tuple[int, object]] = {n: (IGNORE, None) for n in IGNORED}
        readings.update((n, (EXTRA, None)) for n in shape.extra)
        readings.update((n, (NESTED, None)) for n in shape.nested)
        readings.update((n, (LINK, kind)) for n, kind in shape.links.items())
        readings.update((n, (LANG, converter(c))) for n, c in shape.lang_columns().items())
        readings.update(
            (n, (PRICE if n in PRICES else VALUE, converter(c))) for n, c in columns.items()
        )
        # Each entry then keys its dicts by these very strings, not by the new ones lxml makes
        # for every element: their hashes are cached and a batch pickles each name once.
        fields = {}
        for name, (code, arg) in readings.items():
            name = sys.intern(str(name))  # a plain str: column names are SQLAlchemy's subclass
            limits = getattr(arg, "limits", None)
            if limits is not None and code in (VALUE, LANG):
                # Text is most fields: converted right in the loop, as ``converter`` would.
                code, arg = (TEXT if code == VALUE else LANG_TEXT), limits
            elif code in (VALUE, PRICE):
                # Numbers, flags and dates repeat ("0.000000", "1"): each text is converted
                # once per field (the values are immutable), then found in its cache.
                arg = (arg, {})  # (converter, cache)
            fields[name] = (code, arg, name)
        plan = _COMPILED[tag] = Compiled(kind=shape.kind, fields=fields)
    return plan
