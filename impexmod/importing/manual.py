"""Manual imports from the panel: one uploaded file, previewed by a dry run, then imported.

An upload is a Task of kind ``upload`` whose options name the stored file
(``impexmod.importing.uploads``) and how to import it. Its first run is a dry run: nothing is
written, and its counts, diffs and row errors are kept with the run. "Run the import" starts a
second run of the same stored file with the same options. Both go through the ordinary run
machinery (``lifecycle.start``): a file under ``MANUAL_IMPORT_WAIT_BYTES`` runs while the
merchant waits, a larger one in the background with the run page's live progress. Uploads
have no schedule, are not recurring tasks, and are deleted with their files once older than
``RETENTION_DAYS`` (when the next upload starts, and by the daily retention pass).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from flask import current_app

from impexmod.extensions import db
from impexmod.importing import uploads
from impexmod.importing.validation import check_options
from impexmod.models import Run, RunStatus, Task, TaskKind
from impexmod.runs import history, lifecycle, tasks
from impexmod.runs.tokens import new_nonce

KIND = TaskKind.UPLOAD
# With RQ workers, how long the request waits for a small file's run before showing its page.
WAIT_SECONDS = 60


class UploadNotReady(RuntimeError):
    """The upload cannot do that now (its run is going, it was imported, its file refused)."""


@dataclass
class ManualImport:
    """An upload, its dry run and, once asked for, its real import."""

    task: Task
    preview: Run | None
    run: Run | None

    @property
    def options(self) -> dict:
        """What the task was told: file, modes, source, mapping."""
        return self.task.options or {}

    @property
    def file_name(self) -> str:
        """The merchant's name for the file."""
        return self.options.get("file_name") or "upload"

    @property
    def size(self) -> int:
        """The stored file's size in bytes."""
        return int(self.options.get("bytes") or 0)

    @property
    def stage(self) -> str:
        """previewing, previewed, refused (the dry run failed), importing, imported or failed."""
        if self.run is not None:
            if self.run.status in RunStatus.active():
                return "importing"
            return "imported" if self.run.status == RunStatus.SUCCEEDED.value else "failed"
        if self.preview is None or self.preview.status in RunStatus.active():
            return "previewing"
        return "previewed" if self.preview.status == RunStatus.SUCCEEDED.value else "refused"

    @property
    def can_import(self) -> bool:
        """Whether "Run the import" may start the real import."""
        return self.stage == "previewed"

    @property
    def can_cancel(self) -> bool:
        """Whether the upload may be dropped (nothing running, nothing imported yet)."""
        return self.stage in ("previewed", "refused")


def _start(task: Task) -> Run:
    """Start a run of the upload: while the request waits for a small file, else behind it."""
    small = int((task.options or {}).get("bytes") or 0) < int(
        current_app.config["MANUAL_IMPORT_WAIT_BYTES"]
    )
    # A small file is worth waiting for (run here, or by a worker through RQ).
    return lifecycle.start(task, trigger="manual", wait_seconds=WAIT_SECONDS if small else None)


def _remember(task: Task, **values) -> None:
    # A new dict: the JSON column is saved when it is replaced, not when changed in place.
    task.options = {**(task.options or {}), **values}
    db.session.commit()


def start(
    stream: BinaryIO,
    filename: str | None,
    entity: str | None = None,
    fmt: str | None = None,
    modes: str | list = "create,update",
    source: str | None = None,
    mapping: str | None = None,
) -> ManualImport:
    """Store an uploaded file and start its dry run; InvalidImporter names a refused field
    (the file's type or size included), and nothing is kept then."""
    chosen = check_options(entity, fmt, modes, source, mapping)
    purge_expired()
    stored = uploads.store(stream, filename)
    task = Task(
        kind=KIND,
        name=f"Import of {stored.name}"[:128],
        entity=chosen["entity"],
        format=chosen["format"],
        strategy="full",
        token_nonce=new_nonce(),
        schedule="none",
        next_run_at=None,
        options={
            "upload": stored.key,
            "file_name": stored.name,
            "bytes": stored.size,
            "sha256": stored.sha256,
            "modes": chosen["modes"],
            "source": chosen["source"],
            "mapping": chosen["mapping"],
            "dry_run": True,
        },
    )
    db.session.add(task)
    db.session.commit()
    _start(task)
    return state(task)


def get(task_id: int) -> Task | None:
    """The upload with this id (None for any other task, or none)."""
    task = db.session.get(Task, task_id)
    return task if task is not None and task.kind == KIND else None


def state(task: Task) -> ManualImport:
    """An upload with its runs, as they are now: the first is its dry run, the second (once
    asked for) its import. Nothing is written after a run starts: on SQLite a dry run holds
    the write lock to its end."""
    runs = db.session.query(Run).filter(Run.task_id == task.id).order_by(Run.id).limit(2).all()
    return ManualImport(task, runs[0] if runs else None, runs[1] if len(runs) > 1 else None)


def confirm(task: Task) -> ManualImport:
    """Start the real import of a previewed upload, same file and options; UploadNotReady if
    its dry run has not succeeded or it was imported already."""
    current = state(task)
    if not current.can_import:
        raise UploadNotReady(
            {
                "previewing": "the dry run has not ended yet",
                "refused": "the dry run refused the file: upload a corrected one",
                "importing": "the import is already running",
                "imported": "this file was imported already",
                "failed": "this file's import has run already; upload it again to retry",
            }[current.stage]
        )
    _remember(task, dry_run=False)
    try:
        _start(task)
    except lifecycle.TaskBusy:
        # The dry run is releasing the task, or another request started the import.
        raise UploadNotReady("a run of this file is still going: try again in a moment") from None
    return state(task)


def cancel(task: Task) -> None:
    """Drop an upload that was not imported: its stored file, its task and its dry run."""
    if not state(task).can_cancel:
        raise UploadNotReady("it cannot be cancelled while it runs, nor once it was imported")
    delete(task)


def delete(task: Task) -> None:
    """Delete an upload with its stored file and runs."""
    uploads.remove((task.options or {}).get("upload"))
    tasks.delete_task(task)


def purge_expired(days: int | None = None, moment: datetime | None = None) -> int:
    """Delete the uploads older than ``days`` (RETENTION_DAYS), stored files included."""
    expired = history.expired_tasks(KIND, days, moment)
    for task in expired:
        delete(task)
    return len(expired)


def recent_runs(limit: int = 10) -> tuple[list[Run], dict[int, Task]]:
    """The latest runs of uploads, newest first, with their tasks by id."""
    return history.recent_runs_of(KIND, limit)
