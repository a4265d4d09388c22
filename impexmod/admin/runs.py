"""Advanced Importer > Runs: history, live progress, files and logs."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from flask import Response, abort, jsonify, request, send_file, url_for
from flask_admin import BaseView, expose
from flask_babel import gettext as _

from impexmod.admin.auth import SecuredView
from impexmod.admin.formatting import (
    human_duration,
    human_size,
    percent,
    shop_zone,
    status_label,
)
from impexmod.importing import errors_csv, outcomes
from impexmod.importing.outcomes import run_errors
from impexmod.models import Run, RunStatus, Task, TaskKind
from impexmod.runs import history, tasks


def _int_arg(name: str) -> int | None:
    try:
        return int(request.args.get(name, ""))
    except ValueError:
        return None


def _date_arg(name: str, label: str, notes: list[str]) -> date | None:
    """The YYYY-MM-DD date in query argument ``name``; a bad one is noted and ignored."""
    text = request.args.get(name, "").strip()
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        notes.append(
            _(
                "%(label)s date %(text)s ignored: write it as YYYY-MM-DD, e.g. 2026-11-22.",
                label=label,
                text=repr(text),
            )
        )
        return None


def _utc_midnight(day: date) -> datetime:
    """The start of ``day`` in the shop's timezone, as stored (naive UTC)."""
    start = datetime.combine(day, time(), tzinfo=shop_zone())
    return start.astimezone(UTC).replace(tzinfo=None)


def _import_run(run_id: int) -> tuple[Run, Task]:
    """A run of an importer or an upload, with its task; 404 for any other run."""
    run = history.get_run(run_id)
    task = tasks.get_task(run.task_id) if run is not None else None
    if task is None or task.kind not in TaskKind.importing():
        abort(404)
    return run, task


class RunsView(SecuredView, BaseView):
    """Every run, newest first, filterable by task, status and date."""

    @expose("/")
    def index(self):
        task_id = _int_arg("task")
        status = request.args.get("status") or None
        if status not in {s.value for s in RunStatus}:
            status = None
        notes: list[str] = []
        start = _date_arg("from", _("From"), notes)
        end = _date_arg("to", _("To"), notes)
        if start and end and start > end:
            notes.append(_("The From date is after the To date: no run can match."))
        runs = history.list_runs(
            task_id,
            status,
            before=_int_arg("before"),
            since=_utc_midnight(start) if start else None,
            # The To day is included: runs queued before the next day's midnight.
            until=_utc_midnight(end + timedelta(days=1)) if end else None,
        )
        older = runs[-1].id if len(runs) == history.PAGE else None
        return self.render(
            "impexmod/runs.html",
            runs=runs,
            task_names=history.tasks_of(runs),
            all_tasks=tasks.list_tasks(),
            task_id=task_id,
            status=status,
            date_from=start.isoformat() if start else "",
            date_to=end.isoformat() if end else "",
            notes=notes,
            statuses=[s.value for s in RunStatus],
            older=older,
        )

    @expose("/<int:run_id>/")
    def details(self, run_id: int):
        run = history.get_run(run_id)
        if run is None:
            abort(404)
        task = tasks.get_task(run.task_id)
        imported = None
        if task.kind in TaskKind.importing() and not history.is_active(run):
            imported = outcomes.outcome(run)
        return self.render(
            "impexmod/run.html",
            run=run,
            task=task,
            has_file=history.run_file(run) is not None,
            imported=imported,
            deliveries=history.deliveries_of([run.id]).get(run.id, []),
        )

    @expose("/<int:run_id>/errors.csv")
    def errors(self, run_id: int):
        """An import run's row errors and warnings, as a CSV download."""
        run, _ = _import_run(run_id)
        # With a BOM, as the CSV exports: spreadsheets then read the file as UTF-8.
        body = "\ufeff" + errors_csv(run_errors(run.id))
        return Response(
            body.encode("utf-8"),
            mimetype="text/csv",
            headers={"Content-Disposition": f"attachment; filename=run-{run.id}-errors.csv"},
        )

    @expose("/progress")
    def progress(self):
        """JSON polled by the runs page while some runs are active."""
        ids = [i for i in request.args.get("ids", "").split(",") if i.isdigit()]
        out = []
        for run in history.progress([int(i) for i in ids]):
            has_file = history.run_file(run) is not None
            out.append(
                {
                    "id": run.id,
                    "status": run.status,
                    "status_label": status_label(run.status),
                    "active": history.is_active(run),
                    "done": run.done or 0,
                    "total": run.total,
                    "percent": percent(run.done, run.total),
                    "entities": run.entity_count,
                    "size": human_size(run.bytes),
                    "duration": human_duration(run.duration),
                    "warnings": len(run.warnings or []),
                    "error": run.error or "",
                    "file_url": url_for(".file", run_id=run.id) if has_file else None,
                }
            )
        return jsonify(runs=out)

    @expose("/<int:run_id>/file")
    def file(self, run_id: int):
        """The file a run produced, as a download."""
        run = history.get_run(run_id)
        stored = history.run_file(run) if run is not None else None
        if stored is None:
            abort(404)
        try:
            stream = stored.open()
        except FileNotFoundError:  # removed by retention since it was looked up
            abort(404)
        response = send_file(
            stream,
            mimetype=stored.content_type,
            as_attachment=True,
            download_name=stored.name,
            last_modified=stored.stored.modified,
        )
        response.content_length = stored.stored.size
        return response
