"""Recurring importers: tasks of kind ``import`` with the same runs, progress and history as
exporters. A run fetches its source (conditionally, or by catching up on an impexmod feed),
imports each file, and records counts per file and entity, its row errors and, for a dry run,
its diffs. Files uploaded in the panel (tasks of kind ``upload``, impexmod.importing.manual) run
here too: a dry run first, then the real import of the same stored file."""

from __future__ import annotations

import secrets
import time
from typing import Any

from flask import current_app
from sqlalchemy import delete, select

from impexmod.dispatch.slots import next_slot
from impexmod.extensions import db
from impexmod.feeds.tokens import new_nonce
from impexmod.importing import cursor as catchup
from impexmod.importing import sources, uploads
from impexmod.importing.context import Options
from impexmod.importing.defaults import setting
from impexmod.importing.errors import ImportRefused
from impexmod.importing.report import ACTIONS, Report
from impexmod.importing.service import import_file
from impexmod.importing.validation import (
    ENTITIES,
    MODES,
    InvalidImporter,
    check_name,
    check_options,
    check_url,
    parse_modes,
)
from impexmod.models import (
    ImportDiff,
    ImportResult,
    ImportRowError,
    ImportSourceState,
    Run,
    RunStatus,
    Task,
    now,
)

# Run.strategy of an import run that wrote nothing (its Options had dry_run).
DRY_RUN = "dry run"
# A task of this kind imports a file uploaded in the panel (impexmod.importing.manual).
UPLOAD = "upload"


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


def _check_when(
    schedule: str | None,
    timezone: str | None,
    notify_emails: str | None,
    webhook_url: str | None,
) -> tuple[str, str]:
    """The schedule and timezone, checked with the notifications (tasks.InvalidTask)."""
    from impexmod.runs import tasks

    when = tasks.validate_schedule(schedule, timezone)
    tasks.validate_notifications(notify_emails, webhook_url)
    return when


def _apply_when(
    task: Task,
    when: tuple[str, str],
    notify_success: bool,
    notify_emails: str | None,
    webhook_url: str | None,
) -> None:
    task.schedule, task.timezone = when
    task.next_run_at = next_slot(task, now())
    task.notify_success = bool(notify_success)
    task.notify_emails = (notify_emails or "").strip() or None
    task.webhook_url = (webhook_url or "").strip() or None
    if task.webhook_url and not task.webhook_secret:
        task.webhook_secret = secrets.token_hex(32)


def create_importer(
    name: str,
    url: str,
    entity: str | None = None,
    fmt: str | None = None,
    modes: str | list = "create,update",
    source: str | None = None,
    username: str | None = None,
    password: str | None = None,
    catch_up: bool = True,
    mapping: str | None = None,
    group: list[dict] | None = None,
    *,
    schedule: str | None = None,
    timezone: str | None = None,
    notify_success: bool = False,
    notify_emails: str | None = None,
    webhook_url: str | None = None,
) -> Task:
    """Save a recurring importer of ``url``; nothing is saved when a field is refused
    (InvalidImporter, or tasks.InvalidTask for the schedule and notifications)."""
    name = check_name(name)
    url = check_url(url)
    chosen = check_options(entity, fmt, modes, source, mapping)
    when = _check_when(schedule, timezone, notify_emails, webhook_url)
    username = (username or "").strip() or None
    task = Task(
        kind="import",
        name=name,
        entity=chosen["entity"],
        format=chosen["format"],
        strategy="full",
        options={
            "url": url,
            "modes": chosen["modes"],
            "source": chosen["source"],
            "username": username,
            "password": (password or None) if username else None,
            "catch_up": catch_up,
            "mapping": chosen["mapping"],
            # A data group's descriptors: [{"pattern", "entity", "format", "mapping"}].
            "group": group,
        },
        token_nonce=new_nonce(),
    )
    _apply_when(task, when, notify_success, notify_emails, webhook_url)
    db.session.add(task)
    db.session.commit()
    return task


def update_importer(
    task: Task,
    name: str,
    url: str,
    entity: str | None = None,
    fmt: str | None = None,
    modes: str | list = "create,update",
    source: str | None = None,
    username: str | None = None,
    password: str | None = None,
    mapping: str | None = None,
    *,
    schedule: str | None = None,
    timezone: str | None = None,
    notify_success: bool = False,
    notify_emails: str | None = None,
    webhook_url: str | None = None,
) -> Task:
    """Validate and save an importer's new definition; nothing is saved when a field is refused.

    A blank ``password`` keeps the stored one (it is never shown back); a blank ``username``
    drops both. Changing what is imported or how (URL, entity, format, modes, source, mapping)
    makes the next run import the source whole, as if it had never seen it.
    """
    if task.kind != "import":
        raise InvalidImporter("kind", "only importers are edited with this form")
    name = check_name(name)
    url = check_url(url)
    chosen = check_options(entity, fmt, modes, source, mapping)
    when = _check_when(schedule, timezone, notify_emails, webhook_url)
    opts = dict(task.options or {})
    # What decides the input and how it is read: changed, the source is read whole again.
    shape = ("url", "modes", "source", "mapping")
    before = (task.entity, task.format, *(opts.get(k) for k in shape))
    username = (username or "").strip() or None
    stored = opts.get("password") if username else None
    opts.update(
        url=url,
        modes=chosen["modes"],
        source=chosen["source"],
        mapping=chosen["mapping"],
        username=username,
        password=(password or stored) if username else None,
    )
    task.name = name
    task.entity, task.format = chosen["entity"], chosen["format"]
    # A new dict: the JSON column is saved when it is replaced, not when it is changed in place.
    task.options = opts
    _apply_when(task, when, notify_success, notify_emails, webhook_url)
    if before != (task.entity, task.format, *(opts.get(k) for k in shape)):
        db.session.execute(delete(ImportSourceState).where(ImportSourceState.task_id == task.id))
    db.session.commit()
    return task


def importer_fields(task: Task) -> dict[str, Any]:
    """An importer's definition as ``update_importer`` takes it (the password left out)."""
    opts = task.options or {}
    return {
        "name": task.name,
        "url": opts.get("url") or "",
        "entity": task.entity,
        "fmt": task.format,
        "modes": opts.get("modes") or "create,update",
        "source": opts.get("source"),
        "username": opts.get("username"),
        "password": None,
        "mapping": opts.get("mapping"),
        "schedule": task.schedule or "none",
        "timezone": task.timezone,
        "notify_success": bool(task.notify_success),
        "notify_emails": task.notify_emails,
        "webhook_url": task.webhook_url,
    }


def describe_importer(task: Task) -> dict[str, Any]:
    """An importer as plain data, with its last run's counts (never its password)."""
    from impexmod.runs import tasks

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
        "mapping": opts.get("mapping"),
        "username": opts.get("username"),
        "has_password": bool(opts.get("password")),
        "schedule": task.schedule,
        "timezone": task.timezone,
        "next_run_at": task.next_run_at.isoformat() if task.next_run_at else None,
        "last_run": describe_import_run(last) if last else None,
    }


RESULT_COLUMNS = ("file", "entity", *ACTIONS)


def describe_import_run(run: Run) -> dict[str, Any]:
    """A run of an importer, with its results per file and entity."""
    from impexmod.runs import tasks

    out = tasks.describe_run(run) or {}
    results = db.session.query(ImportResult).filter_by(run_id=run.id).order_by(ImportResult.id)
    out["results"] = [{c: getattr(r, c) for c in RESULT_COLUMNS} for r in results]
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
    dry_run = bool((task.options or {}).get("dry_run"))
    run.strategy = DRY_RUN if dry_run else "import"
    run.log_line("Started a dry run: nothing will be written" if dry_run else "Started")
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
    with db.session.no_autoflush:
        recorded = db.session.execute(
            select(Run.status).where(Run.id == run_id).with_for_update()
        ).scalar()
    if recorded != RunStatus.RUNNING.value:
        # The sweeper took it for dead meanwhile (impexmod.runs.liveness): its verdict stands.
        db.session.rollback()
        current_app.logger.warning("import run %s was abandoned while it ran", run_id)
        return db.session.get(Run, run_id)
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
        if task.kind == UPLOAD:
            one(uploads.fetched(opts.get("upload"), opts.get("file_name") or "upload"))
        elif url.startswith("/"):
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


def run_errors(run_id: int, limit: int | None = None) -> list[ImportRowError]:
    """The row errors (and warnings) of an import run, in order; the first ``limit`` if given."""
    query = db.session.query(ImportRowError).filter_by(run_id=run_id).order_by(ImportRowError.id)
    return query.limit(limit).all() if limit is not None else query.all()


__all__ = [
    "DRY_RUN",
    "ENTITIES",
    "ImportRefused",
    "InvalidImporter",
    "MODES",
    "UPLOAD",
    "create_importer",
    "describe_import_run",
    "describe_importer",
    "importer_fields",
    "options_for",
    "parse_modes",
    "perform",
    "run_errors",
    "update_importer",
]
