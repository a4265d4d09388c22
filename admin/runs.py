"""Advanced Importer > Runs: history, live progress, files and logs."""

from __future__ import annotations

from flask import abort, jsonify, request, send_file, url_for
from flask_admin import BaseView, expose

from admin.auth import SecuredView
from admin.formatting import human_duration, human_size, percent
from impexmod import history, tasks
from impexmod.models import RunStatus


def _int_arg(name: str) -> int | None:
    try:
        return int(request.args.get(name, ""))
    except ValueError:
        return None


class RunsView(SecuredView, BaseView):
    """Every run, newest first, filterable by task and status."""

    @expose("/")
    def index(self):
        task_id = _int_arg("task")
        status = request.args.get("status") or None
        if status not in {s.value for s in RunStatus}:
            status = None
        runs = history.list_runs(task_id, status, before=_int_arg("before"))
        older = runs[-1].id if len(runs) == history.PAGE else None
        return self.render(
            "impexmod/runs.html",
            runs=runs,
            task_names=history.tasks_of(runs),
            all_tasks=tasks.list_tasks(),
            task_id=task_id,
            status=status,
            statuses=[s.value for s in RunStatus],
            older=older,
        )

    @expose("/<int:run_id>/")
    def details(self, run_id: int):
        run = history.get_run(run_id)
        if run is None:
            abort(404)
        task = tasks.get_task(run.task_id)
        return self.render(
            "impexmod/run.html", run=run, task=task, has_file=history.run_file(run) is not None
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
        return send_file(
            stored.path,
            mimetype=stored.content_type,
            as_attachment=True,
            download_name=stored.name,
            conditional=True,
        )
