"""Feed writers by format name: one table of aliases and one ``resolve_writer``.

A writer is a context manager over a binary file that receives loaded records one by one and
asks their descriptor for the representation it needs (a native element, flat rows, ...).
"""

from __future__ import annotations

from typing import Any, BinaryIO, Protocol

from impexmod.entities import Descriptor, ExportContext
from impexmod.export.xml import NativeXmlWriter


class FeedWriter(Protocol):
    """What the export runner needs from a writer."""

    ext: str

    def __enter__(self) -> FeedWriter: ...

    def __exit__(self, *exc) -> bool | None: ...

    def write_record(self, descriptor: Descriptor, ctx: ExportContext, record: Any) -> None:
        """Write one entity."""

    def write_delete(self, descriptor: Descriptor, key: tuple[str, str]) -> None:
        """Write that one entity was deleted (incremental feeds)."""


WRITERS: dict[str, type] = {
    "xml": NativeXmlWriter,
}


def resolve_writer(
    fmt: str, fh: BinaryIO, root_attrs: dict[str, str | None], options: dict | None = None
) -> FeedWriter:
    """A writer for format ``fmt`` over ``fh``."""
    try:
        cls = WRITERS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(WRITERS)}") from None
    return cls(fh, root_attrs, options or {})
