"""The importer's own picture of an input: entries (one entity each) and the keys they carry.

Every reader (native XML, CSV, XLSX) turns its input into :class:`Entry` objects; the loaders
only ever see entries. Values are converted on the way in (``convert``), so a bad value is a row
error before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from sqlalchemy import Boolean, Column, DateTime, Integer, Numeric, String

from impexmod.entities import derived
from impexmod.importing.errors import EntryError, Origin

# Native element names -> identity/change-log kinds: from the entity specs.
KINDS = derived.KINDS
OWN = "@own"  # the source of a plain local id, as module-native feeds write them


class Ref(NamedTuple):
    """A key naming one entity: a supplier reference and its source, or a field and its value.

    A named tuple: refs are hashed and compared millions of times per feed, at C speed."""

    kind: str
    reference: str | None = None
    source: str | None = None
    field: str | None = None
    value: str | None = None

    def label(self) -> str:
        """How an error message names the entity."""
        if self.field:
            return f"{self.kind} with {self.field} {self.value!r}"
        return f"{self.kind} {self.reference!r} of {self.source}"

    def __reduce__(self):
        # Unpickled by ``tuple.__new__`` itself, without the Python ``__new__`` of a named
        # tuple: a feed's parsing process sends millions of refs.
        return (tuple.__new__, (Ref, tuple(self)))


@dataclass(eq=False, slots=True)
class Entry:
    """One entity to create, update, delete or disable, with what it carries."""

    kind: str
    ref: Ref | None
    origin: Origin
    mode: str = "both"
    values: dict[str, Any] = field(default_factory=dict)
    langs: dict[str, dict[str | None, Any]] = field(default_factory=dict)
    links: dict[str, Ref | Entry | None] = field(default_factory=dict)
    children: dict[str, list] = field(default_factory=dict)
    flags: dict[str, Any] = field(default_factory=dict)
    errors: list = field(default_factory=list)
    parent: Entry | None = None
    local_id: int | None = None
    action: str | None = None
    size: int = 1  # entries in this one, nested ones included (chunks are weighed by it)
    # ``walk()``, when the parsing process's batch was decoded (it is built on the way).
    tree: list[Entry] | None = None

    def add(self, name: str, item) -> None:
        """Append a nested item (a child entry, a tag, an image...)."""
        items = self.children.get(name)
        if items is None:
            self.children[name] = [item]
        else:
            items.append(item)

    def nested(self, name: str) -> list:
        """The nested items of one name."""
        return self.children.get(name, ())

    def walk(self) -> list[Entry]:
        """This entry and every entry nested in it, parents first."""
        if self.tree is not None:
            return self.tree
        out = [self]
        if self.children:
            _collect(self, out)
        return out


def _collect(entry: Entry, out: list[Entry]) -> None:
    for items in entry.children.values():
        for item in items:
            if item.__class__ is Entry:
                out.append(item)
                if item.children:
                    _collect(item, out)


def language_code(iso: str | None) -> bool:
    """Whether a feed's ``lang`` can name a language this shop creates (two letters)."""
    return bool(iso) and len(iso) == 2 and iso.isalpha()


TRUE = {"1", "true", "yes", "y", "on", "oui", "vrai"}
FALSE = {"0", "false", "no", "n", "off", "non", "faux", ""}
DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")


def convert(column: Column, raw: str | None, name: str | None = None) -> Any:
    """A field's text as the column's Python value; raise EntryError naming the field."""
    name = name or column.name
    if raw is None:
        return None
    text = raw.strip()
    kind = column.type
    if text == "" and not isinstance(kind, Boolean | String):
        if column.nullable:
            return None
        raise EntryError(name, "a value is required")
    try:
        if isinstance(kind, Boolean):
            low = text.lower()
            if low in TRUE:
                return True
            if low in FALSE:
                return False
            raise EntryError(name, f"{raw!r} is not a yes/no value (1 or 0)")
        if isinstance(kind, Integer):
            number = Decimal(text.replace(",", "."))
            if not number.is_finite() or number != number.to_integral_value():
                raise EntryError(name, f"{raw!r} is not a whole number")
            return int(number)
        if isinstance(kind, Numeric):
            value = Decimal(text.replace(",", "."))
            if not value.is_finite():
                raise EntryError(name, f"{raw!r} is not a number")
            return value
        if isinstance(kind, DateTime):
            if text.startswith("0000-00-00"):
                return None
            for fmt in DATE_FORMATS:
                try:
                    return datetime.strptime(text[:19], fmt)
                except ValueError:
                    continue
            raise EntryError(name, f"{raw!r} is not a date (YYYY-MM-DD HH:MM:SS)")
    except (InvalidOperation, ValueError, ArithmeticError) as exc:
        if isinstance(exc, EntryError):
            raise
        raise EntryError(
            name, f"{raw!r} is not a {'whole ' if isinstance(kind, Integer) else ''}number"
        ) from None
    if isinstance(kind, String):
        if text == "":
            return None if column.nullable else ""
        if kind.length and len(text) > kind.length:
            raise EntryError(name, f"longer than {kind.length} characters ({len(text)})")
        return text
    return text


def converter(column: Column):
    """A fast ``convert`` for one column: strings and numbers skip the generic checks."""
    kind = column.type
    if isinstance(kind, String):
        length = kind.length
        nullable = column.nullable
        name = column.name

        def to_text(raw: str | None, _name: str | None = None):
            if raw is None:
                return None
            text = raw.strip()
            if not text:
                return None if nullable else ""
            if length and len(text) > length:
                raise EntryError(_name or name, f"longer than {length} characters ({len(text)})")
            return text

        to_text.limits = (length, nullable)  # type: ignore[attr-defined]  # native.py inlines it
        return to_text
    if isinstance(kind, Boolean):

        def to_bool(raw: str | None, _name: str | None = None):
            if raw is not None:
                low = raw.strip().lower()
                if low in TRUE:
                    return True
                if low in FALSE:
                    return False
            return convert(column, raw, _name)

        return to_bool
    if isinstance(kind, Integer):

        def to_int(raw: str | None, _name: str | None = None):
            if raw is not None:
                text = raw.strip()
                if text.isdigit() or (text[:1] == "-" and text[1:].isdigit()):
                    return int(text)
            return convert(column, raw, _name)

        return to_int
    if isinstance(kind, Numeric) and not isinstance(kind, Integer):

        def to_decimal(raw: str | None, _name: str | None = None):
            if raw is not None:
                try:
                    value = Decimal(raw)
                    if value.is_finite():
                        return value
                except InvalidOperation:
                    pass
            return convert(column, raw, _name)

        return to_decimal
    return lambda raw, _name=None: convert(column, raw, _name)


def same(old: Any, new: Any) -> bool:
    """Whether a stored value and an imported one are equal (numbers compared as numbers)."""
    if old is None or new is None:
        return (old is None or old == "") and (new is None or new == "")
    if isinstance(new, Decimal) or isinstance(old, Decimal):
        try:
            return Decimal(str(old)) == Decimal(str(new))
        except InvalidOperation:
            return False
    if isinstance(new, bool) or isinstance(old, bool):
        return bool(old) == bool(new)
    return old == new
