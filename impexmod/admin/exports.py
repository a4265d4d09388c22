"""Advanced Importer > Manual export: one file now, downloaded at once or run in the background."""

from __future__ import annotations

from flask import current_app, flash, redirect, send_file, url_for
from flask_admin import BaseView, expose
from flask_babel import gettext as _

from impexmod.admin.auth import SecuredView
from impexmod.admin.formatting import format_number
from impexmod.admin.forms import ManualExportForm
from impexmod.admin.output_fields import output_context
from impexmod.export import manual as manual_export
from impexmod.runs import tasks


class ManualExportView(SecuredView, BaseView):
    """Choose entity, format, template and selection; get the file."""

    def _page(self, form: ManualExportForm, failed=None):
        runs, task_names = manual_export.recent_runs()
        return self.render(
            "impexmod/manual_export.html",
            form=form,
            failed=failed,
            runs=runs,
            task_names=task_names,
            limit=int(current_app.config["MANUAL_EXPORT_LIMIT"]),
            **output_context(),
        )

    @expose("/", methods=["GET", "POST"])
    def index(self):
        form = ManualExportForm()
        if not form.validate_on_submit():
            return self._page(form)
        try:
            started = manual_export.start(**form.output_arguments())
        except tasks.InvalidTask as exc:
            form.show_error(exc.field, exc.message)
            return self._page(form)
        if not started.immediate:
            flash(
                _(
                    "%(count)s entities: the export runs in the background. Its file can "
                    "be downloaded here when it ends.",
                    count=format_number(started.count),
                ),
                "info",
            )
            return redirect(url_for("runs.details", run_id=started.run.id))
        stored = started.file
        if stored is None:
            return self._page(form, failed=started.run)
        response = send_file(
            stored.open(),
            mimetype=stored.content_type,
            as_attachment=True,
            download_name=started.download_name,
            last_modified=stored.stored.modified,
        )
        response.content_length = stored.stored.size
        return response
