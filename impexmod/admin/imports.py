"""Advanced Importer > Import a file: upload, dry-run preview, then the real import (or cancel)."""

from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_admin import BaseView, expose
from flask_babel import gettext as _

from impexmod.admin.auth import SecuredView
from impexmod.admin.forms import ConfirmForm
from impexmod.admin.import_forms import UploadForm
from impexmod.importing import manual as manual_import
from impexmod.importing import outcomes
from impexmod.importing.defaults import setting
from impexmod.importing.definition import InvalidImporter
from impexmod.models import RunStatus, Task


def _upload(task_id: int) -> Task:
    """The upload of this id; 404 for anything else (a tampered or unknown id included)."""
    task = manual_import.get(task_id)
    if task is None:
        abort(404)
    return task


def _ended(run) -> bool:
    return run is not None and run.status not in RunStatus.active()


class ManualImportView(SecuredView, BaseView):
    """Upload a file, see what importing it would change, then import it."""

    def _page(self, form: UploadForm):
        runs, task_names = manual_import.recent_runs()
        return self.render(
            "impexmod/manual_import.html",
            form=form,
            runs=runs,
            task_names=task_names,
            max_bytes=int(setting("IMPORT_MAX_BYTES")),
        )

    @expose("/", methods=["GET", "POST"])
    def index(self):
        form = UploadForm()
        if not form.validate_on_submit():
            return self._page(form)
        upload = form.file.data
        try:
            started = manual_import.start(upload.stream, upload.filename, **form.import_arguments())
        except InvalidImporter as exc:
            form.show_error(exc.field, exc.message)
            return self._page(form)
        return redirect(url_for(".preview", task_id=started.task.id))

    @expose("/<int:task_id>/")
    def preview(self, task_id: int):
        current = manual_import.state(_upload(task_id))
        return self.render(
            "impexmod/import_preview.html",
            upload=current,
            preview=outcomes.outcome(current.preview) if _ended(current.preview) else None,
            result=outcomes.outcome(current.run) if _ended(current.run) else None,
            form=ConfirmForm(),
        )

    @expose("/<int:task_id>/run/", methods=["POST"])
    def run(self, task_id: int):
        task = _upload(task_id)
        try:
            manual_import.confirm(task)
        except manual_import.UploadNotReady as exc:
            flash(_("Not imported: %(reason)s.", reason=exc), "warning")
        return redirect(url_for(".preview", task_id=task_id))

    @expose("/<int:task_id>/cancel/", methods=["POST"])
    def cancel(self, task_id: int):
        task = _upload(task_id)
        name = (task.options or {}).get("file_name") or _("the file")
        try:
            manual_import.cancel(task)
        except manual_import.UploadNotReady as exc:
            flash(_("Not cancelled: %(reason)s.", reason=exc), "warning")
            return redirect(url_for(".preview", task_id=task_id))
        flash(
            _("Import of “%(name)s” cancelled: the uploaded file was deleted.", name=name), "info"
        )
        return redirect(url_for(".index"))
