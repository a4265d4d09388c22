"""Safe, streaming XML: no DTD, no entities, no network, no huge trees.

A feed is read twice. A first pass through a parser target that builds nothing (libxml2 still
checks every byte) proves the file well-formed and refuses any DOCTYPE, so no external entity
and no "billion laughs" is ever expanded; only then does the second pass stream the entity
elements one by one, each dropped once handled. A truncated or hostile file therefore writes
nothing.
"""

from __future__ import annotations

import os
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
    with open(path, "rb") as fh:  # closed here: we stop at the first element
        for _event, elem in etree.iterparse(fh, events=("start",), **PARSER_OPTIONS):
            if elem.getroottree().docinfo.doctype:
                raise _Refuse("a DOCTYPE is not allowed (no DTD, no entities)")
            return elem.tag, dict(elem.attrib)
    raise ImportRefused(f"{label}: empty document")


def root(path: Path, label: str) -> tuple[str, dict[str, str]]:
    """The root element's name and attributes, read from the start of the file alone."""
    try:
        return _root(path, label)
    except _Refuse as exc:
        raise ImportRefused(f"{label}: refused: {exc}") from None
    except etree.XMLSyntaxError as exc:
        raise ImportRefused(f"{label}: not well-formed XML: {exc}") from None
    except OSError as exc:
        raise ImportRefused(f"{label}: cannot be read: {exc}") from None


def scan(path: Path, label: str) -> FeedInfo:
    """Check a whole feed without building it; raise ImportRefused with a clear message."""
    try:
        tag, attrs = _root(path, label)
        etree.parse(str(path), etree.XMLParser(target=_Check(), **PARSER_OPTIONS))
    except _Refuse as exc:
        raise ImportRefused(f"{label}: refused: {exc}") from None
    except etree.XMLSyntaxError as exc:
        raise ImportRefused(f"{label}: not well-formed XML: {exc}") from None
    except OSError as exc:
        raise ImportRefused(f"{label}: cannot be read: {exc}") from None
    if tag not in ROOTS:
        raise ImportRefused(
            f"{label}: the root element is <{tag}>; a native feed starts with <advancedimporter>"
        )
    return FeedInfo(tag=tag, attrs=attrs, size=os.stat(path).st_size)


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
        context = etree.iterparse(fh, events=("end",), tag=tags, **PARSER_OPTIONS)
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
            raise ImportRefused(f"{label}: not well-formed XML: {exc}") from None
        finally:
            del context
