"""The transforms of a field mapping: ``{"op": "price", "decimals": 2, ...}`` steps, checked
once when a mapping is built and compiled to plain functions applied to every value.

Each op declares its parameters (kind, default) in ``OPS``; ``check`` validates a step and
returns it in canonical form, ``compile_step`` turns it into a function of one value. Numbers
use ``Decimal`` with ROUND_HALF_UP. An empty value (None, or only blanks) passes through every
op but ``default``; a value a numeric or date op cannot read passes through unchanged.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from lxml import etree
from lxml import html as lxml_html

from impexmod.messages import msg

Step = Callable[[Any], Any]
REQUIRED = object()  # a parameter without default
UNSET = object()  # an optional parameter that, when absent, means "no such behaviour"
MAX_DECIMALS = 10
MAX_TABLE = 10_000
# Elements after which text continues on a new line, hence a space once HTML is stripped.
BLOCKS = frozenset(
    "address article aside blockquote br dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 "
    "h6 header hr li main nav ol p pre section table tbody td tfoot th thead tr ul".split()
)


@dataclass(frozen=True)
class Param:
    """One parameter of an op: its kind (count, length, text, scalar, format, table) and its
    default (REQUIRED when it must be given)."""

    kind: str
    default: Any = REQUIRED


class MappingError(ValueError):
    """A mapping that cannot be used; ``where`` names the column (and transform) at fault."""

    def __init__(self, message: str, where: str | None = None):
        # Both are Messages (impexmod.messages): the panel says them in its language.
        super().__init__(
            msg("%(where)s: %(reason)s", where=where, reason=message) if where else message
        )
        self.where = where
        self.message = message


def _error(message: str, where: str) -> MappingError:
    return MappingError(message, where)


def suggest(name: str, choices: Collection[str]) -> str:
    """`` (did you mean a, b?)`` for the choices close to ``name``, or an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    return msg(" (did you mean %(names)s?)", names=", ".join(close)) if close else ""


# ------------------------------------------------------------------------------ value helpers


def text(value: Any) -> str:
    """A flat value as the text a cell shows (None is empty; lists are joined with ``|``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "|".join(text(v) for v in value)
    return str(value)


def is_empty(value: Any) -> bool:
    """Whether a value counts as empty for ``default`` (None, or only blanks)."""
    return value is None or not text(value).strip()


def to_decimal(value: Any) -> Decimal | None:
    """The exact number a flat value holds, or None when it holds none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    else:
        raw = str(value).strip().replace(" ", "").replace("\u00a0", "")
        try:
            number = Decimal(raw)
        except InvalidOperation:
            # "12,5" from a spreadsheet: a lone comma is a decimal separator.
            if raw.count(",") != 1 or "." in raw:
                return None
            try:
                number = Decimal(raw.replace(",", "."))
            except InvalidOperation:
                return None
    return number if number.is_finite() else None


def _quantize(number: Decimal, decimals: int) -> Decimal | None:
    """``number`` rounded half up to ``decimals`` (None past 28 significant digits)."""
    try:
        rounded = number.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return None
    return abs(rounded) if rounded.is_zero() else rounded  # never "-0.00"


def to_datetime(value: Any) -> datetime | None:
    """A native date (``YYYY-MM-DD HH:MM:SS`` or ``YYYY-MM-DD``) as a datetime, or None."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    try:
        return datetime.fromisoformat(str(value).strip())
    except ValueError:
        return None


# ------------------------------------------------------------------------------------- ops


def _price(decimals, decimal_separator, thousands_separator, prefix, suffix) -> Step:
    spec = f",.{decimals}f" if thousands_separator else f".{decimals}f"
    marks = str.maketrans({",": thousands_separator, ".": decimal_separator})

    def price(value: Any) -> Any:
        if is_empty(value):
            return value
        number = to_decimal(value)
        rounded = None if number is None else _quantize(number, decimals)
        if rounded is None:
            return value
        return f"{prefix}{format(rounded, spec).translate(marks)}{suffix}"

    return price


def _round(decimals) -> Step:
    def round_(value: Any) -> Any:
        number = None if is_empty(value) else to_decimal(value)
        rounded = None if number is None else _quantize(number, decimals)
        return value if rounded is None else rounded

    return round_


def _default(value) -> Step:
    return lambda current: value if is_empty(current) else current


def _upper() -> Step:
    return lambda value: value if value is None else text(value).upper()


def _lower() -> Step:
    return lambda value: value if value is None else text(value).lower()


def _truncate(length, ellipsis) -> Step:
    def truncate(value: Any) -> Any:
        if value is None:
            return value
        full = text(value)
        if len(full) <= length:
            return full
        cut = length - len(ellipsis)
        # Never part a letter from its combining accents (a decomposed "é" is two characters).
        while cut > 0 and unicodedata.combining(full[cut]):
            cut -= 1
        return full[:cut].rstrip() + ellipsis

    return truncate


def strip_html(value: Any) -> Any:
    """The text of an HTML fragment: tags, scripts and comments gone, entities decoded,
    whitespace collapsed to single spaces."""
    if value is None:
        return value
    markup = text(value)
    if not markup.strip():
        return ""
    try:
        root = lxml_html.fragment_fromstring(markup, create_parent="div")
    except (etree.ParserError, ValueError):  # control characters, ...: keep the text
        return " ".join(markup.split())
    for el in list(root.iter("script", "style")):
        el.drop_tree()
    for el in root.iter():
        if el.tag in BLOCKS:
            el.text = " " + (el.text or "")
            el.tail = " " + (el.tail or "")
    return " ".join(root.text_content().split())


def _strip_html() -> Step:
    return strip_html


def _date(format) -> Step:
    def date_(value: Any) -> Any:
        if is_empty(value):
            return value
        if str(value).startswith("0000-00-00"):  # the shop's "no date"
            return ""
        moment = to_datetime(value)
        return value if moment is None else moment.strftime(format)

    return date_


def _lookup(table, default) -> Step:
    def lookup(value: Any) -> Any:
        key = text(value).strip()
        if key in table:
            return table[key]
        return value if default is UNSET else default

    return lookup


OPS: dict[str, tuple[dict[str, Param], Callable[..., Step]]] = {
    "price": (
        {
            "decimals": Param("count", 2),
            "decimal_separator": Param("text", "."),
            "thousands_separator": Param("text", ""),
            "prefix": Param("text", ""),
            "suffix": Param("text", ""),
        },
        _price,
    ),
    "round": ({"decimals": Param("count", 0)}, _round),
    "default": ({"value": Param("scalar")}, _default),
    "upper": ({}, _upper),
    "lower": ({}, _lower),
    "truncate": ({"length": Param("length"), "ellipsis": Param("text", "")}, _truncate),
    "strip_html": ({}, _strip_html),
    "date": ({"format": Param("format")}, _date),
    # Without a default, a value missing from the table passes through.
    "lookup": ({"table": Param("table"), "default": Param("scalar", UNSET)}, _lookup),
}


# --------------------------------------------------------------------------------- checking


def _check_param(op: str, key: str, kind: str, value: Any, where: str) -> Any:
    if kind in ("count", "length"):
        low, high = (0, MAX_DECIMALS) if kind == "count" else (1, 100_000)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _error(
                msg(
                    "%(key)s must be a whole number from %(low)s to %(high)s, not %(value)s",
                    key=key,
                    low=low,
                    high=high,
                    value=repr(value),
                ),
                where,
            )
        return value
    if kind == "text":
        if not isinstance(value, str):
            raise _error(
                msg("%(key)s must be a text, not %(value)s", key=key, value=repr(value)), where
            )
        return value
    if kind == "scalar":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise _error(
                msg(
                    "%(key)s must be a text or a number, not %(value)s", key=key, value=repr(value)
                ),
                where,
            )
        return value if not isinstance(value, float) else str(value)
    if kind == "format":
        if not isinstance(value, str) or not value.strip():
            raise _error(
                msg("%(key)s must be a strftime format such as %%d/%%m/%%Y", key=key), where
            )
        try:
            datetime(2024, 1, 31, 13, 5, 9).strftime(value)
        except ValueError as exc:
            raise _error(
                msg(
                    "%(key)s: %(value)s is not a date format (%(error)s)",
                    key=key,
                    value=repr(value),
                    error=str(exc),
                ),
                where,
            ) from None
        return value
    # table
    if not isinstance(value, dict) or not value:
        raise _error(
            msg('%(key)s must be a non-empty object such as {"1": "yes", "0": "no"}', key=key),
            where,
        )
    if len(value) > MAX_TABLE:
        raise _error(msg("%(key)s: at most %(count)s entries", key=key, count=MAX_TABLE), where)
    table = {}
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise _error(
                msg(
                    "%(key)s: the value of %(entry)s must be a text or a number",
                    key=key,
                    entry=repr(k),
                ),
                where,
            )
        table[str(k)] = v if not isinstance(v, float) else str(v)
    return table


def check(step: Any, where: str) -> dict:
    """Validate one transform; return it in canonical form (op first, its parameters in their
    documented order) or raise MappingError naming ``where`` and the bad key or value."""
    if not isinstance(step, dict) or "op" not in step:
        raise _error(msg('a transform is an object such as {"op": "upper"}'), where)
    op = step["op"]
    if not isinstance(op, str) or op not in OPS:
        raise _error(
            msg(
                "unknown op %(op)s%(hint)s; ops: %(ops)s",
                op=repr(op),
                hint=suggest(str(op), OPS),
                ops=", ".join(OPS),
            ),
            where,
        )
    params, _ = OPS[op]
    where = msg("%(where)s (%(op)s)", where=where, op=op)
    for key in step:
        if key != "op" and key not in params:
            said = dict(key=repr(key), hint=suggest(str(key), params), op=op)
            if not params:
                raise _error(
                    msg("unknown parameter %(key)s%(hint)s; %(op)s takes no parameter", **said),
                    where,
                )
            raise _error(
                msg(
                    "unknown parameter %(key)s%(hint)s; %(op)s takes %(takes)s",
                    takes=", ".join(params),
                    **said,
                ),
                where,
            )
    out: dict[str, Any] = {"op": op}
    for key, param in params.items():
        if key in step:
            out[key] = _check_param(op, key, param.kind, step[key], where)
        elif param.default is REQUIRED:
            raise _error(msg("missing parameter %(key)s", key=repr(key)), where)
    if op == "truncate" and len(out.get("ellipsis", "")) >= out["length"]:
        raise _error(msg("the ellipsis must be shorter than the length"), where)
    return out


def compile_step(step: dict) -> Step:
    """The function of one checked transform."""
    params, make = OPS[step["op"]]
    return make(**{k: step.get(k, p.default) for k, p in params.items()})
