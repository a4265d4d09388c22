"""Recurring importers: tasks of kind ``import`` with the same runs, progress and history as
exporters. A run fetches its source (conditionally, or by catching up on an impexmod feed),
imports each file, and records counts per file and entity and its row errors."""

from __future__ import annotations

import time
from typing import Any

from flask import current_app
from sqlalchemy import delete

from impexmod.extensions import db
from impexmod.importing import cursor as catchup
from impexmod.importing import sources
from impexmod.importing.context import Options
from impexmod.importing.defaults import setting
from impexmod.importing.errors import ImportRefused
from impexmod.importing.native import normalise_source
from impexmod.importing.report import Report
from impexmod.importing.service import FORMATS, import_file
from impexmod.models import (
    ImportResult,
    ImportRowError,
    ImportSourceState,
    Run,
    RunStatus,
    Task,
    now,
)
from impexmod.tokens import new_nonce

MODES = ("create", "update", "delete", "disable")


class InvalidImporter(ValueError):
    """An importer definition that cannot be saved; ``field`` names the culprit."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_modes(text: str | list | tuple) -> tuple[str, ...]:
    """``create,update,delete`` -> a checked tuple of modes."""
    items = text.split(",") if isinstance(text, str) else list(text)
    modes = tuple(m.strip().lower() for m in items if m.strip())
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise InvalidImporter("mode", f"choose among {', '.join(MODES)} (comma-separated)")
    if "delete" in modes and "disable" in modes:
        raise InvalidImporter("mode", "delete and disable are mutually exclusive")
    return modes


def options_for(modes, **extra: Any) -> Options:
    """Import options from a list of modes and keyword settings."""
    modes = parse_modes(modes)
    return Options(
        create="create" in modes,
        update="update" in modes,
        delete="delete" in modes,
        disable="disable" in modes,
        **extra,
    )


def create_importer(
    name: str,
    url: str,
    entity: str | None = None,
    fmt: str | None = None,
    modes: str = "create,update",
    source: str | None = None,
    username: str | None = None,
    password: str | None = None,
    catch_up: bool = True,
    mapping: str | None = None,
    group: list[dict] | None = None,
) -> Task:
    """Save a recurring importer of ``url``."""
    if not name or not name.strip() or len(name) > 128:
        raise InvalidImporter("name", "a name of 1 to 128 characters is required")
    if not url.startswith(("http://", "https://")) and not url.startswith("/"):
        raise InvalidImporter("url", "an http(s) URL or an absolute file path")
    if fmt and fmt not in FORMATS:
        raise InvalidImporter("format", f"choose one of {', '.join(FORMATS)}")
    parse_modes(modes)
    task = Task(
        kind="import",
        name=name.strip(),
        entity=entity or "any",
        format=fmt or "auto",
        strategy="full",
        options={
            "url": url,
            "modes": modes,
            "source": normalise_source(source),
            "username": username,
            "password": password,
            "catch_up": catch_up,
            "mapping": mapping,
            # A data group's descriptors: [{"pattern", "entity", "format", "mapping"}].
            "group": group,
        },
        token_nonce=new_nonce(),
    )
    db.session.add(task)
    db.session.commit()
    return task


def describe_importer(task: Task) -> dict[str, Any]:
    """An importer as plain data, with its last run's counts."""
    from impexmod import tasks

    last = tasks.last_run(task)
    opts = task.options or {}
    return {
        "id": task.id,
        "kind": task.kind,
        "name": task.name,
        "url": opts.get("url"),
        "entity": task.entity,
        "format": task.format,
        "modes": opts.get("modes"),
        "source": opts.get("source"),
        "schedule": task.schedule,
        "next_run_at": task.next_run_at.isoformat() if task.next_run_at else None,
        "last_run": describe_import_run(last) if last else None,
    }


def describe_import_run(run: Run) -> dict[str, Any]:
    """A run of an importer, with its results per file and entity."""
    from impexmod import tasks

    out = tasks.describe_run(run) or {}
    results = db.session.query(ImportResult).filter_by(run_id=run.id).order_by(ImportResult.id)
    out["results"] = [
        {
            c: getattr(r, c)
            for c in (
                "file",
                "entity",
                "created",
                "updated",
                "unchanged",
                "deleted",
                "disabled",
                "skipped",
                "errors",
            )
        }
        for r in results
    ]
    out["error_rows"] = db.session.query(ImportRowError).filter_by(run_id=run.id).count()
    return out


# ------------------------------------------------------------------------------------ runs


def perform(run_id: int) -> Run:
    """Execute a queued import run to its end, recording success or failure on the run."""
    run = db.session.get(Run, run_id)
    if run is None:
        raise LookupError(f"run {run_id} does not exist")
    task = db.session.get(Task, run.task_id)
    run.status = RunStatus.RUNNING.value
    run.started_at = run.heartbeat_at = now()
    run.strategy = "import"
    run.log_line("Started")
    db.session.commit()
    started = time.monotonic()
    try:
        _import(run, task)
    except Exception as exc:  # a failed run is recorded, never raised into the worker loop
        db.session.rollback()
        current_app.logger.exception("import run %s of task %s failed", run.id, task.id)
        run = db.session.get(Run, run_id)
        run.status = RunStatus.FAILED.value
        run.error = f"{type(exc).__name__}: {exc}"[:2000]
        run.log_line(f"Failed: {run.error[:500]}")
    run.ended_at = now()
    run.duration = round(time.monotonic() - started, 3)
    run.log_line(f"Ended ({run.status}) in {run.duration:.2f} s")
    db.session.commit()
    return run


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


def _import(run: Run, task: Task) -> None:
    opts = task.options or {}
    url = opts["url"]
    options = options_for(
        opts.get("modes") or "create,update",
        source=opts.get("source"),
        entity=None if task.entity in (None, "any") else task.entity,
        mapping_name=opts.get("mapping"),
        group=opts.get("group"),
    )
    fmt = None if task.format in (None, "auto") else task.format
    totals = Report()
    refused: list[str] = []

    def progress(done: int, total: int) -> None:
        run.done, run.total, run.heartbeat_at = done, total, now()
        db.session.commit()

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
        if url.startswith("/"):
            one(sources.from_path(url))
        else:
            _fetch_and_import(run, task, url, opts, one)
    except ImportRefused as exc:  # the source itself failed: a clear message, no traceback
        refused.append(str(exc))
    if refused and not run.entity_count:
        run.status = RunStatus.FAILED.value
        run.error = "; ".join(refused)[:2000]
    else:
        run.status = RunStatus.SUCCEEDED.value
        if refused:
            run.warnings = list(run.warnings or []) + refused


def _fetch_and_import(run: Run, task: Task, url: str, opts: dict, one) -> None:
    state = _state(task, url)
    auth = (opts["username"], opts.get("password") or "") if opts.get("username") else None

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
    totals = report.totals()
    run.entity_count += totals["created"] + totals["updated"] + totals["unchanged"]
    run.deleted_count += totals["deleted"]
    label = ", ".join(report.files) or "input"
    run.log_line(
        f"{label}: {totals['created']} created, {totals['updated']} updated, "
        f"{totals['unchanged']} unchanged, {totals['deleted']} deleted, "
        f"{report.error_count} error(s), {report.warning_count} warning(s)"
    )
    db.session.commit()


def run_errors(run_id: int) -> list[ImportRowError]:
    """The row errors of an import run, in order."""
    return (
        db.session.query(ImportRowError).filter_by(run_id=run_id).order_by(ImportRowError.id).all()
    )


def forget_state(task: Task) -> None:
    """Drop what an importer remembers of its URL (the next run imports it whole again)."""
    db.session.execute(delete(ImportSourceState).where(ImportSourceState.task_id == task.id))
    db.session.commit()


__all__ = [
    "ImportRefused",
    "InvalidImporter",
    "MODES",
    "create_importer",
    "describe_importer",
    "options_for",
    "parse_modes",
    "perform",
    "run_errors",
]
