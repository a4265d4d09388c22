"""Which entities an exporter lists: all, or those matching its filters.

A filter is ``{"field": ..., "op": ..., "value": ...}`` (``value`` a list for ``in`` and
``not in``), read from CLI text by :func:`parse_filter`, checked against the entity by
:func:`check`, stored on the task and combined by its ``filter_match`` (``all`` | ``any``).
:meth:`Selection.where` turns them into one SQL condition on the entity's table, which the
reader adds to its id queries. The fields of each entity are in
:mod:`impexmod.export.filter_fields`, the kinds of value in :mod:`impexmod.export.filter_values`;
docs/selection.md documents the syntax for merchants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy.sql.elements import ColumnElement

from impexmod.export.filter_fields import Field, fields_of
from impexmod.export.filter_values import KIND_HELP, InvalidFilter, parse_value, show_value
from impexmod.messages import msg

__all__ = [
    "InvalidFilter",
    "OPERATORS",
    "Selection",
    "check",
    "field_names",
    "filter_text",
    "parse_filter",
]

OPERATORS = ("=", "!=", ">", ">=", "<", "<=", "~", "in", "not in")
SYNONYMS = {"==": "=", "<>": "!="}
LIST_OPS = ("in", "not in")
EXAMPLE = msg("write FIELD OP VALUE, e.g. category=Shoes, price>=10 or 'reference in A1,A2'")

_FIELD = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\s*")
_WORD_OP = re.compile(r"(not\s+in|in)(?=[\s(\[]|$)", re.IGNORECASE)
_SYMBOL_OP = re.compile(r"[=!<>~]+")
QUOTES = "\"'"


# ----------------------------------------------------------------------------------- syntax


def parse_filter(text: str) -> dict:
    """One filter from its CLI text (``category=Shoes``, ``price>=10``, ``reference in A1,A2``)."""
    source = (text or "").strip()
    if not source:
        raise InvalidFilter(msg("an empty filter: %(example)s", example=EXAMPLE))
    found = _FIELD.match(source)
    if not found:
        raise InvalidFilter(
            msg(
                "cannot read filter %(filter)s: it must start with a field; %(example)s",
                filter=repr(source),
                example=EXAMPLE,
            )
        )
    name, rest = found.group(1).lower(), source[found.end() :]
    word = _WORD_OP.match(rest)
    symbol = _SYMBOL_OP.match(rest)
    if word:
        op, rest = " ".join(word.group(1).lower().split()), rest[word.end() :]
    elif symbol:
        op, rest = SYNONYMS.get(symbol.group(0), symbol.group(0)), rest[symbol.end() :]
        if op not in OPERATORS:
            raise InvalidFilter(
                msg(
                    "cannot read filter %(filter)s: unknown operator %(op)s; use one of %(ops)s",
                    filter=repr(source),
                    op=repr(symbol.group(0)),
                    ops=_ops_text(OPERATORS),
                )
            )
    else:
        raise InvalidFilter(
            msg(
                "cannot read filter %(filter)s: no operator after %(field)s; use one of %(ops)s",
                filter=repr(source),
                field=repr(name),
                ops=_ops_text(OPERATORS),
            )
        )
    try:
        value: Any = _read_list(rest) if op in LIST_OPS else _read_value(rest, op)
    except ValueError as exc:
        raise InvalidFilter(
            msg("cannot read filter %(filter)s: %(reason)s", filter=repr(source), reason=_why(exc))
        ) from None
    return {"field": name, "op": op, "value": value}


def _read_value(text: str, op: str) -> str:
    text = text.strip()
    if not text:
        raise ValueError(msg('no value after %(op)s (write "" for an empty value)', op=repr(op)))
    if text[0] in QUOTES:
        value, end = _quoted(text, 0)
        if text[end:].strip():
            raise ValueError(
                msg("unexpected %(text)s after the quoted value", text=repr(text[end:].strip()))
            )
        return value
    return text  # unquoted: taken as it is, so O'Neil needs no quoting


def _read_list(text: str) -> list[str]:
    """Comma-separated items, each optionally quoted; a list may be wrapped in () or []."""
    text = text.strip()
    if len(text) >= 2 and (text[0], text[-1]) in (("(", ")"), ("[", "]")):
        text = text[1:-1]
    items, pos = [], 0
    while pos <= len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos < len(text) and text[pos] in QUOTES:
            item, pos = _quoted(text, pos)
            comma = text.find(",", pos)
            tail = text[pos:] if comma < 0 else text[pos:comma]
            if tail.strip():
                raise ValueError(
                    msg("unexpected %(text)s after a quoted item", text=repr(tail.strip()))
                )
        else:
            comma = text.find(",", pos)
            item = (text[pos:] if comma < 0 else text[pos:comma]).strip()
            if not item:
                if comma < 0 and not items:
                    break
                raise ValueError(msg('an empty item in the list (quote it, "", if you mean it)'))
        items.append(item)
        if comma < 0:
            break
        pos = comma + 1
    if not items:
        raise ValueError(msg("an empty list: give values separated by commas, e.g. A1,A2"))
    return items


def _quoted(text: str, start: int) -> tuple[str, int]:
    """The text inside the quotes opening at ``start`` (a doubled quote stands for one)."""
    quote, out, pos = text[start], [], start + 1
    while pos < len(text):
        if text[pos] == quote:
            if text[pos + 1 : pos + 2] == quote:
                out.append(quote)
                pos += 2
                continue
            return "".join(out), pos + 1
        out.append(text[pos])
        pos += 1
    raise ValueError(msg("a quote %(quote)s is not closed", quote=quote))


def _why(exc: ValueError):
    """What a ValueError says: its Message (translated in the panel) when it carries one."""
    return exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else str(exc)


def _ops_text(ops) -> str:
    return ", ".join(ops)


def filter_text(f: dict) -> str:
    """A filter in the syntax it is typed in, so that parse_filter reads it back the same."""
    op = str(f.get("op") or "")
    # Operators written as words take spaces around them (``reference in A1,A2``).
    joiner = " " if op[:1].isalpha() else ""
    return f"{f.get('field')}{joiner}{op}{joiner}{_value_text(f.get('value'))}"


def _show(f: dict) -> str:
    """A filter as a merchant reads it in messages and run logs: ``price >= 10``."""
    return f"{f.get('field')} {f.get('op')} {_value_text(f.get('value'))}"


def _value_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(_quote(str(v), in_list=True) for v in value)
    return _quote("" if value is None else str(value), in_list=False)


def _quote(value: str, in_list: bool) -> str:
    """``value`` quoted when reading it back unquoted would change it."""
    # What reading would take for syntax: a list's commas and brackets, an operator's tail.
    specials = "(),[]" if in_list else "=!<>~"
    edges = value[:1] + value[-1:]
    plain = (
        value
        and value == value.strip()
        and not any(c in QUOTES + specials for c in edges)
        and not (in_list and "," in value)
    )
    return value if plain else '"' + value.replace('"', '""') + '"'


# ------------------------------------------------------------------------------- validation


def field_names(entity: str) -> list[str]:
    """The fields a filter may name on ``entity``, sorted (``product.*`` ones last)."""
    names = fields_of(entity)
    return sorted(names, key=lambda n: (n.startswith("product."), n))


def _field(entity: str, f: dict) -> tuple[str, Field]:
    name = str(f.get("field") or "").strip().lower()
    known = fields_of(entity)
    if entity == "products" and name.startswith("product."):
        name = name[len("product.") :]  # a product's product.price is its price
    if name not in known:
        own = [n for n in field_names(entity) if not n.startswith("product.")]
        via = any(n.startswith("product.") for n in known)
        said = dict(filter=repr(_show(f)), entity=entity, field=repr(name), fields=", ".join(own))
        if via:
            raise InvalidFilter(
                msg(
                    "filter %(filter)s: %(entity)s have no field %(field)s; use one of "
                    "%(fields)s; and product.<field> for any field of the product",
                    **said,
                )
            )
        raise InvalidFilter(
            msg(
                "filter %(filter)s: %(entity)s have no field %(field)s; use one of %(fields)s",
                **said,
            )
        )
    return name, known[name]


def _normalise(entity: str, f: Any) -> tuple[dict, Field, Any]:
    """(stored form, field, parsed value) of one filter, or InvalidFilter naming it."""
    if isinstance(f, str):
        f = parse_filter(f)
    if not isinstance(f, dict):
        raise InvalidFilter(msg("a filter is FIELD OP VALUE, not %(filter)s", filter=repr(f)))
    name, spec = _field(entity, f)
    op = str(f.get("op") or "").strip().lower()
    op = " ".join(SYNONYMS.get(op, op).split())
    if op not in spec.ops:
        raise InvalidFilter(
            msg(
                "filter %(filter)s: %(field)s takes the operators %(ops)s, not %(op)s",
                filter=repr(_show(f)),
                field=name,
                ops=_ops_text(spec.ops),
                op=repr(op),
            )
        )
    raw = f.get("value")
    if op in LIST_OPS:
        try:
            items = _read_list(raw) if isinstance(raw, str) else list(raw or [])
        except ValueError as exc:
            raise InvalidFilter(
                msg("filter %(filter)s: %(reason)s", filter=repr(_show(f)), reason=_why(exc))
            ) from None
        if not items:
            raise InvalidFilter(
                msg("filter %(filter)s: the list of values is empty", filter=repr(_show(f)))
            )
        raws = [str(v) for v in items]
    else:
        if isinstance(raw, list | tuple | dict):
            raise InvalidFilter(
                msg(
                    "filter %(filter)s: %(op)s takes one value, not a list",
                    filter=repr(_show(f)),
                    op=op,
                )
            )
        raws = ["" if raw is None else str(raw)]
    try:
        parsed = [parse_value(spec.kind, r) for r in raws]
    except ValueError as exc:
        raise InvalidFilter(
            msg(
                "filter %(filter)s: %(reason)s; %(field)s takes %(kind)s",
                filter=repr(_show(f)),
                reason=_why(exc),
                field=name,
                kind=KIND_HELP[spec.kind],
            )
        ) from None
    shown = [show_value(spec.kind, p) for p in parsed]
    value = parsed if op in LIST_OPS else parsed[0]
    stored = {"field": name, "op": op, "value": shown if op in LIST_OPS else shown[0]}
    return stored, spec, value


def check(entity: str, filters: list[dict] | None, match: str | None = "all") -> Selection:
    """Validate filters for an entity; return the normalised selection or raise InvalidFilter."""
    match = (match or "all").strip().lower()
    if match not in ("all", "any"):
        raise InvalidFilter(
            msg("filters combine with all or any, not %(match)s", match=repr(match))
        )
    return Selection([_normalise(entity, f)[0] for f in filters or []], match)


# -------------------------------------------------------------------------------- selection


@dataclass
class Selection:
    """An exporter's filters, combined by ``match`` (all | any); empty selects everything."""

    filters: list[dict] = field(default_factory=list)
    match: str = "all"

    @classmethod
    def of(cls, spec) -> Selection:
        """The selection of a task (or any spec with ``filters`` and ``filter_match``)."""
        return cls(
            list(getattr(spec, "filters", None) or []), getattr(spec, "filter_match", None) or "all"
        )

    def __bool__(self) -> bool:
        return bool(self.filters)

    def describe(self) -> str:
        """The filters as a merchant reads them: ``category = Shoes and price >= 10``."""
        joiner = " and " if self.match == "all" else " or "
        return joiner.join(_show(f) for f in self.filters)

    def follows_product(self, entity: str) -> bool:
        """Whether some filter is on the entity's product (so a product change may move it)."""
        return any(_normalise(entity, f)[1].via_product for f in self.filters)

    def where(self, entity: str) -> ColumnElement | None:
        """The SQL condition selecting the entities on the entity's table; None for all."""
        if not self.filters:
            return None
        conds = []
        for f in self.filters:
            stored, spec, value = _normalise(entity, f)
            conds.append(spec.condition(stored["op"], value))
        return and_(*conds) if self.match != "any" else or_(*conds)
