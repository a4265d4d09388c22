"""The documents an order exporter sends or serves: orders as the order feeds render them
(native XML, JSON, JSON Lines, or a field template's rows as JSON), each with its idempotency
key in the body.

A document is written as it goes into a binary file (a buffer for a request, the feed store's
temporary file for pull mode), a batch of orders at a time: ``DocumentWriter.add``.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import BinaryIO

from impexmod import entities
from impexmod.catalog.identity import shop_source
from impexmod.entities import ExportContext
from impexmod.entities.xmltext import attributes, checked
from impexmod.export.formats.base import WriterSetup
from impexmod.export.formats.json_writer import JsonWriter
from impexmod.export.xml import DECLARATION, ROOT
from impexmod.extensions import db
from impexmod.models import OrderFlag

FORMATS = ("xml", "json", "jsonl")
# Formats a field template's rows are written as.
TEMPLATE_FORMATS = ("json", "jsonl")
CONTENT_TYPES = {
    "xml": "application/xml; charset=utf-8",
    "json": "application/json",
    "jsonl": "application/x-ndjson",
}
# The attribute (XML) or member (JSON) that carries an order's idempotency key in the body.
KEY_ATTRIBUTE = "idempotency-key"
KEY_MEMBER = "idempotency_key"


def root_of(flag: str, **extra: str | None) -> dict[str, str | None]:
    """The document's root attributes: who wrote it, for which flag, when."""
    return {
        "generator": "impexmod",
        "source": shop_source(),
        "entity": "orders",
        "flag": flag,
        "generated-at": datetime.now(UTC).isoformat(timespec="seconds"),
        **extra,
    }


class DocumentWriter:
    """Writes one document of orders into ``fh``: open, ``add`` batches, close."""

    def __init__(self, fh: BinaryIO, fmt: str, root: dict, mapping=None):
        self.fh, self.fmt, self.mapping = fh, fmt, mapping
        self.root = {k: v for k, v in root.items() if v is not None}
        self.count = 0
        # The JSON writers' objects (nested relations, or a template's rows), not their file.
        self._json = JsonWriter(
            io.BytesIO(), WriterSetup(entity="orders", root={}, mapping=mapping)
        )

    def __enter__(self) -> DocumentWriter:
        if self.fmt == "xml":
            start = checked(f"<{ROOT}{attributes(self.root)}>\n", "the document's root")
            self.fh.write(DECLARATION + start)
        elif self.fmt == "json":
            self.fh.write(f'{{"feed":{self._json.dumps(self.root)},"orders":['.encode())
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None:
            return
        if self.fmt == "xml":
            self.fh.write(f"</{ROOT}>\n".encode())
        elif self.fmt == "json":
            self.fh.write(b"]}\n")

    def add(self, rows: Sequence[OrderFlag], shop_id: str) -> list[int]:
        """Write the orders of these flags (those that still exist); return their order ids."""
        keys = {row.id_order: row.idempotency_key(shop_id) for row in rows}
        descriptor = entities.resolve("orders")
        written: list[int] = []
        with db.engine.connect() as conn:
            ctx = ExportContext.open(conn, shop_source())
            for record in descriptor.load(ctx, sorted(keys)):
                order_id = descriptor.record_id(record)
                self._write(descriptor, ctx, record, keys[order_id])
                written.append(order_id)
            conn.rollback()
        return written

    def _write(self, descriptor, ctx, record, key: str) -> None:
        if self.fmt == "xml":
            element = descriptor.render_bytes(ctx, record)
            # The key goes on the <order> element itself: ``<order idempotency-key="..." ...``.
            head = b"<" + descriptor.element.encode()
            self.fh.write(head + attributes({KEY_ATTRIBUTE: key}).encode() + element[len(head) :])
            self.count += 1
            return
        for obj in self._json.objects(descriptor, ctx, record):
            obj = {KEY_MEMBER: key, **obj}
            text = self._json.dumps(obj)
            if self.fmt == "json":
                self.fh.write(("," if self.count else "").encode() + text.encode())
            else:
                self.fh.write(text.encode() + b"\n")
            self.count += 1


def render(
    rows: Sequence[OrderFlag], fmt: str, root: dict, shop_id: str, mapping=None
) -> tuple[bytes, list[int]]:
    """One request's document of these flags' orders, and the order ids it holds."""
    buffer = io.BytesIO()
    with DocumentWriter(buffer, fmt, root, mapping) as out:
        written = out.add(rows, shop_id)
    return buffer.getvalue(), written


def batch_key(shop_id: str, flag: str, keys: Sequence[str]) -> str:
    """The key of a batch request: the same for a retry of the same orders."""
    digest = hashlib.sha256(json.dumps(sorted(keys)).encode()).hexdigest()[:24]
    return f"{shop_id}:batch:{flag}:{digest}"
