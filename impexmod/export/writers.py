"""Feed writers by format name: one table (``FORMATS``) and one ``resolve_writer``.

A writer is a context manager over a binary file that receives loaded records one by one and
asks their descriptor for the representation it needs (a native element, flat rows, ...).
Every writer streams: it writes each record as it comes and keeps nothing per record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, BinaryIO, ClassVar, Protocol

from impexmod.entities import Descriptor, ExportContext


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
        super().__init__(f"option {key}: {message}")
        self.key = key
        self.message = message


def _native():
    from impexmod.export.xml import NativeXmlWriter

    return NativeXmlWriter


# Filled by the modules that define the writers (imported lazily, so that this table is the
# one place that names them).
def _csv():
    from impexmod.export.formats.csv_writer import CsvWriter

    return CsvWriter


def _xlsx():
    from impexmod.export.formats.xlsx_writer import XlsxFeedWriter

    return XlsxFeedWriter


def _json():
    from impexmod.export.formats.json_writer import JsonWriter

    return JsonWriter


def _jsonl():
    from impexmod.export.formats.json_writer import JsonLinesWriter

    return JsonLinesWriter


_LOADERS = {
    "xml": _native,
    "csv": _csv,
    "xlsx": _xlsx,
    "json": _json,
    "jsonl": _jsonl,
}
FORMATS: tuple[str, ...] = tuple(_LOADERS)


def writer_class(fmt: str) -> type:
    """The writer class of format ``fmt``."""
    try:
        return _LOADERS[fmt]()
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}") from None


def check_options(fmt: str, entity: str, options: dict[str, str]) -> dict[str, str]:
    """Validate format options for ``fmt``; return them normalised or raise InvalidOption."""
    cls = writer_class(fmt)
    allowed = getattr(cls, "OPTIONS", {})
    for key in options:
        if key not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise InvalidOption(key, f"format {fmt} takes no option {key!r} (it takes: {known})")
    check = getattr(cls, "check_options", None)
    return check(entity, dict(options)) if check else dict(options)


def resolve_writer(fmt: str, fh: BinaryIO, setup: WriterSetup) -> FeedWriter:
    """A writer for format ``fmt`` over ``fh``."""
    return writer_class(fmt)(fh, setup)
