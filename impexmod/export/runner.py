"""One export run: claim the change window, stream the feed, publish it atomically."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app

from impexmod import entities
from impexmod.catalog import changes
from impexmod.catalog.identity import shop_source
from impexmod.entities import ExportContext
from impexmod.export import reader
from impexmod.export.output import open_output, output_ext
from impexmod.export.selection import Selection
from impexmod.export.writers import WriterSetup
from impexmod.extensions import db
from impexmod.models import Run, RunStatus, Task, TaskKind
from impexmod.runs import lifecycle
from impexmod.runs.feedstore import STORE_ERRORS, FeedFile, get_store
from impexmod.runs.lifecycle import Progress


def _previous_success(task: Task) -> Run | None:
    return (
        db.session.query(Run)
        .filter(Run.task_id == task.id, Run.status == RunStatus.SUCCEEDED.value)
        .order_by(Run.id.desc())
        .first()
    )


@dataclass
class _Plan:
    """What one export run reads: the whole table, or the change window ``after``..``upto``."""

    incremental: bool
    after: int | None
    upto: int
    previous: Run | None
    selection: Selection


def _plan(run: Run, task: Task) -> _Plan:
    """Claim the run's change window and say in its log what it will write."""
    incremental = task.strategy == "incremental" and task.last_epoch is not None
    previous = _previous_success(task) if incremental else None
    # Claim before reading: whatever commits from now on belongs to the next run's window.
    upto = changes.claim_epoch()
    after = task.last_epoch if incremental else None
    run.strategy = "incremental" if incremental else "full"
    run.epoch_from, run.epoch_to = after, upto
    window = f" of changes {after}..{upto}" if incremental else ""
    shape = f"template {task.template}" if task.template else task.format
    if task.stylesheet:
        shape = f"stylesheet {task.stylesheet}"
    selection = Selection.of(task)
    run.log_line(f"{run.strategy.capitalize()} export{window}: {task.entity} as {shape}")
    if selection:
        run.log_line(f"Selection: {selection.describe()}")
    return _Plan(incremental, after, upto, previous, selection)


def _root(task: Task, run: Run, plan: _Plan) -> dict[str, str | None]:
    """The attributes of the feed's root element."""
    since = plan.previous.started_at if plan.previous else None
    return {
        "generator": "impexmod",
        "source": shop_source(),
        "entity": task.entity,
        "strategy": run.strategy,
        "generated-at": datetime.now(UTC).isoformat(timespec="seconds"),
        "window-from": str(plan.after) if plan.incremental else None,
        "window-to": str(plan.upto),
        "since": since.replace(tzinfo=UTC).isoformat(timespec="seconds") if since else None,
    }


def _write_batch(out, descriptor, ctx: ExportContext, batch) -> tuple[int, int]:
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


def _write(run: Run, task: Task, plan: _Plan, fh) -> tuple[ExportContext, str]:
    """Stream the task's feed into ``fh``; return the export context and the file's ending."""
    descriptor = entities.resolve(task.entity)
    size = int(current_app.config["CHUNK_SIZE"])
    progress = Progress(run)
    after, upto, selection = plan.after, plan.upto, plan.selection
    with db.engine.connect() as conn:
        ctx = ExportContext.open(conn, shop_source())
        if plan.incremental:
            progress.start(reader.count_changed(conn, descriptor, after, upto, selection))
            batches = reader.changed_batches(conn, descriptor, after, upto, size, selection)
        else:
            progress.start(reader.count_all(conn, descriptor, selection))
            batches = reader.all_batches(conn, descriptor, size, selection)
        setup = WriterSetup(
            entity=task.entity,
            root=_root(task, run, plan),
            options=dict(task.options or {}),
            languages=list(ctx.languages.values()),
            incremental=plan.incremental,
        )
        writer = open_output(task, fh, setup)
        with writer as out:
            for batch in batches:
                written, deleted = _write_batch(out, descriptor, ctx, batch)
                progress.advance(len(batch.ids), written, deleted)
        conn.rollback()
    return ctx, writer.ext


def export(run: Run, task: Task) -> FeedFile:
    """Write the task's feed for this run and place it beside the published one (not yet
    served); raise on failure."""
    store = get_store()
    plan = _plan(run, task)
    with store.writing(task.id, run.id) as (fh, tmp):
        ctx, ext = _write(run, task, plan, fh)
    run.log_line(
        f"Wrote {run.entity_count} entities and {run.deleted_count} deletions "
        f"out of {run.total} read"
    )
    feed = store.place(task.id, run.id, tmp, ext)
    run.bytes = feed.size
    run.file_key = feed.name
    task.last_epoch = plan.upto
    run.warnings = list(ctx.warnings)
    if run.warnings:
        run.log_line(f"{len(run.warnings)} warning(s); the first: {run.warnings[0]}")
    return feed


def publish(run: Run, feed: FeedFile) -> None:
    """Point the feed URL at a run whose success is committed, then add its gzip twin."""
    store = get_store()
    # Only now does the URL serve it: a crash before this line leaves the previous feed, and
    # the sweeper points the URL here (impexmod.dispatch.liveness.repair_pointers).
    try:
        store.point(feed)
        run.log_line(f"Published {feed.name} ({feed.size} bytes): the feed URL serves it now")
    except STORE_ERRORS as exc:
        current_app.logger.exception("run %s: the feed URL could not be switched", run.id)
        run.log_line(f"Succeeded, but the feed URL could not be switched yet ({exc}): retried")
    run.log_line(f"Succeeded in {run.duration:.2f} s")
    db.session.commit()
    if current_app.config.get("GZIP_FEEDS", True):
        try:
            store.add_gzip(feed)
        except STORE_ERRORS as exc:  # the feed is served as it is; only its twin is missing
            current_app.logger.exception("run %s: no gzip twin", run.id)
            run.log_line(f"No gzip twin ({exc}): the feed is served uncompressed")
            db.session.commit()


class ExportPipeline:
    """The runs of exporters and of the panel's manual exports (impexmod.runs.lifecycle)."""

    label = ""

    def begin(self, run: Run, task: Task) -> str:
        return "Started"

    def work(self, run: Run, task: Task) -> tuple[RunStatus, FeedFile]:
        return RunStatus.SUCCEEDED, export(run, task)

    def closing(self, run: Run, status: RunStatus) -> None:
        """An export says it succeeded once it is published (``publish``)."""

    def publish(self, run: Run, task: Task, outcome: FeedFile) -> None:
        publish(run, outcome)

    def discard(self, run: Run, task: Task) -> None:
        get_store().remove_run_files(task.id, run.id)  # placed, but never recorded a success

    def failure_note(self) -> str:
        return "; the previous feed stays in place"

    def file_ext(self, task: Task) -> str:
        return output_ext(task)


def register() -> None:
    """Make exporters and manual exports run through this pipeline (the app factory calls it)."""
    lifecycle.register(ExportPipeline(), TaskKind.EXPORT, TaskKind.MANUAL)
