"""Which entities an exporter lists: all, or those matching its filters.

(Foundation stub: filters land with the selection work.)
"""

from __future__ import annotations

from dataclasses import dataclass, field


class InvalidFilter(ValueError):
    """A filter that cannot be applied to the entity (unknown field, operator or value)."""


def parse_filter(text: str) -> dict:
    """One filter from its CLI text (``category=Shoes``, ``price>=10``, ``reference in A1,A2``)."""
    raise InvalidFilter(f"cannot read filter {text!r}")


def check(entity: str, filters: list[dict] | None, match: str | None = "all") -> Selection:
    """Validate filters for an entity; return the normalised selection or raise InvalidFilter."""
    match = match or "all"
    if match not in ("all", "any"):
        raise InvalidFilter(f"filters combine with all or any, not {match!r}")
    return Selection(list(filters or []), match)


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
        return joiner.join(f"{f['field']} {f['op']} {f['value']}" for f in self.filters)
