"""One export run: claim the change window, stream the feed, publish it atomically."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app

from impexmod.catalog import changes
from impexmod.catalog.identity import shop_source
from impexmod.export import parts
from impexmod.export.output import output_ext
from impexmod.export.selection import Selection
from impexmod.export.stream import Plan, write_feed
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


def _plan(run: Run, task: Task) -> Plan:
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
    return Plan(incremental, after, upto, previous, selection)


def _root(task: Task, run: Run, plan: Plan) -> dict[str, str | None]:
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


def export(run: Run, task: Task) -> FeedFile:
    """Write the task's feed for this run and place it beside the published one (not yet
    served); raise on failure."""
    store = get_store()
    plan = _plan(run, task)
    root = _root(task, run, plan)
    with store.writing(task.id, run.id) as (fh, tmp):
        # A large full export is written in key-range parts by the free workers, then joined.
        written = None if plan.incremental else parts.write_in_parts(run, task, plan, root, fh)
        if written is None:
            written = write_feed(task, plan, fh, root, Progress(run))
    run.log_line(
        f"Wrote {run.entity_count} entities and {run.deleted_count} deletions "
        f"out of {run.total} read"
    )
    feed = store.place(task.id, run.id, tmp, written.ext)
    run.bytes = feed.size
    run.file_key = feed.name
    task.last_epoch = plan.upto
    run.warnings = list(written.warnings)
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
