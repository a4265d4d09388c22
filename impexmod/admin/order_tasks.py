"""Advanced Importer > Order exporters and Inbound feeds: the orders channel's tasks, listed,
added, run now and removed (the CLI's `impexmod orders exporter|inbound` do the same)."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_babel import gettext as _

from impexmod.admin.auth import SecuredView
from impexmod.admin.forms import ConfirmForm
from impexmod.admin.i18n import say
from impexmod.dispatch import jobs
from impexmod.orders import exporter as order_exporters
from impexmod.orders import flags, inbound
from impexmod.runs import tasks


def _start(task) -> None:
    try:
        run = jobs.start_run(task, trigger="manual")
    except jobs.TaskBusy:
        flash(
            _("“%(name)s” is already running: wait for its run to end.", name=task.name), "warning"
        )
        return
    flash(_("Run %(id)s of “%(name)s” started.", id=run.id, name=task.name), "success")


def _field(name: str) -> str | None:
    return (request.form.get(name) or "").strip() or None


class OrderExportersView(SecuredView, BaseView):
    """The order exporters: the flag each serves, where, how it went."""

    @expose("/")
    def index(self):
        return self.render(
            "impexmod/order_exporters.html",
            exporters=[order_exporters.describe(t) for t in order_exporters.list_order_exporters()],
            defined=flags.defined(),
            form=ConfirmForm(),
        )

    @expose("/add/", methods=["POST"])
    def add(self):
        if ConfirmForm().validate_on_submit():
            pull = request.form.get("destination") == "pull"
            try:
                task = order_exporters.create_order_exporter(
                    request.form.get("name", ""),
                    request.form.get("flag", ""),
                    secret=None if pull else _field("secret"),
                    next_flags=request.form.getlist("next_flag"),
                    fmt=_field("format") or "xml",
                    destination="pull" if pull else "http",
                    url=None if pull else _field("url"),
                )
            except tasks.InvalidTask as exc:
                flash(f"{exc.field}: {say(exc)}", "error")
            else:
                flash(_("Order exporter “%(name)s” saved.", name=task.name), "success")
        return redirect(url_for(".index"))

    @expose("/<int:task_id>/run/", methods=["POST"])
    def run(self, task_id: int):
        if ConfirmForm().validate_on_submit():
            _start(_exporter(task_id))
        return redirect(url_for(".index"))

    @expose("/<int:task_id>/remove/", methods=["POST"])
    def remove(self, task_id: int):
        if ConfirmForm().validate_on_submit():
            task = _exporter(task_id)
            order_exporters.delete_order_exporter(task)
            flash(_("“%(name)s” removed.", name=task.name), "success")
        return redirect(url_for(".index"))


def _exporter(task_id: int):
    try:
        return order_exporters.get_order_exporter(task_id)
    except tasks.TaskNotFound:
        abort(404)


def _inbound(task_id: int):
    try:
        return inbound.get_inbound(task_id)
    except tasks.TaskNotFound:
        abort(404)


class InboundFeedsView(SecuredView, BaseView):
    """The inbound update feeds: their URLs, their queues, their latest errors."""

    @expose("/")
    def index(self):
        feeds = []
        for task in inbound.list_inbound():
            described = inbound.describe_inbound(task)
            described["errors"] = [
                inbound.describe_event(e) for e in inbound.events_of(task, "error", limit=10)
            ]
            feeds.append(described)
        return self.render("impexmod/inbound_feeds.html", feeds=feeds, form=ConfirmForm())

    @expose("/add/", methods=["POST"])
    def add(self):
        if ConfirmForm().validate_on_submit():
            try:
                task = inbound.create_inbound(request.form.get("name", ""), url=_field("url"))
            except tasks.InvalidTask as exc:
                flash(f"{exc.field}: {say(exc)}", "error")
            else:
                flash(_("Inbound feed “%(name)s” saved.", name=task.name), "success")
        return redirect(url_for(".index"))

    @expose("/<int:task_id>/run/", methods=["POST"])
    def run(self, task_id: int):
        if ConfirmForm().validate_on_submit():
            _start(_inbound(task_id))
        return redirect(url_for(".index"))

    @expose("/<int:task_id>/rotate/", methods=["POST"])
    def rotate(self, task_id: int):
        if ConfirmForm().validate_on_submit():
            task = _inbound(task_id)
            inbound.rotate(task)
            flash(
                _("New URL for “%(name)s”: the old one answers 404 now.", name=task.name), "success"
            )
        return redirect(url_for(".index"))
