"""Feed writers by format name: one table (``FORMATS``) and one ``resolve_writer``.

A writer is a context manager over a binary file that receives loaded records one by one and
asks their descriptor for the representation it needs (a native element, flat rows, ...).
Every writer streams: it writes each record as it comes and keeps nothing per record. The
contract writers keep (``FeedWriter``, ``WriterSetup``) is :mod:`impexmod.export.formats.base`.
"""

from __future__ import annotations

from typing import BinaryIO

from impexmod.export.formats.base import (  # noqa: F401 (the writer contract, named here too)
    FeedWriter,
    InvalidOption,
    RowMapping,
    WriterSetup,
)
from impexmod.messages import msg


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
        raise ValueError(
            msg(
                "unknown format %(format)s; choose one of %(choices)s",
                format=repr(fmt),
                choices=", ".join(FORMATS),
            )
        ) from None


def check_options(fmt: str, entity: str, options: dict[str, str]) -> dict[str, str]:
    """Validate format options for ``fmt``; return them normalised or raise InvalidOption."""
    cls = writer_class(fmt)
    allowed = getattr(cls, "OPTIONS", {})
    for key in options:
        if key not in allowed:
            said = dict(format=fmt, key=repr(key), known=", ".join(sorted(allowed)))
            if not allowed:
                raise InvalidOption(
                    key, msg("format %(format)s takes no option %(key)s (it takes: none)", **said)
                )
            raise InvalidOption(
                key, msg("format %(format)s takes no option %(key)s (it takes: %(known)s)", **said)
            )
    check = getattr(cls, "check_options", None)
    return check(entity, dict(options)) if check else dict(options)


def resolve_writer(fmt: str, fh: BinaryIO, setup: WriterSetup) -> FeedWriter:
    """A writer for format ``fmt`` over ``fh``."""
    return writer_class(fmt)(fh, setup)
