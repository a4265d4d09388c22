"""Field-mapping templates: choose, order, rename and transform the columns of a flat export.

A mapping is a list of columns (see docs/templates.md)::

    [{"header": "Price", "source": "price",
      "transforms": [{"op": "price", "decimals": 2, "decimal_separator": ",", "suffix": " EUR"}]},
     {"header": "Title", "concat": [{"field": "name[en]"}, {"text": " - "}, {"field": "ean13"}]},
     {"header": "Condition", "value": "new"}]

``check_columns`` validates such JSON and returns it in canonical form (the form saved and
exported); ``FieldMapping`` applies it to the flat rows of ``impexmod.export.flatten``. Numbers
are computed with ``Decimal`` (ROUND_HALF_UP), never with floats.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

from impexmod.export import transforms
from impexmod.export.transforms import MappingError, suggest, text
from impexmod.extensions import db
from impexmod.messages import msg
from impexmod.models import FieldTemplate

SOURCES = ("source", "value", "concat")
COLUMN_KEYS = ("header", *SOURCES, "transforms")
MAX_COLUMNS = 1000
MAX_HEADER = 255

__all__ = ["FieldMapping", "MappingError", "check_columns", "load_mapping", "saved_names", "text"]


# ---------------------------------------------------------------------------- source columns


def mappable_entities() -> tuple[str, ...]:
    """The entities that have flat columns, hence may have a field template."""
    from impexmod.export.flatten import FLAT_ENTITIES

    return tuple(FLAT_ENTITIES)


def available_columns(entity: str, languages: Sequence[str]) -> list[str]:
    """Every flat column a mapping of ``entity`` may read, for a shop with these languages.

    The flat writers' columns, every row shape included: a products mapping may read the
    ``combination_*`` columns, which exports with ``rows=combinations`` fill.
    """
    from impexmod.export import flatten

    if entity not in flatten.FLAT_ENTITIES:
        return []
    found: dict[str, None] = {}
    for rows in flatten.ROWS if entity == "products" else ("products",):
        found.update(dict.fromkeys(flatten.available_columns(entity, list(languages), rows)))
    return list(found)


# ---------------------------------------------------------------------------------- checking


def _where(index: int, column: Any) -> str:
    header = column.get("header") if isinstance(column, dict) else None
    if isinstance(header, str) and header.strip():
        return msg('column %(index)s ("%(header)s")', index=index, header=header.strip())
    return msg("column %(index)s", index=index)


def check_columns(columns: Any, available: Collection[str] | None = None) -> list[dict]:
    """Validate a mapping's columns; return them in canonical form or raise MappingError.

    With ``available`` (the flat columns of the shop), sources are checked against it and the
    bare strings of a ``concat`` are resolved to fields or text once and for all.
    """
    if not isinstance(columns, list):
        raise MappingError(msg("columns must be a JSON array of column objects"))
    if not columns:
        raise MappingError(msg("a mapping needs at least one column"))
    if len(columns) > MAX_COLUMNS:
        raise MappingError(msg("at most %(count)s columns", count=MAX_COLUMNS))
    out, seen = [], {}
    for index, column in enumerate(columns, 1):
        where = _where(index, column)
        checked = _check_column(column, available, where)
        header = checked["header"]
        if header in seen:
            raise MappingError(
                msg(
                    "the header %(header)s is already column %(index)s",
                    header=repr(header),
                    index=seen[header],
                ),
                where,
            )
        seen[header] = index
        out.append(checked)
    return out


def _at(where: str, key: str) -> str:
    """Where a column's ``source``, ``value`` or ``concat`` is (JSON keys: never translated)."""
    return msg("%(where)s: %(reason)s", where=where, reason=key)


def _check_column(column: Any, available: Collection[str] | None, where: str) -> dict:
    if not isinstance(column, dict):
        raise MappingError(msg("a column is a JSON object with a header and a source"), where)
    for key in column:
        if key not in COLUMN_KEYS:
            raise MappingError(
                msg(
                    "unknown key %(key)s%(hint)s; a column takes %(keys)s",
                    key=repr(key),
                    hint=suggest(str(key), COLUMN_KEYS),
                    keys=", ".join(COLUMN_KEYS),
                ),
                where,
            )
    header = column.get("header")
    if not isinstance(header, str) or not header.strip():
        raise MappingError(msg("header: a non-empty text is required"), where)
    if len(header.strip()) > MAX_HEADER:
        raise MappingError(msg("header: at most %(count)s characters", count=MAX_HEADER), where)
    given = [key for key in SOURCES if key in column]
    if len(given) != 1:
        raise MappingError(
            msg(
                "give exactly one of source (a flat column), value (a constant) or concat, "
                "not %(given)s",
                given=" and ".join(given),
            )
            if given
            else msg("give exactly one of source (a flat column), value (a constant) or concat"),
            where,
        )
    out: dict[str, Any] = {"header": header.strip()}
    kind = given[0]
    if kind == "source":
        out["source"] = _check_field(column["source"], available, _at(where, "source"))
    elif kind == "value":
        out["value"] = _check_constant(column["value"], _at(where, "value"))
    else:
        out["concat"] = _check_concat(column["concat"], available, _at(where, "concat"))
    steps = column.get("transforms", [])
    if not isinstance(steps, list):
        raise MappingError(msg('transforms must be a JSON array of {"op": ...} objects'), where)
    out["transforms"] = [
        transforms.check(step, msg("%(where)s: transform %(index)s", where=where, index=i))
        for i, step in enumerate(steps, 1)
    ]
    return out


def _check_field(name: Any, available: Collection[str] | None, where: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise MappingError(msg("the name of a flat column is required"), where)
    name = name.strip()
    if available is not None and name not in available:
        # "name" in a shop with languages: one column per language.
        translated = [c for c in available if c.startswith(f"{name}[")]
        hint = msg(" (did you mean %(names)s?)", names=", ".join(translated)) if translated else ""
        raise MappingError(
            msg(
                "unknown column %(name)s%(hint)s",
                name=repr(name),
                hint=hint or suggest(name, available),
            ),
            where,
        )
    return name


def _check_constant(value: Any, where: str) -> str | int:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MappingError(msg("a constant is a text or a number"), where)
    # A JSON number keeps the digits it was written with (no float rounding on output).
    return value if not isinstance(value, float) else str(value)


def _check_concat(items: Any, available: Collection[str] | None, where: str) -> list[dict]:
    if not isinstance(items, list) or not items:
        raise MappingError(
            msg('a non-empty array of {"field": ...} and {"text": ...} items'), where
        )
    out = []
    for i, item in enumerate(items, 1):
        at = msg("%(where)s item %(index)s", where=where, index=i)
        if isinstance(item, str):
            # A bare string is a field when it names one, else literal text.
            is_field = available is not None and item.strip() in available
            out.append({"field": item.strip()} if is_field else {"text": item})
        elif isinstance(item, dict) and len(item) == 1 and "field" in item:
            out.append({"field": _check_field(item["field"], available, at)})
        elif isinstance(item, dict) and len(item) == 1 and "text" in item:
            text = item["text"]
            if isinstance(text, bool) or not isinstance(text, str | int | float):
                raise MappingError(msg("text: a text is required"), at)
            out.append({"text": str(text)})
        else:
            raise MappingError(
                msg('an item is {"field": "<flat column>"}, {"text": "..."} or a string'), at
            )
    return out


# ---------------------------------------------------------------------------------- applying


def _reader(column: dict) -> Callable[[dict[str, Any]], Any]:
    if "source" in column:
        name = column["source"]
        return lambda row: row.get(name)
    if "value" in column:
        constant = column["value"]
        return lambda row: constant
    parts = [
        (item["field"], None) if "field" in item else (None, item["text"])
        for item in column["concat"]
    ]

    def concat(row: dict[str, Any]) -> str:
        return "".join(text(row.get(f)) if f is not None else t for f, t in parts)

    return concat


class FieldMapping:
    """A checked mapping of one entity's flat rows to named, transformed output columns."""

    def __init__(self, entity: str, columns: list[dict], name: str | None = None):
        self.entity = entity
        self.name = name
        self.columns = columns  # canonical, as check_columns returns them
        self._compiled = [
            (
                _reader(c),
                [transforms.compile_step(s) for s in c["transforms"]],
            )
            for c in columns
        ]

    @classmethod
    def from_json(
        cls,
        entity: str,
        columns: Any,
        available: Collection[str] | None = None,
        name: str | None = None,
    ) -> FieldMapping:
        """A mapping from JSON columns, validated (sources too, when ``available`` is given)."""
        return cls(entity, check_columns(columns, available), name)

    def headers(self) -> list[str]:
        """The output columns, in order."""
        return [c["header"] for c in self.columns]

    def sources(self) -> list[str]:
        """The flat columns the mapping reads, in first-use order."""
        found: dict[str, None] = {}
        for c in self.columns:
            if "source" in c:
                found[c["source"]] = None
            for item in c.get("concat", ()):
                if "field" in item:
                    found[item["field"]] = None
        return list(found)

    def apply(self, row: dict[str, Any]) -> list[Any]:
        """The output values of one flat row, in the order of ``headers()``."""
        out = []
        for read, steps in self._compiled:
            value = read(row)
            for step in steps:
                value = step(value)
            out.append(value)
        return out


# ------------------------------------------------------------------------------ saved ones


def saved_names() -> list[str]:
    """Names of the saved field templates, alphabetically."""
    return list(
        db.session.execute(db.select(FieldTemplate.name).order_by(FieldTemplate.name)).scalars()
    )


def load_mapping(name: str) -> FieldMapping | None:
    """The saved field template of that name as a mapping, or None."""
    saved = db.session.execute(
        db.select(FieldTemplate).where(FieldTemplate.name == name)
    ).scalar_one_or_none()
    if saved is None:
        return None
    try:
        return FieldMapping.from_json(saved.entity, saved.columns, name=saved.name)
    except MappingError as exc:
        raise MappingError(
            exc.message,
            msg("template %(name)s: %(where)s", name=name, where=exc.where)
            if exc.where
            else msg("template %(name)s", name=name),
        ) from None
