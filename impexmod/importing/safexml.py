"""Safe, streaming XML: no DTD, no entities, no network, no huge trees.

A feed is read twice. Its start is read first (``head``): a DOCTYPE is refused there, before
anything else is parsed, so no external entity and no "billion laughs" is ever expanded. Then
two passes run side by side: a check (``Check``: a parser target that builds nothing, libxml2
still reads every byte) proves the whole file well-formed, while the entity elements are
streamed one by one, each dropped once handled. The importer commits nothing before the check
has passed, so a truncated or garbled file still writes nothing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from impexmod.importing.errors import ImportRefused

# The module's v1 feeds used <products> and <stocks> as roots.
ROOTS = ("advancedimporter", "products", "stocks")
PARSER_OPTIONS = dict(
    resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False, remove_comments=True
)


class _Refuse(Exception):
    pass


def reason(exc: BaseException) -> str:
    """Why parsing or reading failed, without the path of the file (only its label is shown)."""
    # lxml appends "(<file name>, line N)" and an OSError its full path: the file is the
    # shop's stored copy (a random name under the instance folder), not what the merchant sent.
    if isinstance(exc, etree.XMLSyntaxError) and exc.msg:
        return exc.msg
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


class _Check:
    """Parser target with no element callbacks: well-formedness only, at libxml2's speed."""

    def doctype(self, *_args) -> None:
        raise _Refuse("a DOCTYPE is not allowed (no DTD, no entities)")

    def close(self) -> None:
        return None


@dataclass
class FeedInfo:
    """The root of a feed and the size of the file."""

    tag: str
    attrs: dict[str, str]
    size: int


def _root(path: Path, label: str) -> tuple[str, dict]:
    parser = etree.XMLPullParser(events=("start",), **PARSER_OPTIONS)
    with open(path, "rb") as fh:  # closed here: we stop at the first element
        while chunk := fh.read(64 * 1024):
            try:
                parser.feed(chunk)
            except etree.XMLSyntaxError:
                # A page that is not XML at all (HTML, say) says what its root is, which tells
                # the merchant more than the syntax error that follows it in the same chunk.
                if found := _first_start(parser):
                    return found
                raise
            if found := _first_start(parser):
                return found
    raise ImportRefused(f"{label}: empty document")


def _first_start(parser) -> tuple[str, dict] | None:
    for _event, elem in parser.read_events():
        if elem.getroottree().docinfo.doctype:
            raise _Refuse("a DOCTYPE is not allowed (no DTD, no entities)")
        return elem.tag, dict(elem.attrib)
    return None


def root(path: Path, label: str) -> tuple[str, dict[str, str]]:
    """The root element's name and attributes, read from the start of the file alone."""
    try:
        return _root(path, label)
    except _Refuse as exc:
        raise ImportRefused(f"{label}: refused: {exc}") from None
    except etree.XMLSyntaxError as exc:
        raise ImportRefused(f"{label}: not well-formed XML: {reason(exc)}") from None
    except OSError as exc:
        raise ImportRefused(f"{label}: cannot be read: {reason(exc)}") from None


def head(path: Path, label: str) -> FeedInfo:
    """The feed's root, read from its start (a DOCTYPE or a foreign root is refused here)."""
    tag, attrs = root(path, label)
    if tag not in ROOTS:
        raise ImportRefused(
            f"{label}: the root element is <{tag}>; a native feed starts with <advancedimporter>"
        )
    return FeedInfo(tag=tag, attrs=attrs, size=os.stat(path).st_size)


def _check(path: Path, label: str) -> None:
    try:
        etree.parse(str(path), etree.XMLParser(target=_Check(), **PARSER_OPTIONS))
    except _Refuse as exc:
        raise ImportRefused(f"{label}: refused: {exc}") from None
    except etree.XMLSyntaxError as exc:
        raise ImportRefused(f"{label}: not well-formed XML: {reason(exc)}") from None
    except OSError as exc:
        raise ImportRefused(f"{label}: cannot be read: {reason(exc)}") from None


class Check:
    """The whole-file check (well-formed to the last byte) in a thread of its own, started at
    once.

    libxml2 runs without the GIL while it reads (the target has no element callbacks), so the
    check takes a core that is free while this process parses and writes, instead of a pass of
    its own before the import."""

    def __init__(self, path: Path, label: str):
        self._error: ImportRefused | None = None
        self._thread = threading.Thread(
            target=self._run, args=(path, label), name="impexmod-xml-check", daemon=True
        )
        self._thread.start()

    def _run(self, path: Path, label: str) -> None:
        try:
            _check(path, label)
        except ImportRefused as exc:
            self._error = exc
        except Exception as exc:  # reported as the refusal it amounts to, never lost
            self._error = ImportRefused(f"{label}: cannot be checked: {reason(exc)}")

    def done(self) -> bool:
        """Whether the check has finished (passed or not)."""
        return not self._thread.is_alive()

    def result(self) -> None:
        """Wait for the check; raise ImportRefused if the file failed it."""
        self._thread.join()
        if self._error is not None:
            raise self._error


def elements(
    path: Path,
    label: str,
    tags: tuple[str, ...],
    skipped: Callable[[etree._Element, str], None] | None = None,
    position: Callable[[int], None] | None = None,
) -> Iterator[tuple[etree._Element, str]]:
    """Each second-level element named in ``tags``, with its path
    (``/advancedimporter/product[3]``), then dropped. Other second-level elements are passed to
    ``skipped``; ``position`` receives the bytes read so far (for progress)."""
    seen: dict[str, int] = {}
    last = None
    with open(path, "rb") as fh:
        # Only these tags reach Python: the thousands of field elements stay in libxml2.
        context = etree.iterparse(
            fh, events=("end",), tag=tags, remove_blank_text=True, **PARSER_OPTIONS
        )
        try:
            root = prefix = None
            for _event, elem in context:
                parent = elem.getparent()
                if root is None and parent is not None and parent.getparent() is None:
                    root, prefix = parent, f"/{parent.tag}/"
                if parent is None or parent is not root:
                    continue  # the root, or an element nested in an entity
                tag = elem.tag
                seen[tag] = seen.get(tag, 0) + 1
                previous = elem.getprevious()
                while previous is not None:
                    if (
                        skipped is not None
                        and previous is not last
                        and isinstance(previous.tag, str)
                    ):
                        skipped(previous, f"{prefix}{previous.tag}")
                    del parent[0]
                    previous = elem.getprevious()
                yield elem, f"{prefix}{tag}[{seen[tag]}]"
                # Drop what is done with, so memory does not grow with the feed.
                elem.clear()
                last = elem
                if position is not None and not seen[tag] & 255:
                    position(fh.tell())
        except etree.XMLSyntaxError as exc:
            raise ImportRefused(f"{label}: not well-formed XML: {reason(exc)}") from None
        finally:
            del context
