"""The kinds of value a filter compares (whole numbers, numbers, dates, text, 1/0, names,
a status): which operators each takes, how its text is read, and how it compares in SQL."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Boolean, Column, Date, DateTime, Integer, Numeric, and_, not_, or_
from sqlalchemy.sql.elements import ColumnElement

from impexmod.messages import msg


class InvalidFilter(ValueError):
    """A filter that cannot be applied to the entity (unknown field, operator or value)."""


ORDERED = ("=", "!=", ">", ">=", "<", "<=", "in", "not in")
# The operators each kind of field accepts.
KIND_OPS: dict[str, tuple[str, ...]] = {
    "int": ORDERED,
    "number": ORDERED,
    "date": ORDERED,
    "text": (*ORDERED, "~"),
    "bool": ("=", "!="),
    "named": ("=", "!=", "in", "not in"),
    "status": ("=",),
}
KIND_HELP = {
    "int": msg("a whole number"),
    "number": msg("a number"),
    "date": msg("a date (2026-01-31) or date and time (2026-01-31 18:00)"),
    "text": msg("text"),
    "bool": msg("1 or 0"),
    "named": msg("a name or an id"),
    "status": msg("active, inactive or all"),
}
POSITIVE = {"!=": "=", "not in": "in"}
STATUSES = ("active", "inactive", "all")
BOOLEANS = {"1": True, "true": True, "yes": True, "on": True}
BOOLEANS |= {"0": False, "false": False, "no": False, "off": False}


# ------------------------------------------------------------------------------------- values


def parse_value(kind: str, raw: str) -> Any:
    """One value of a filter as the field's kind reads it; ValueError says why not."""
    text = raw.strip()
    if kind == "int":
        try:
            number = int(text)
        except ValueError:
            raise ValueError(msg("%(value)s is not a whole number", value=repr(raw))) from None
        if abs(number) >= 2**63:  # past what databases bind as an integer
            raise ValueError(msg("%(value)s is out of range", value=repr(raw)))
        return number
    if kind == "number":
        # A decimal comma is a merchant's habit; a list's commas were split off already.
        candidate = text.replace(",", ".") if text.count(",") == 1 and "." not in text else text
        try:
            number = Decimal(candidate)
        except InvalidOperation:
            raise ValueError(msg("%(value)s is not a number", value=repr(raw))) from None
        if not number.is_finite():
            raise ValueError(msg("%(value)s is not a number", value=repr(raw)))
        if number and abs(number.adjusted()) > 30:  # no column holds it; databases would fail
            raise ValueError(msg("%(value)s is out of range", value=repr(raw)))
        return number
    if kind == "bool":
        if text.lower() not in BOOLEANS:
            raise ValueError(msg("%(value)s is not 1 or 0", value=repr(raw)))
        return BOOLEANS[text.lower()]
    if kind == "date":
        return _parse_date(raw, text)
    if kind == "status":
        if text.lower() not in STATUSES:
            raise ValueError(
                msg(
                    "%(value)s is not one of %(choices)s",
                    value=repr(raw),
                    choices=", ".join(STATUSES),
                )
            )
        return text.lower()
    if kind == "named" and not text:
        raise ValueError(msg("a name or an id is needed"))
    return raw


def _parse_date(raw: str, text: str) -> tuple[datetime, bool]:
    """(start, whole day?): a date alone means the whole day."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day), True
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            msg("%(value)s is not a date such as 2026-01-31 or 2026-01-31 18:00", value=repr(raw))
        ) from None
    if moment.tzinfo is not None:  # stored dates are naive UTC
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment, False


def show_value(kind: str, value: Any) -> str:
    """A parsed value written back as filter text (what is stored on the task)."""
    if kind == "bool":
        return "1" if value else "0"
    if kind == "date":
        moment, whole_day = value
        return moment.strftime("%Y-%m-%d") if whole_day else moment.isoformat(sep=" ")
    return str(value)


# ------------------------------------------------------------------------- generic conditions


def negated(op: str, build: Callable[[str, Any], ColumnElement], value: Any, null=None):
    """``!=`` and ``not in`` as NOT of their positive form; a NULL column counts as different."""
    positive = POSITIVE.get(op)
    if positive is None:
        return build(op, value)
    cond = not_(build(positive, value))
    return or_(cond, null.is_(None)) if null is not None else cond


def compare(expr, kind: str, nullable: bool, op: str, value: Any) -> ColumnElement:
    """``expr op value`` for a column or computed value of the given kind."""
    if kind == "date":
        return negated(
            op, lambda o, v: _date_condition(expr, o, v), value, expr if nullable else None
        )
    if kind == "text" and op in ("=", "!=", "in", "not in"):
        values = value if op in ("in", "not in") else [value]
        if "" in values:  # an empty value stands for "no value": NULL or ''
            return negated(op, lambda o, v: _text_in(expr, v), values)
    return negated(op, lambda o, v: _plain(expr, o, v), value, expr if nullable else None)


def _plain(expr, op: str, value: Any) -> ColumnElement:
    if op == "in":
        return expr.in_(list(value))
    if op == "~":
        return expr.icontains(value, autoescape=True)
    return {
        "=": expr.__eq__,
        ">": expr.__gt__,
        ">=": expr.__ge__,
        "<": expr.__lt__,
        "<=": expr.__le__,
    }[op](value)


def _text_in(expr, values: Sequence[str]) -> ColumnElement:
    others = [v for v in values if v != ""]
    empty = or_(expr.is_(None), expr == "")
    return or_(empty, expr.in_(others)) if others else empty


def _date_condition(expr, op: str, value) -> ColumnElement:
    if op == "in":
        return or_(*(_date_condition(expr, "=", v) for v in value))
    moment, whole_day = value
    if not whole_day:
        return _plain(expr, op, moment)
    # A day compares as the span [day, next day).
    following = moment + timedelta(days=1)
    return {
        "=": lambda: and_(expr >= moment, expr < following),
        ">": lambda: expr >= following,
        ">=": lambda: expr >= moment,
        "<": lambda: expr < moment,
        "<=": lambda: expr < following,
    }[op]()


def column_kind(column: Column) -> str:
    """The kind of a table column: bool, int, number, date or text."""
    type_ = column.type
    if isinstance(type_, Boolean):
        return "bool"
    if isinstance(type_, Integer):
        return "int"
    if isinstance(type_, Numeric):
        return "number"
    if isinstance(type_, DateTime | Date):
        return "date"
    return "text"
