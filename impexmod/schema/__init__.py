"""Validation of native feeds against ``advancedimporter.xsd``.

Feeds are validated as a stream, a batch of entity elements at a time, so that memory does not
grow with the feed: the root's content model is "any sequence of entity elements", so a feed is
valid exactly when its root and each of its entity elements are. Validating small trees (rather
than plugging the validator into the parser) also keeps the line numbers of errors, which
libxml2's streaming validator loses.
"""

from __future__ import annotations

import io
import os
import threading
from functools import cache
from pathlib import Path
from typing import IO

from lxml import etree

SCHEMA_PATH = Path(__file__).with_name("advancedimporter.xsd")
ROOT = "advancedimporter"
MAX_ERRORS = 20  # enough to fix a feed, not so many that a broken one floods the log
SHOWN_ERRORS = 5
BATCH = 200  # entity elements validated together: fewer validator set-ups, little memory

Source = bytes | str | os.PathLike | IO[bytes] | etree._Element | etree._ElementTree


class FeedInvalid(ValueError):
    """A feed that is not well-formed XML or does not follow the native schema."""

    def __init__(self, errors: list[tuple[int, str]]):
        self.errors = errors
        shown = "; ".join(f"line {line}: {message}" for line, message in errors[:SHOWN_ERRORS])
        more = len(errors) - SHOWN_ERRORS
        suffix = f" (and {more} more)" if more > 0 else ""
        super().__init__(f"invalid native feed: {shown}{suffix}")


def safe_parser() -> etree.XMLParser:
    """A parser that neither expands entities nor reaches the network."""
    return etree.XMLParser(resolve_entities=False, no_network=True)


@cache
def schema() -> etree.XMLSchema:
    """The native feed schema, loaded once per process."""
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH), safe_parser()))


# A validator's error log is shared by its callers: one validation at a time per process.
_lock = threading.Lock()


def _check(tree: etree._Element, fallback_line: int | None) -> list[tuple[int, str]]:
    """Schema errors of one tree as (line, message), ``fallback_line`` where libxml2 has none."""
    validator = schema()
    with _lock:
        try:
            if validator.validate(tree):
                return []
        except etree.XMLSchemaValidateError:
            # libxml2 cannot validate the entity references that the safe parser leaves.
            entity = next(tree.iter(etree.Entity), None)
            if entity is None:
                raise
            line = entity.sourceline or fallback_line or 0
            return [(line, f"entity reference {entity.text} is not allowed (never expanded)")]
        log = list(validator.error_log)
    return [(e.line or fallback_line or 0, e.message) for e in log]


def _open(source: Source):
    """What ``iterparse`` reads: a file name or a binary file."""
    if isinstance(source, bytes):
        return io.BytesIO(source)
    if isinstance(source, str):
        # XML text starts with markup; anything else names a file.
        if source.lstrip("\ufeff \t\r\n").startswith("<"):
            return io.BytesIO(source.encode("utf-8"))
        return source
    if isinstance(source, os.PathLike):
        return os.fspath(source)
    return source


def _stray_text(value: str | None, line: int | None) -> list[tuple[int, str]]:
    if value and value.strip():
        return [(line or 0, f"text {value.strip()[:40]!r} is not allowed between entity elements")]
    return []


def _validate_stream(source: Source) -> list[tuple[int, str]]:
    errors: list[tuple[int, str]] = []
    root = None
    # Entity elements are moved, a batch at a time, under an empty root of their own and
    # validated there; the parsed document never holds more than the entity being read.
    batch = etree.Element(ROOT)

    def check_batch() -> None:
        nonlocal errors
        if len(batch):
            errors += _check(batch, batch[0].sourceline)
            batch[:] = []

    try:
        for _event, el in etree.iterparse(
            _open(source), events=("end",), resolve_entities=False, no_network=True
        ):
            parent = el.getparent()
            if parent is None:  # the root has ended
                if root is None:
                    root = el
                    errors += _check(_bare(root), root.sourceline)
                check_batch()
                errors += _stray_text(root.text, root.sourceline)
            elif parent.getparent() is None:  # an entity element has ended
                if root is None:
                    root = parent
                    errors += _check(_bare(root), root.sourceline)
                errors += _loose_text(root, el)
                batch.append(el)
                if len(batch) >= BATCH:
                    check_batch()
            if len(errors) >= MAX_ERRORS:
                break
    except etree.XMLSyntaxError as exc:
        errors.append((exc.lineno or 0, f"not well-formed XML: {exc.msg}"))
    return errors


def _loose_text(root: etree._Element, el: etree._Element) -> list[tuple[int, str]]:
    """Check and drop the text and comments around ``el``, the root's only element child.

    Text after an entity element is its tail if the parser had read it when the element
    ended, else it lands in ``root.text`` once the element has been moved out.
    """
    line = el.sourceline
    found = _stray_text(root.text, line) + _stray_text(el.tail, line)
    root.text = el.tail = None
    for node in list(el.itersiblings(preceding=True)):  # comments, processing instructions
        found += _stray_text(node.tail, line)
        root.remove(node)
    return found


def _bare(root: etree._Element) -> etree._Element:
    """The root alone, with its attributes: what is checked of it."""
    return etree.Element(root.tag, dict(root.attrib), nsmap=root.nsmap)


def validate(source: Source) -> None:
    """Raise :class:`FeedInvalid` (with line numbers) unless ``source`` is a valid native feed.

    ``source`` is the feed as bytes, XML text, a file name or path, a binary file, or a parsed
    element or tree.
    """
    if isinstance(source, etree._ElementTree | etree._Element):
        errors = _check(source, None)
    else:
        errors = _validate_stream(source)
    if errors:
        raise FeedInvalid(errors[:MAX_ERRORS])


def is_valid(source: Source) -> bool:
    """Whether ``source`` is a valid native feed."""
    try:
        validate(source)
    except FeedInvalid:
        return False
    return True


__all__ = ["FeedInvalid", "SCHEMA_PATH", "is_valid", "safe_parser", "schema", "validate"]
