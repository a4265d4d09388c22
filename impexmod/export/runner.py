"""One export run: claim the change window, stream the feed, publish it atomically."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import update

from impexmod import entities
from impexmod.catalog import changes
from impexmod.catalog.identity import shop_source
from impexmod.entities import ExportContext
from impexmod.export import reader
from impexmod.export.output import open_output
from impexmod.export.selection import Selection
from impexmod.export.writers import WriterSetup
from impexmod.extensions import db
from impexmod.models import Run, RunStatus, Task, now
from impexmod.runs.feedstore import get_store
from impexmod.runs.liveness import RunAbandoned


class Progress:
    """Saves a run's counts after every chunk, so the panel and the CLI can follow it."""

    def __init__(self, run: Run):
        self.run = run

    def start(self, total: int) -> None:
        """Record the number of entities the run will go through."""
        self.run.total = total
        self._save()

    def advance(self, done: int, written: int, deleted: int) -> None:
        """Add one chunk's counts."""
        self.run.done += done
        self.run.entity_count += written
        self.run.deleted_count += deleted
        self._save()

    def _save(self) -> None:
        self.run.heartbeat_at = now()
        db.session.commit()


def _previous_success(task: Task) -> Run | None:
    return (
        db.session.query(Run)
        .filter(Run.task_id == task.id, Run.status == RunStatus.SUCCEEDED.value)
        .order_by(Run.id.desc())
        .first()
    )


def export(run: Run, task: Task, started: float) -> None:
    """Write the task's feed for this run, record its success, then publish it; raise on
    failure (nothing published)."""
    descriptor = entities.resolve(task.entity)
    store = get_store()
    size = int(current_app.config["CHUNK_SIZE"])
    incremental = task.strategy == "incremental" and task.last_epoch is not None
    previous = _previous_success(task) if incremental else None
    # Claim before reading: whatever commits from now on belongs to the next run's window.
    upto = changes.claim_epoch()
    after = task.last_epoch if incremental else None
    run.strategy = "incremental" if incremental else "full"
    run.epoch_from, run.epoch_to = after, upto
    window = f" of changes {after}..{upto}" if incremental else ""
    selection = Selection.of(task)
    shape = f"template {task.template}" if task.template else task.format
    if task.stylesheet:
        shape = f"stylesheet {task.stylesheet}"
    run.log_line(f"{run.strategy.capitalize()} export{window}: {task.entity} as {shape}")
    if selection:
        run.log_line(f"Selection: {selection.describe()}")
    progress = Progress(run)
    root = {
        "generator": "impexmod",
        "source": shop_source(),
        "entity": task.entity,
        "strategy": run.strategy,
        "generated-at": datetime.now(UTC).isoformat(timespec="seconds"),
        "window-from": str(after) if incremental else None,
        "window-to": str(upto),
        "since": previous.started_at.replace(tzinfo=UTC).isoformat(timespec="seconds")
        if previous and previous.started_at
        else None,
    }
    with store.writing(task.id, run.id) as (fh, tmp), db.engine.connect() as conn:
        ctx = ExportContext.open(conn, shop_source())
        if incremental:
            progress.start(reader.count_changed(conn, descriptor, after, upto, selection))
            batches = reader.changed_batches(conn, descriptor, after, upto, size, selection)
        else:
            progress.start(reader.count_all(conn, descriptor, selection))
            batches = reader.all_batches(conn, descriptor, size, selection)
        setup = WriterSetup(
            entity=task.entity,
            root=root,
            options=dict(task.options or {}),
            languages=list(ctx.languages.values()),
            incremental=incremental,
        )
        writer = open_output(task, fh, setup)
        with writer as out:
            for batch in batches:
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
                            out.write_delete(
                                descriptor, (ref or str(entity_id), source or ctx.shop)
                            )
                            deleted += 1
                progress.advance(len(batch.ids), len(records), deleted)
        conn.rollback()
    run.log_line(
        f"Wrote {run.entity_count} entities and {run.deleted_count} deletions "
        f"out of {run.total} read"
    )
    feed = store.place(task.id, run.id, tmp, writer.ext)
    run.bytes = feed.size
    run.file_key = feed.name
    task.last_epoch = upto
    run.warnings = list(ctx.warnings)
    if run.warnings:
        run.log_line(f"{len(run.warnings)} warning(s); the first: {run.warnings[0]}")
    _commit_success(run, feed, started)
    # Only now does the URL serve it: a crash before this line leaves the previous feed, and
    # the sweeper points the URL here (impexmod.runs.liveness.repair_pointers).
    try:
        store.point(feed)
        run.log_line(f"Published {feed.name} ({feed.size} bytes): the feed URL serves it now")
    except OSError as exc:
        current_app.logger.exception("run %s: the feed URL could not be switched", run.id)
        run.log_line(f"Succeeded, but the feed URL could not be switched yet ({exc}): retried")
    run.log_line(f"Succeeded in {run.duration:.2f} s")
    db.session.commit()
    if current_app.config.get("GZIP_FEEDS", True):
        try:
            store.add_gzip(feed)
        except OSError as exc:  # the feed is served as it is; only the compressed twin is missing
            current_app.logger.exception("run %s: no gzip twin", run.id)
            run.log_line(f"No gzip twin ({exc}): the feed is served uncompressed")
            db.session.commit()


def _commit_success(run: Run, feed, started: float) -> None:
    """Record the run as succeeded, only if it is still running (the sweeper may have taken it
    for dead: then its placed file is removed and RunAbandoned raised)."""
    run.ended_at = now()
    run.duration = round(time.monotonic() - started, 3)
    db.session.flush()
    won = db.session.execute(
        update(Run)
        .where(Run.id == run.id, Run.status == RunStatus.RUNNING.value)
        .values(status=RunStatus.SUCCEEDED.value)
    ).rowcount
    if won != 1:
        db.session.rollback()
        get_store().remove_run_files(feed.task_id, run.id)
        raise RunAbandoned(f"run {run.id} was ended by the sweeper before it could publish")
    db.session.commit()
    db.session.expire(run, ["status"])


def perform(run_id: int) -> Run:
    """Execute a queued run to its end, recording success or failure on the run."""
    run = db.session.get(Run, run_id)
    if run is None:
        raise LookupError(f"run {run_id} does not exist")
    task = db.session.get(Task, run.task_id)
    run.status = RunStatus.RUNNING.value
    run.started_at = run.heartbeat_at = now()
    run.log_line("Started")
    db.session.commit()
    started = time.monotonic()
    try:
        export(run, task, started)
    except RunAbandoned:
        db.session.rollback()
        current_app.logger.warning("run %s was abandoned while it ran; nothing published", run_id)
        return db.session.get(Run, run_id)
    except Exception as exc:  # a failed run is recorded, never raised into the worker loop
        db.session.rollback()
        current_app.logger.exception("run %s of task %s failed", run.id, task.id)
        run = db.session.get(Run, run_id)
        run.status = RunStatus.FAILED.value
        run.error = f"{type(exc).__name__}: {exc}"[:2000]
        run.log_line(f"Failed: {run.error[:500]}; the previous feed stays in place")
        get_store().remove_run_files(task.id, run_id)  # placed, but never recorded as a success
        run.ended_at = now()
        run.duration = round(time.monotonic() - started, 3)
        db.session.commit()
    return run
