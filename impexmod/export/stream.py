"""Streaming a feed into a file: its entities chunk by chunk through the output's writer.

One run writes its whole feed here; the parts of a parallel export (impexmod.export.parts)
each write one key range of it, and say where their body starts and ends so they join.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from impexmod import entities
from impexmod.catalog.identity import shop_source
from impexmod.entities import ExportContext
from impexmod.export import reader
from impexmod.export.output import open_output
from impexmod.export.reader import Span
from impexmod.export.selection import Selection
from impexmod.export.writers import WriterSetup
from impexmod.extensions import db
from impexmod.models import Run, Task


@dataclass
class Plan:
    """What one export run reads: the whole table, or the change window ``after``..``upto``."""

    incremental: bool
    after: int | None
    upto: int
    previous: Run | None
    selection: Selection


@dataclass
class Written:
    """What writing a feed gave: its warnings, the file's ending, and, for a writer that can
    be split (``SPLITTABLE``), the offsets where its body starts and ends."""

    warnings: list[str]
    ext: str
    head: int = 0
    body_end: int = 0


def write_batch(out, descriptor, ctx: ExportContext, batch) -> tuple[int, int]:
    """Write one chunk (its entities, and deletions of those that left); return the numbers
    of entities and deletions written."""
    records = descriptor.load(ctx, batch.load_ids)  # not those that left
    prepare = getattr(out, "prepare", None)
    if prepare is not None:  # a writer that needs more of each chunk loads it once
        prepare(descriptor, ctx, records)
    for record in records:
        out.write_record(descriptor, ctx, record)
    deleted = 0
    if descriptor.emits_deletes and len(records) < len(batch.ids):
        present = {descriptor.record_id(r) for r in records}
        for entity_id in batch.ids:
            if entity_id not in present:
                ref, source = batch.deleted.get(entity_id, (None, None))
                out.write_delete(descriptor, (ref or str(entity_id), source or ctx.shop))
                deleted += 1
    return len(records), deleted


def _offset(out, fh) -> int:
    """Where the writer is in ``fh``, once what it buffers is written."""
    flush = getattr(out, "flush", None)
    if flush is not None:
        flush()
    return fh.tell()


def write_feed(
    task: Task, plan: Plan, fh, root: dict, progress, span: Span | None = None
) -> Written:
    """Stream the task's feed (or the key range ``span`` of a full one) into ``fh``, telling
    ``progress`` (``start(total)``, ``advance(done, written, deleted)``) as it goes."""
    descriptor = entities.resolve(task.entity)
    size = int(current_app.config["CHUNK_SIZE"])
    after, upto, selection = plan.after, plan.upto, plan.selection
    with db.engine.connect() as conn:
        ctx = ExportContext.open(conn, shop_source())
        if plan.incremental:
            progress.start(reader.count_changed(conn, descriptor, after, upto, selection))
            batches = reader.changed_batches(conn, descriptor, after, upto, size, selection)
        else:
            progress.start(reader.count_all(conn, descriptor, selection, span))
            batches = reader.all_batches(conn, descriptor, size, selection, span)
        setup = WriterSetup(
            entity=task.entity,
            root=root,
            options=dict(task.options or {}),
            languages=list(ctx.languages.values()),
            incremental=plan.incremental,
        )
        writer = open_output(task, fh, setup)
        written = Written(ctx.warnings, writer.ext)
        marks = getattr(writer, "SPLITTABLE", False)
        with writer as out:
            written.head = _offset(out, fh) if marks else 0
            for batch in batches:
                done, deleted = write_batch(out, descriptor, ctx, batch)
                progress.advance(len(batch.ids), done, deleted)
            written.body_end = _offset(out, fh) if marks else 0
        conn.rollback()
    return written
