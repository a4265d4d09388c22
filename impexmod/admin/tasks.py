"""Advanced Importer > Recurring tasks: list, add, edit, run, rotate, delete, preview."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, flash, jsonify, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_babel import gettext as _

from impexmod.admin import destinations as destination_forms
from impexmod.admin.auth import SecuredView
from impexmod.admin.formatting import slot_label
from impexmod.admin.forms import ConfirmForm, ExporterForm
from impexmod.admin.i18n import say
from impexmod.admin.import_forms import ImporterForm
from impexmod.admin.output_fields import output_context
from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.export import destinations
from impexmod.export.preview import PreviewError, preview_feed
from impexmod.importing import definition as importers
from impexmod.models import Task, TaskKind
from impexmod.runs import tasks
from impexmod.runs.schedule import InvalidSchedule, parse_schedule, parse_timezone, upcoming
from impexmod.runs.slots import default_timezone
from impexmod.runs.tokens import feed_url

PREVIEW_ENTITIES = 10
UPCOMING = 3


def _task(task_id: int) -> Task:
    try:
        return tasks.get_task(task_id)
    except tasks.TaskNotFound:
        abort(404)


def _recurring(task_id: int) -> Task:
    """An exporter or importer (one-off manual exports and uploads have pages of their own)."""
    task = _task(task_id)
    if task.kind not in TaskKind.recurring():
        abort(404)
    return task


def _exporter(task_id: int) -> Task:
    task = _task(task_id)
    if task.kind != TaskKind.EXPORT:
        abort(404)
    return task


class RecurringTasksView(SecuredView, BaseView):
    """Every exporter and importer, with what each did last and will do next."""

    @expose("/")
    def index(self):
        rows = [(task, tasks.last_run(task)) for task in tasks.list_tasks()]
        return self.render("impexmod/tasks.html", rows=rows, form=ConfirmForm())

    @expose("/new/", methods=["GET", "POST"])
    def create(self):
        return self._exporter_page(None)

    def _exporter_page(self, task: Task | None):
        """The exporter form with its destinations: save, add a destination, or test one."""
        form = ExporterForm(obj=task) if task is not None else ExporterForm()
        if request.method != "POST":
            return self._exporter_form(form, task, destination_forms.blocks_of(task))
        blocks = destination_forms.blocks_from(request.form, task)
        specs = destination_forms.specs_from(request.form, blocks)
        saved = {d.id: d for d in tasks.destinations_of(task)} if task is not None else {}
        adding = request.form.get("add_destination")
        testing = request.form.get("test_destination")
        # Nothing saved: the form comes back with what was typed (CSRF is checked for every
        # panel POST, impexmod.admin.init_app).
        if adding or testing:
            if adding:
                block = destination_forms.new_block(adding, len(blocks))
                blocks += [block] if block else []
            elif testing.isdigit() and int(testing) < len(blocks):
                chosen = blocks[int(testing)]
                destination_forms.try_block(chosen, specs[int(testing)], saved.get(chosen.id))
            return self._exporter_form(form, task, blocks)
        if form.validate_on_submit():
            try:
                for spec in specs:  # all or nothing: checked before the exporter is saved
                    destinations.check(spec, saved.get(spec.id))
            except tasks.InvalidTask as exc:
                return self._exporter_form(form, task, blocks, say(exc.message))
            try:
                if task is None:
                    task = created = exporters.create_exporter(**form.service_arguments())
                else:
                    created = None
                    exporters.update_exporter(task, **form.service_arguments())
                destinations.set_destinations(task, specs)
            except tasks.InvalidTask as exc:
                form.show_error(exc.field, exc.message)
            else:
                if created is not None:
                    return redirect(url_for(".saved", task_id=task.id))
                flash(_("Exporter “%(name)s” saved.", name=task.name), "success")
                return redirect(url_for(".index"))
        return self._exporter_form(form, task, blocks)

    def _exporter_form(self, form, task, blocks, destination_error=None):
        return self.render(
            "impexmod/exporter_form.html",
            form=form,
            task=task,
            destinations=blocks,
            destination_error=destination_error,
            kinds=destination_forms.KIND_LABELS,
            setting_labels=destination_forms.SETTING_LABELS,
            secrets=destinations.SECRETS,
            flags=destinations.FLAGS,
            long_settings=destinations.LONG,
            **output_context(),
        )

    @expose("/<int:task_id>/saved/")
    def saved(self, task_id: int):
        task = _exporter(task_id)
        rotated = request.args.get("rotated") == "1"
        return self.render(
            "impexmod/saved.html",
            task=task,
            url=feed_url(task),
            rotated=rotated,
            has_run=tasks.last_run(task) is not None,
            form=ConfirmForm(),
        )

    @expose("/importers/new/", methods=["GET", "POST"])
    def create_importer(self):
        form = ImporterForm()
        if form.validate_on_submit():
            try:
                task = importers.create_importer(**form.service_arguments())
            except (importers.InvalidImporter, tasks.InvalidTask) as exc:
                form.show_error(exc.field, exc.message)
            else:
                flash(
                    _("Importer “%(name)s” saved: Run now imports its URL once.", name=task.name),
                    "success",
                )
                return redirect(url_for(".index"))
        return self.render("impexmod/importer_form.html", form=form, task=None, has_password=False)

    def _edit_importer(self, task: Task):
        if request.method == "POST":
            form = ImporterForm()
        else:
            form = ImporterForm.of(importers.importer_fields(task))
        form.kept_path = (task.options or {}).get("url")
        if form.validate_on_submit():
            try:
                importers.update_importer(task, **form.service_arguments())
            except (importers.InvalidImporter, tasks.InvalidTask) as exc:
                form.show_error(exc.field, exc.message)
            else:
                flash(_("Importer “%(name)s” saved.", name=task.name), "success")
                return redirect(url_for(".index"))
        has_password = bool(importers.stored_password(task))
        return self.render(
            "impexmod/importer_form.html", form=form, task=task, has_password=has_password
        )

    @expose("/<int:task_id>/edit/", methods=["GET", "POST"])
    def edit(self, task_id: int):
        task = _recurring(task_id)
        if task.kind == TaskKind.IMPORT:
            return self._edit_importer(task)
        return self._exporter_page(_exporter(task_id))

    @expose("/<int:task_id>/run/", methods=["POST"])
    def run(self, task_id: int):
        task = _recurring(task_id)
        try:
            run = jobs.start_run(task, trigger="manual")
        except jobs.TaskBusy:
            flash(
                _("“%(name)s” is already running: wait for its run to end.", name=task.name),
                "warning",
            )
            return redirect(url_for("runs.index", task=task.id))
        flash(_("Run %(id)s of “%(name)s” started.", id=run.id, name=task.name), "success")
        return redirect(url_for("runs.index", task=task.id))

    @expose("/<int:task_id>/rotate/", methods=["GET", "POST"])
    def rotate(self, task_id: int):
        task = _exporter(task_id)
        form = ConfirmForm()
        if form.validate_on_submit():
            tasks.rotate_token(task)
            return redirect(url_for(".saved", task_id=task.id, rotated=1))
        return self.render(
            "impexmod/confirm.html",
            form=form,
            title=_("Rotate the feed URL of “%(name)s”?", name=task.name),
            message=_(
                "The current URL stops working at once (it answers 404). Partners polling it "
                "must be given the new URL, shown on the next page."
            ),
            button=_("Rotate the feed URL"),
            style="warning",
        )

    @expose("/<int:task_id>/delete/", methods=["GET", "POST"])
    def delete(self, task_id: int):
        task = _recurring(task_id)
        form = ConfirmForm()
        if form.validate_on_submit():
            name = task.name
            tasks.delete_task(task)
            flash(_("“%(name)s” deleted, with its runs and files.", name=name), "success")
            return redirect(url_for(".index"))
        if task.kind == TaskKind.IMPORT:
            message = _(
                "Its run history, results and row errors are deleted too; what it imported "
                "stays in the catalog. This cannot be undone."
            )
        else:
            message = _(
                "Its run history and stored files are deleted too, and its feed URL stops "
                "working. This cannot be undone."
            )
        return self.render(
            "impexmod/confirm.html",
            form=form,
            title=_("Delete “%(name)s”?", name=task.name),
            message=message,
            button=_("Delete"),
            style="danger",
        )

    @expose("/<int:task_id>/preview/")
    def preview(self, task_id: int):
        task = _exporter(task_id)
        error = None
        try:
            feed = preview_feed(task, PREVIEW_ENTITIES)
        except PreviewError as exc:
            feed, error = None, say(exc)
        return self.render("impexmod/preview.html", task=task, feed=feed, error=error)

    @expose("/upcoming")
    def upcoming(self):
        """JSON: the next run times of a schedule and timezone, shown on the form before saving."""
        zone_name = (request.args.get("timezone") or "").strip() or default_timezone()
        try:
            schedule = parse_schedule(request.args.get("schedule"))
            zone = parse_timezone(zone_name)
        except InvalidSchedule as exc:
            return jsonify(error=say(exc)), 400
        slots = upcoming(schedule, zone, datetime.now(UTC), UPCOMING)
        return jsonify(
            schedule=schedule.text,
            timezone=zone_name,
            times=[slot.isoformat() for slot in slots],
            labels=[slot_label(slot) for slot in slots],
        )
