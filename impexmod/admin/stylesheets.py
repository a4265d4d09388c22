"""Advanced Importer > Stylesheets: the shipped XSLT stylesheets and the uploaded ones."""

from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_admin import BaseView, expose
from flask_babel import gettext as _

from impexmod.admin.auth import SecuredView
from impexmod.admin.forms import ConfirmForm, StylesheetForm
from impexmod.admin.i18n import say
from impexmod.admin.output_fields import is_shipped, list_stylesheets
from impexmod.export import stylesheets as services


def _uploaded(name: str) -> str:
    """The name of an uploaded stylesheet (404 for shipped or unknown ones)."""
    found = services.load_source(name)
    if found is None or found[0] != "uploaded":
        abort(404)
    return name


class StylesheetsView(SecuredView, BaseView):
    """XSLT stylesheets exporters may apply to the native XML."""

    def _page(self, form: StylesheetForm):
        sheets = list_stylesheets()
        return self.render(
            "impexmod/stylesheets.html",
            shipped=[s for s in sheets if is_shipped(s)],
            uploaded=[s for s in sheets if not is_shipped(s)],
            upload=form,
            form=ConfirmForm(),
        )

    @expose("/", methods=["GET", "POST"])
    def index(self):
        form = StylesheetForm()
        if form.validate_on_submit():
            name = (form.name.data or "").strip()
            # The service checks the name first: its errors then belong next to the name.
            bad_name = not services.NAME.fullmatch(name) or name in services.shipped_names()
            try:
                services.save_stylesheet(name, form.file.data.read(), bool(form.record_wise.data))
            except services.StylesheetError as exc:
                form.show_error("name" if bad_name else "file", exc.message)
            else:
                flash(_("Stylesheet “%(name)s” saved.", name=name), "success")
                return redirect(url_for(".index"))
        return self._page(form)

    @expose("/<sheet_name>/delete/", methods=["GET", "POST"])
    def delete(self, sheet_name: str):
        name = _uploaded(sheet_name)
        form = ConfirmForm()
        if form.validate_on_submit():
            try:
                services.delete_stylesheet(name)
            except services.StylesheetError as exc:
                message = say(exc.message)
                flash(message[:1].upper() + message[1:] + ".", "danger")
            else:
                flash(_("Stylesheet “%(name)s” deleted.", name=name), "success")
            return redirect(url_for(".index"))
        return self.render(
            "impexmod/confirm.html",
            form=form,
            title=_("Delete the stylesheet “%(name)s”?", name=name),
            message=_("Exporters that apply it can no longer run. This cannot be undone."),
            button=_("Delete"),
            style="danger",
        )
