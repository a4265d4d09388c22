"""Importing one input (a native feed, a flat file or a ZIP data group) into this shop."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from flask import current_app

from impexmod.importing import pipeline, safexml
from impexmod.importing.archive import import_zip
from impexmod.importing.context import Options
from impexmod.importing.defaults import setting
from impexmod.importing.engine import Importer, open_connection
from impexmod.importing.errors import ImportRefused
from impexmod.importing.fileformat import FORMATS, detect_format
from impexmod.importing.native import TOP_LEVEL, NativeParser, normalise_source
from impexmod.importing.pipeline import ParsedFeed
from impexmod.importing.report import Report


def check_size(path: Path, label: str) -> None:
    """Refuse a file over the configured size before reading any of it."""
    limit = int(setting("IMPORT_MAX_BYTES"))
    size = os.stat(path).st_size
    if size > limit:
        raise ImportRefused(f"{label}: {size:,} bytes is over the import limit of {limit:,} bytes")


def import_file(
    path: str | os.PathLike,
    options: Options | None = None,
    *,
    fmt: str | None = None,
    label: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Import one file; refusals and row errors are in the report, never raised."""
    options = options or Options()
    path = Path(path)
    label = label or path.name
    report = Report(dry_run=options.dry_run, file=label)
    conn = open_connection()
    if options.dry_run and conn.dialect.name == "sqlite":
        # A dry run holds its transaction open to the end: on SQLite, a progress commit from
        # another connection would wait for it (the server databases lock rows, not the file).
        progress = None
    try:
        try:
            check_size(path, label)
            fmt = fmt or detect_format(path, label)
            if fmt not in FORMATS:
                raise ImportRefused(f"{label}: unknown format {fmt!r}; one of {', '.join(FORMATS)}")
            importer = Importer(conn, options, report)
            try:
                if fmt == "zip":
                    import_zip(importer, path, label, import_one, progress)
                else:
                    import_one(importer, path, label, fmt, progress)
                finish(importer)
            finally:
                importer.close()
        except ImportRefused as exc:
            report.refuse(_without_path(str(exc), path, label))
    finally:
        conn.close()
    return report


def _without_path(message: str, path: Path, label: str) -> str:
    """``message`` with the file's path and stored name replaced by its label."""
    # A library's message may still name the file it opened (the shop's stored copy): the
    # merchant and the run history only ever see the name the file was given. A bare name is
    # replaced only when long enough not to be a word of the message (stored names are 32+).
    for said in (str(path.resolve()), str(path), path.name if len(path.name) >= 12 else ""):
        if said and said != label:
            message = message.replace(said, label)
    return message


def import_one(importer: Importer, path: Path, label: str, fmt: str, progress=None) -> None:
    """Import one native or flat file with an open importer (also each file of a ZIP)."""
    report = importer.report
    report.file = label
    report.files.append(label)
    if fmt == "xml":
        _native(importer, path, label, progress)
    else:
        from impexmod.importing.flat import import_flat

        import_flat(importer, path, label, fmt, progress)


def _native(importer: Importer, path: Path, label: str, progress) -> None:
    options = importer.options
    info = safexml.head(path, label)  # a DOCTYPE or a foreign root: refused before any parsing
    feed = None
    if _parallel(path):
        try:
            feed = ParsedFeed(path, label, _source(info.attrs, options), set(importer.langs))
        except OSError as exc:  # no process to be had: parse here, as for a small feed
            current_app.logger.warning("import: no parser process for %s: %s", label, exc)
    try:
        _native_feed(importer, path, label, progress, feed, info)
    finally:
        if feed is not None:
            feed.close()


def _source(root: dict, options) -> str:
    """Whose keys a feed's references are, unless an element says otherwise."""
    return (
        normalise_source(root.get("source")) or options.source or setting("IMPORT_DEFAULT_SOURCE")
    )


def _parallel(path: Path) -> bool:
    threshold = int(setting("IMPORT_PARALLEL_BYTES"))
    return threshold > 0 and os.stat(path).st_size >= threshold and pipeline.available()


class _Position:
    """How far the parser is into the file, in bytes; told by the parser as it reads."""

    __slots__ = ("bytes",)

    def __init__(self) -> None:
        self.bytes = 1  # a divisor: one before anything is read

    def __call__(self, bytes_read: int) -> None:
        self.bytes = bytes_read


def _native_feed(
    importer: Importer, path: Path, label: str, progress, feed, info: safexml.FeedInfo
) -> None:
    # The whole file is checked while it is imported; nothing is committed before it passes.
    importer.hold(safexml.Check(path, label))
    root = info.attrs
    if root.get("delete-missing") and root.get("disable-missing"):
        raise ImportRefused(f"{label}: delete-missing and disable-missing are mutually exclusive")
    if root.get("delete-missing") or root.get("disable-missing"):
        importer.track_seen = True
    position = _Position()
    if progress:
        # The total is estimated from the bytes read so far: no pass counts the entities.
        importer.progress = lambda done: progress(
            done, max(done, done * info.size // position.bytes)
        )
    if feed is not None:
        entries = feed.entries(importer.report.add_error, importer.add_language, position=position)
    else:
        parser = NativeParser(
            label,
            _source(root, importer.options),
            set(importer.langs),
            importer.report.add_error,
            importer.add_language,
        )
        elements = safexml.elements(
            path, label, TOP_LEVEL, skipped=parser.skipped, position=position
        )
        entries = (parser.parse(elem, where) for elem, where in elements)
    try:
        importer.feed(entries)
    finally:
        if feed is None:
            # A refusal (say, the check failing) leaves the stream suspended with its file
            # open: closed here, not whenever the traceback that holds it is collected.
            elements.close()
    if root.get("window-to", "").isdigit():
        importer.report.window_to = int(root["window-to"])
    if root.get("strategy") == "incremental" or root.get("window-from"):
        importer.partial = "an incremental feed lists only what changed"
    elif root.get("partial") in ("1", "true", "yes") or root.get("filter") or root.get("selection"):
        importer.partial = "a filtered feed"
    missing = root.get("delete-missing") or root.get("disable-missing")
    if missing:
        action = "delete" if root.get("delete-missing") else "disable"
        importer.missing = (normalise_source(missing), action)


def finish(importer: Importer) -> None:
    """After every file: delete (or disable) what the input no longer holds, if asked and safe."""
    options = importer.options
    if importer.missing:
        source, action = importer.missing
        importer.remove_absent(importer.partial, source, action)
    elif options.delete or options.disable:
        importer.remove_absent(importer.partial, None, "delete" if options.delete else "disable")
