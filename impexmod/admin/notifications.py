"""Advanced Importer > Notifications: the in-app notifications about runs."""

from __future__ import annotations

from flask import flash, redirect, url_for
from flask_admin import BaseView, expose
from flask_babel import ngettext

from impexmod.admin.auth import SecuredView
from impexmod.admin.forms import ConfirmForm
from impexmod.dispatch import notify
from impexmod.runs import history

LATEST = 50


class NotificationsView(SecuredView, BaseView):
    """The latest notifications, newest first, and a button that marks them all read."""

    @expose("/")
    def index(self):
        notifications = notify.latest(LATEST)
        return self.render(
            "impexmod/notifications.html",
            notifications=notifications,
            # tasks_of reads only ``task_id``, which notifications have like runs.
            task_names=history.tasks_of(notifications),
            unread=sum(1 for n in notifications if n.read_at is None),
            form=ConfirmForm(),
        )

    @expose("/read-all/", methods=["POST"])
    def read_all(self):
        form = ConfirmForm()
        # The CSRF token is checked for every panel POST (admin.init_app); this is the form.
        if form.validate_on_submit():
            marked = notify.mark_all_read()
            flash(
                ngettext(
                    "%(num)d notification marked as read.",
                    "%(num)d notifications marked as read.",
                    marked,
                ),
                "success",
            )
        return redirect(url_for(".index"))
