"""The writer contract: what a feed writer is told (``WriterSetup``) and what it does
(``FeedWriter``). The writers (``formats/*``, ``export/xml.py``, ``platforms/*``) depend on this
module; the table of writers by format name (:mod:`impexmod.export.writers`) depends on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from impexmod.entities import Descriptor, ExportContext
from impexmod.messages import msg


class RowMapping(Protocol):
    """A field mapping (impexmod.export.mapping) that flat writers apply to each flat row."""

    def headers(self) -> list[str]:
        """The output columns, in order."""

    def apply(self, row: dict[str, Any]) -> list[Any]:
        """The output values of one flat row, in the order of ``headers()``."""


@dataclass
class WriterSetup:
    """What a writer is told about the feed it writes."""

    entity: str
    root: dict[str, str | None]  # the native root attributes (generator, source, window, ...)
    options: dict[str, str] = field(default_factory=dict)  # format options, validated
    languages: list[str] = field(default_factory=list)  # iso codes, the shop's order
    incremental: bool = False
    mapping: RowMapping | None = None


class FeedWriter(Protocol):
    """What the export runner needs from a writer."""

    ext: str  # the file extension, hence the content type the feed URL serves
    OPTIONS: ClassVar[dict[str, str]]  # option name -> one-line help

    def __enter__(self) -> FeedWriter: ...

    def __exit__(self, *exc) -> bool | None: ...

    def write_record(self, descriptor: Descriptor, ctx: ExportContext, record: Any) -> None:
        """Write one entity."""

    # Optional: ``prepare(descriptor, ctx, records)`` is called with each chunk's records
    # before they are written, for writers that load more per chunk (a fixed number of
    # queries, never one per record).

    def write_delete(self, descriptor: Descriptor, key: tuple[str, str]) -> None:
        """Write that one entity was deleted (incremental feeds)."""


class InvalidOption(ValueError):
    """A format option that the chosen format does not take, or a bad value for it."""

    def __init__(self, key: str, message: str):
        # ``message`` is a Message (impexmod.messages): the panel says the whole in its language.
        super().__init__(msg("option %(key)s: %(reason)s", key=key, reason=message))
        self.key = key
        self.message = message
