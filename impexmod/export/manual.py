"""Manual exports from the panel: one file, now.

A manual export is a Task of kind ``manual`` run once through the ordinary run machinery
(``lifecycle.start``), so it streams, records its progress and keeps its file like any run. A
selection of fewer than ``MANUAL_EXPORT_LIMIT`` entities runs while the merchant waits and is
downloaded at once; a larger one runs in the background and the run page follows it. Manual
tasks have no schedule (the scheduler never starts them) and are not listed among recurring
tasks; they are deleted, with their files, once older than ``RETENTION_DAYS``.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from impexmod import entities
from impexmod.export import definition as exporters
from impexmod.export import reader
from impexmod.export.output import output_ext
from impexmod.export.selection import Selection
from impexmod.extensions import db
from impexmod.models import Run, RunStatus, Task, TaskKind
from impexmod.runs import history, lifecycle, tasks
from impexmod.runs.tokens import new_nonce

KIND = TaskKind.MANUAL
# With RQ workers, how long the request waits for a small export before showing its run page.
WAIT_SECONDS = 60


@dataclass
class ManualExport:
    """A started manual export: its task, its run and how many entities it selected."""

    task: Task
    run: Run
    count: int
    immediate: bool  # run while the request waited (the file can be sent in the response)

    @property
    def succeeded(self) -> bool:
        """Whether the run has ended with a file."""
        return self.run.status == RunStatus.SUCCEEDED.value

    @property
    def file(self) -> history.RunFile | None:
        """The produced file, once the run has succeeded."""
        return history.run_file(self.run) if self.succeeded else None

    @property
    def download_name(self) -> str:
        """A file name that says what it holds: ``products-20260314-0930.csv``."""
        stamp = (self.run.started_at or self.run.queued_at).strftime("%Y%m%d-%H%M")
        return f"{self.task.entity}-{stamp}.{output_ext(self.task)}"


def count_selected(entity: str, selection: Selection) -> int:
    """How many entities of ``entity`` the selection lists."""
    descriptor = entities.resolve(entity)
    with db.engine.connect() as conn:
        return reader.count_all(conn, descriptor, selection)


def _name(entity: str, chosen: dict) -> str:
    shape = chosen["format"]
    if chosen.get("template"):
        shape = f"template {chosen['template']}"
    if chosen.get("stylesheet"):
        shape = f"stylesheet {chosen['stylesheet']}"
    return f"Manual export: {entity} as {shape}"[:128]


def start(
    entity: str,
    fmt: str | None = None,
    options: dict | None = None,
    template: str | None = None,
    stylesheet: str | None = None,
    filters: list[dict] | None = None,
    filter_match: str | None = "all",
) -> ManualExport:
    """Validate and start a manual export; raise tasks.InvalidTask naming the bad field."""
    chosen = exporters.validate_exporter(
        "Manual export",
        entity,
        fmt,
        "full",
        options=options,
        template=template,
        stylesheet=stylesheet,
        filters=filters,
        filter_match=filter_match,
    )
    purge_expired()
    count = count_selected(entity, Selection(chosen["filters"] or [], chosen["filter_match"]))
    task = Task(
        kind=KIND,
        name=_name(entity, chosen),
        entity=entity,
        strategy="full",
        token_nonce=new_nonce(),
        schedule="none",
        next_run_at=None,
        **chosen,
    )
    db.session.add(task)
    db.session.commit()
    small = count < int(current_app.config["MANUAL_EXPORT_LIMIT"])
    # A small export is worth waiting for (run here, or by a worker through RQ).
    run = lifecycle.start(task, trigger="manual", wait_seconds=WAIT_SECONDS if small else None)
    return ManualExport(task, run, count, immediate=small and run.status not in RunStatus.active())


def purge_expired(days: int | None = None) -> int:
    """Delete the manual exports older than ``days`` (RETENTION_DAYS), files included."""
    expired = history.expired_tasks(KIND, days)
    for task in expired:
        tasks.delete_task(task)
    return len(expired)


def recent_runs(limit: int = 10) -> tuple[list[Run], dict[int, Task]]:
    """The latest manual export runs, newest first, with their tasks by id."""
    return history.recent_runs_of(KIND, limit)
