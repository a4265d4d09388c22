"""Recurring importers: tasks of kind ``import`` with the same runs, progress and history as
exporters. A run fetches its source (conditionally, or by catching up on an impexmod feed),
imports each file, and records counts per file and entity, its row errors and, for a dry run,
its diffs. Files uploaded in the panel (tasks of kind ``upload``, impexmod.importing.manual) run
here too: a dry run first, then the real import of the same stored file."""

from __future__ import annotations

from impexmod.extensions import db
from impexmod.importing import cursor as catchup
from impexmod.importing import sources, uploads
from impexmod.importing.defaults import setting
from impexmod.importing.definition import options_for
from impexmod.importing.errors import ImportRefused
from impexmod.importing.outcomes import DRY_RUN
from impexmod.importing.report import Report
from impexmod.importing.service import import_file
from impexmod.models import (
    ImportDiff,
    ImportResult,
    ImportRowError,
    ImportSourceState,
    Run,
    RunStatus,
    Task,
    TaskKind,
    now,
)
from impexmod.runs import lifecycle
from impexmod.runs.lifecycle import Progress

# A task of this kind imports a file uploaded in the panel (impexmod.importing.manual).
UPLOAD = TaskKind.UPLOAD


class ImportPipeline:
    """The runs of importers and of the panel's uploads (impexmod.runs.lifecycle)."""

    label = "import "

    def begin(self, run: Run, task: Task) -> str:
        dry_run = bool((task.options or {}).get("dry_run"))
        run.strategy = DRY_RUN if dry_run else "import"
        return "Started a dry run: nothing will be written" if dry_run else "Started"

    def work(self, run: Run, task: Task) -> tuple[RunStatus, None]:
        return _import(run, task), None

    def closing(self, run: Run, status: RunStatus) -> None:
        run.log_line(f"Ended ({status}) in {run.duration:.2f} s")

    def publish(self, run: Run, task: Task, outcome: None) -> None:
        """What an import wrote is in the catalog once its run is recorded."""

    def discard(self, run: Run, task: Task) -> None:
        """An import leaves no file: a failed one wrote nothing of what it refused."""

    def failure_note(self) -> str:
        return ""

    def file_ext(self, task: Task) -> str:
        return task.format


def register() -> None:
    """Make importers and uploads run through this pipeline (the app factory calls it)."""
    lifecycle.register(ImportPipeline(), TaskKind.IMPORT, TaskKind.UPLOAD)


def _state(task: Task, url: str) -> ImportSourceState:
    state = db.session.get(ImportSourceState, task.id)
    if state is None or state.url != url:
        if state is not None:
            db.session.delete(state)
            db.session.flush()
        state = ImportSourceState(task_id=task.id, url=url, speaks_cursor=False)
        db.session.add(state)
        db.session.commit()
    return state


def _import(run: Run, task: Task) -> RunStatus:
    """Import what the task reads; return how the run ended (failed if nothing was imported
    and a file or the source was refused)."""
    opts = task.options or {}
    url = opts.get("url") or ""
    options = options_for(
        opts.get("modes") or "create,update",
        source=opts.get("source"),
        entity=None if task.entity in (None, "any") else task.entity,
        mapping_name=opts.get("mapping"),
        group=opts.get("group"),
        dry_run=bool(opts.get("dry_run")),
    )
    fmt = None if task.format in (None, "auto") else task.format
    totals = Report()
    refused: list[str] = []

    progress = Progress(run).at

    def one(fetched: sources.Fetched) -> Report:
        try:
            report = import_file(
                fetched.path, options, fmt=fmt, label=fetched.name, progress=progress
            )
        finally:
            fetched.cleanup()
        _record(run, report)
        totals.error_count += report.error_count
        refused.extend(report.refused)
        return report

    try:
        if task.kind == TaskKind.UPLOAD:
            one(uploads.fetched(opts.get("upload"), opts.get("file_name") or "upload"))
        elif url.startswith("/"):
            one(sources.from_path(url))
        else:
            _fetch_and_import(run, task, url, opts, one)
    except ImportRefused as exc:  # the source itself failed: a clear message, no traceback
        refused.append(str(exc))
    if refused and not run.entity_count:
        run.error = "; ".join(refused)[:2000]
        return RunStatus.FAILED
    if refused:
        run.warnings = list(run.warnings or []) + refused
    return RunStatus.SUCCEEDED


def _fetch_and_import(run: Run, task: Task, url: str, opts: dict, one) -> None:
    state = _state(task, url)
    password = (task.secrets or {}).get("password") or ""
    auth = (opts["username"], password) if opts.get("username") else None

    def fetch(target: str, params: dict | None) -> sources.Fetched:
        return sources.fetch_url(target, auth=auth if target == url else None, params=params)

    catching_up = opts.get("catch_up", True)
    if not (catching_up and state.speaks_cursor and state.cursor is not None):
        got = sources.fetch_url(url, etag=state.etag, last_modified=state.last_modified, auth=auth)
        if got.not_modified:
            run.log_line("Not modified since the last import (conditional GET): nothing to do")
            return
        window_to = got.headers.get(catchup.CURSOR, "")
        if not (catching_up and window_to.isdigit()):
            report = one(got)
            if not report.refused:
                state.etag, state.last_modified, state.fetched_at = (
                    got.etag,
                    got.last_modified,
                    now(),
                )
                state.content_sha256 = got.sha256
                db.session.commit()
            return
        state.speaks_cursor = True
        if got.headers.get(catchup.WINDOW_FROM):
            # The current file is a delta and we have no base: start from the oldest retained.
            got.cleanup()
            state.cursor = 0
        else:
            report = one(got)
            if report.refused:
                return
            state.cursor = int(window_to)
        db.session.commit()
    for step in catchup.catch_up(fetch, url, state.cursor, int(setting("IMPORT_MAX_CATCH_UP"))):
        report = one(step.fetched)
        if report.refused:
            return
        if step.cursor is not None:
            state.cursor = step.cursor
        state.fetched_at = now()
        run.log_line(f"Imported {step.fetched.name} up to change epoch {state.cursor}")
        db.session.commit()


def _record(run: Run, report: Report) -> None:
    """Store one file's results and errors on the run."""
    for row in report.per_entity():
        db.session.add(ImportResult(run_id=run.id, **row))
    for error in report.errors:
        db.session.add(
            ImportRowError(
                run_id=run.id,
                severity=error.severity,
                file=error.file[:255],
                line=error.line,
                path=(error.path or "")[:512],
                field=(error.field or "")[:64],
                reason=error.reason,
            )
        )
    if report.dry_run:
        for diff in report.diffs:
            db.session.add(
                ImportDiff(
                    run_id=run.id,
                    file=(diff.get("file") or "")[:255],
                    entity=str(diff.get("entity") or "")[:32],
                    label=str(diff.get("key") or "")[:255],
                    action=str(diff.get("action") or "")[:16],
                    changes=diff.get("changes") or {},
                )
            )
    totals = report.totals()
    run.entity_count += totals["created"] + totals["updated"] + totals["unchanged"]
    run.deleted_count += totals["deleted"]
    label = ", ".join(report.files) or "input"
    prefix = "Dry run (nothing written): " if report.dry_run else ""
    run.log_line(
        f"{prefix}{label}: {totals['created']} created, {totals['updated']} updated, "
        f"{totals['unchanged']} unchanged, {totals['deleted']} deleted, "
        f"{report.error_count} error(s), {report.warning_count} warning(s)"
    )
    db.session.commit()
