"""XSLT stylesheets applied to the native XML of a feed, in the sandbox of
impexmod.export.stylesheets.

A record-wise stylesheet is applied chunk by chunk of entities (each chunk a native document of
at most CHUNK_SIZE entities) and the results joined, so memory stays flat: text output is
concatenated (the stylesheet writes its header when ``$first-chunk = '1'``); XML output is the
stylesheet's output for an empty feed with, inside its record container, the records of
every chunk. Any other stylesheet runs once on the whole native document, written to a temporary
file first and refused past XSLT_MAX_INPUT_BYTES. See docs/xslt.md.
"""

from __future__ import annotations

import io
import tempfile
import uuid
from dataclasses import dataclass, field
from typing import BinaryIO

from flask import current_app
from lxml import etree

from impexmod.export import stylesheets
from impexmod.export.xml import NativeXmlWriter
from impexmod.messages import msg

# The string parameters every run passes (a stylesheet declares those it uses with xsl:param).
PARAMETERS = {
    "first-chunk": "'1' for the first chunk (and for a whole document), '0' for the others",
    "language": "the feed language: IMPEXMOD_FEED_LANGUAGE, else the shop's first language",
    "currency": "ISO 4217 code of the prices: IMPEXMOD_CURRENCY",
    "shop-url": "the storefront, for product links: IMPEXMOD_SHOP_URL",
}
_SPACE = b" \t\r\n"


class StylesheetFailed(RuntimeError):
    """A stylesheet that failed while a feed was written; the message says where and why."""


class InputTooLarge(StylesheetFailed):
    """The native document is over the limit of a stylesheet that needs all of it at once."""


@dataclass
class StylesheetSpec:
    """A stylesheet an exporter names: where it comes from and what it writes."""

    name: str
    origin: str  # "shipped" or "uploaded"
    content: bytes
    record_wise: bool
    method: str  # xml, text or html
    ext: str  # the feed's extension: xml, csv, tsv, txt or html
    container: str | None = None  # Clark name of the record container (XML joins)
    _compiled: etree.XSLT | None = field(default=None, init=False, repr=False, compare=False)

    def xslt(self) -> etree.XSLT:
        """The stylesheet compiled in the sandbox (once, on first use)."""
        if self._compiled is None:
            tree = stylesheets.parse(self.content, f"stylesheet {self.name}")
            self._compiled = stylesheets.compile_tree(tree, f"stylesheet {self.name}")
        return self._compiled


def resolve_stylesheet(name: str) -> StylesheetSpec:
    """The stylesheet of that name (shipped in xslt/ or uploaded), or LookupError."""
    found = stylesheets.load_source(name)
    if found is None:
        known = ", ".join(stylesheets.known_names()) or "none"
        raise LookupError(
            msg("no stylesheet named %(name)s (known: %(known)s)", name=repr(name), known=known)
        )
    origin, content, flag = found
    return make_spec(name, content, origin=origin, record_wise=flag)


def make_spec(
    name: str, content: bytes, *, origin: str = "uploaded", record_wise: bool = False
) -> StylesheetSpec:
    """The spec of a stylesheet's source; record-wise if it says so or ``record_wise``."""
    where = f"stylesheet {name}"
    declared = stylesheets.declaration(stylesheets.parse(content, where), where)
    stylesheets.check_mode(declared.method, record_wise, where)
    return StylesheetSpec(
        name=name,
        origin=origin,
        content=content,
        record_wise=record_wise or declared.record_wise,
        method=declared.method,
        ext=declared.ext,
        container=declared.container,
    )


def feed_params(languages: list[str]) -> dict[str, str]:
    """The parameters of a run (but first-chunk), from the configuration."""
    cfg = current_app.config
    language = cfg.get("FEED_LANGUAGE") or (languages[0] if languages else "en")
    return {"language": language, "currency": cfg["CURRENCY"], "shop-url": cfg["SHOP_URL"]}


class XsltWriter:
    """Writes the native XML of the feed and applies a stylesheet to it, streaming."""

    OPTIONS: dict[str, str] = {}

    def __init__(
        self,
        fh: BinaryIO,
        setup,
        stylesheet: StylesheetSpec,
        *,
        chunk_size: int | None = None,
        max_input_bytes: int | None = None,
        params: dict[str, str] | None = None,
    ):
        self.ext = stylesheet.ext
        self._fh = fh
        self._setup = setup
        self._spec = stylesheet
        cfg = current_app.config if None in (chunk_size, max_input_bytes, params) else {}
        self._chunk_size = max(1, int(chunk_size or cfg["CHUNK_SIZE"]))
        limit = cfg["XSLT_MAX_INPUT_BYTES"] if max_input_bytes is None else max_input_bytes
        self._limit = int(limit)
        self._params = feed_params(setup.languages) if params is None else dict(params)
        self._xslt: etree.XSLT | None = None
        self._native: NativeXmlWriter | None = None  # the native XML being written
        self._buffer: BinaryIO | None = None  # ... into this chunk buffer or temporary file
        self._count = 0  # entities in the buffer
        self._total = 0  # entities in all
        self._chunks = 0  # chunks applied
        self._join: _XmlJoin | None = None

    # ------------------------------------------------------------------ the FeedWriter protocol

    def __enter__(self) -> XsltWriter:
        self._xslt = self._spec.xslt()
        if self._spec.record_wise and self._spec.method != "text":
            self._join = _XmlJoin(self, self._apply(_native_bytes(self._setup), first=True))
        return self

    def write_record(self, descriptor, ctx, record) -> None:
        """Add one entity to the native XML."""
        self._native_writer().write_record(descriptor, ctx, record)
        self._added()

    def write_delete(self, descriptor, key: tuple[str, str]) -> None:
        """Add a native ``<delete .../>`` (incremental feeds) to the native XML."""
        self._native_writer().write_delete(descriptor, key)
        self._added()

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            self._discard()
            return False
        if not self._spec.record_wise:
            self._finish_whole_document()
            return False
        if self._count or not self._chunks:
            self._flush_chunk()
        if self._join is not None:
            self._join.finish()
        return False

    # ------------------------------------------------------------------ internals

    def _native_writer(self) -> NativeXmlWriter:
        if self._native is None:
            if self._spec.record_wise:
                self._buffer = io.BytesIO()
            else:  # the whole document goes to disk, not to memory
                self._buffer = tempfile.TemporaryFile(prefix="impexmod-xslt-")
            self._native = NativeXmlWriter(self._buffer, self._setup).__enter__()
        return self._native

    def _close_native(self) -> BinaryIO:
        buffer = self._buffer
        if self._native is not None:
            self._native.__exit__(None, None, None)
        self._native = self._buffer = None
        buffer.seek(0)
        return buffer

    def _discard(self) -> None:
        try:
            if self._native is not None:
                self._native.__exit__(None, None, None)
        finally:
            if self._buffer is not None:
                self._buffer.close()
            self._native = self._buffer = None

    def _added(self) -> None:
        self._count += 1
        self._total += 1
        if self._spec.record_wise:
            if self._count >= self._chunk_size:
                self._flush_chunk()
        elif self._buffer.tell() > self._limit:
            self._too_large(self._buffer.tell())

    def _too_large(self, size: int) -> None:
        self._discard()
        raise InputTooLarge(
            f"stylesheet {self._spec.name} is not record-wise, so it runs on the whole native "
            f"document, which is over the limit of {self._limit} bytes "
            f"(IMPEXMOD_XSLT_MAX_INPUT_BYTES): {size} bytes after {self._total} entities; "
            "mark the stylesheet record-wise if it can be applied chunk by chunk, "
            "or raise the limit"
        )

    def _flush_chunk(self) -> None:
        source = self._close_native() if self._native is not None else _native_bytes(self._setup)
        result = self._apply(source, first=self._chunks == 0)
        self._chunks += 1
        self._count = 0
        if self._join is not None:
            self._join.add(result)
        else:
            self._fh.write(bytes(result))

    def _finish_whole_document(self) -> None:
        self._native_writer()  # an empty feed is still a document
        self._native.__exit__(None, None, None)  # its end tag: the document is complete
        self._native = None
        size = self._buffer.seek(0, io.SEEK_END)
        if size > self._limit:
            self._too_large(size)
        source = self._close_native()
        try:
            result = self._apply(source, first=True)
        finally:
            source.close()
        self._fh.write(bytes(result))

    def _apply(self, source: BinaryIO, first: bool) -> etree._XSLTResultTree:
        doc = etree.parse(source, stylesheets.safe_parser())
        params = {k: etree.XSLT.strparam(v) for k, v in self._params.items()}
        params["first-chunk"] = etree.XSLT.strparam("1" if first else "0")
        try:
            return self._xslt(doc, **params)
        except etree.XSLTApplyError as exc:
            line, message = stylesheets.first_error(exc.error_log, str(exc))
            at = f" at line {line}" if line else ""
            hint = ""
            if "refused" in message or "denied" in message:
                hint = " (stylesheets may not read or write files or reach the network)"
            raise StylesheetFailed(
                f"stylesheet {self._spec.name} failed{at}: {message}{hint}"
            ) from None

    def _fail(self, message: str) -> StylesheetFailed:
        return StylesheetFailed(f"stylesheet {self._spec.name}: {message}")


def _native_bytes(setup) -> BinaryIO:
    """An empty native document with the feed's root attributes."""
    buffer = io.BytesIO()
    with NativeXmlWriter(buffer, setup):
        pass
    buffer.seek(0)
    return buffer


class _XmlJoin:
    """Joins the XML output of a record-wise stylesheet, chunk by chunk.

    The rule (docs/xslt.md): the stylesheet's output for an empty feed gives everything but the
    records; in it, the record container (``impexmod:record-container``, else the document
    element) holds only elements, and those come before the records. The records of a chunk
    are the container's children after as many children as the empty output has there. Each
    output is serialised by the stylesheet's own xsl:output; marker comments cut the bytes.
    """

    def __init__(self, writer: XsltWriter, empty: etree._XSLTResultTree):
        self.writer = writer
        self.empty = bytes(empty)  # the whole output when no chunk has a record
        container = self._container(empty, "its output for an empty feed")
        self.static = [child.tag for child in container]
        marker = f"impexmod-records-{uuid.uuid4().hex}"
        container.append(etree.Comment(marker))
        head, found, tail = bytes(empty).partition(f"<!--{marker}-->".encode())
        if not found:
            raise writer._fail("its output encoding hides the record markers: write UTF-8")
        self.head, self.tail = head.rstrip(_SPACE), tail
        self.started = False

    def _container(self, result: etree._XSLTResultTree, what: str) -> etree._Element:
        root = result.getroot()
        spec = self.writer._spec
        wanted = spec.container
        container = root if not wanted or root is None else next(root.iter(wanted), None)
        if container is None:
            name = etree.QName(wanted).localname if wanted else "document element"
            raise self.writer._fail(f"{what} has no record container ({name})")
        # Even whitespace: libxml2 would then stop indenting the container, and the records of
        # separate chunks would not join into the bytes of one whole-document run.
        if container.text or any(child.tail for child in container):
            raise self.writer._fail(
                f"its record container <{etree.QName(container).localname}> holds text in "
                f"{what}; a record-wise stylesheet writes only elements into it"
            )
        return container

    def add(self, result: etree._XSLTResultTree) -> None:
        """Write the records of one chunk's output."""
        container = self._container(result, f"its output for chunk {self.writer._chunks}")
        children = list(container)
        k = len(self.static)
        if [child.tag for child in children[:k]] != self.static:
            raise self.writer._fail(
                f"its output for chunk {self.writer._chunks} does not start its record "
                "container like its output for an empty feed does; a record-wise stylesheet "
                "writes what is not a record before the records"
            )
        records = children[k:]
        if not records:
            return
        marker = uuid.uuid4().hex
        records[0].addprevious(etree.Comment(f"{marker}-start"))
        records[-1].addnext(etree.Comment(f"{marker}-end"))
        data = bytes(result)
        _, _, rest = data.partition(f"<!--{marker}-start-->".encode())
        segment, _, _ = rest.partition(f"<!--{marker}-end-->".encode())
        body = segment.strip(_SPACE)
        lead = segment[: len(segment) - len(segment.lstrip(_SPACE))]
        fh = self.writer._fh
        if not self.started:
            fh.write(self.head)
            self.started = True
        fh.write(lead)
        fh.write(body)

    def finish(self) -> None:
        """Write the end of the output (or the empty feed's output if no chunk had a record)."""
        self.writer._fh.write(self.tail if self.started else self.empty)
