"""Advanced Importer > Field templates: list, create, edit, delete, download and import."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, abort, flash, redirect, url_for
from flask_admin import BaseView, expose
from flask_babel import gettext as _

from impexmod.admin.auth import SecuredView
from impexmod.admin.forms import ConfirmForm, FieldTemplateForm, TemplateImportForm
from impexmod.admin.i18n import say
from impexmod.export import field_templates as services
from impexmod.export import mapping
from impexmod.models import FieldTemplate

# A column as the JSON textarea starts for a new template.
EXAMPLE_COLUMNS = [
    {"header": "SKU", "source": "reference"},
    {"header": "Price", "source": "price", "transforms": [{"op": "price", "decimals": 2}]},
]


def _quote(text: Any) -> str:
    return f"“{text}”"


def _source(column: dict) -> str:
    if "source" in column:
        return str(column["source"])
    if "value" in column:
        return _("%(value)s (constant)", value=_quote(column["value"]))
    if isinstance(column.get("concat"), list):
        parts = []
        for item in column["concat"]:
            if isinstance(item, dict) and "field" in item:
                parts.append(str(item["field"]))
            elif isinstance(item, dict) and "text" in item:
                parts.append(_quote(item["text"]))
            else:
                parts.append(str(item))
        return " + ".join(parts)
    return ""


def _transform(step: Any) -> str:
    if not isinstance(step, dict):
        return str(step)
    params = ", ".join(
        f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in step.items() if k != "op"
    )
    return f"{step.get('op', '?')}({params})" if params else str(step.get("op", "?"))


def column_rows(columns: Any) -> list[dict[str, Any]]:
    """A mapping's columns as the preview table reads them: header, source, transforms."""
    if not isinstance(columns, list):
        return []
    rows = []
    for column in columns:
        if not isinstance(column, dict):
            continue
        steps = column.get("transforms") if isinstance(column.get("transforms"), list) else []
        rows.append(
            {
                "header": column.get("header", ""),
                "source": _source(column),
                "transforms": [_transform(s) for s in steps],
            }
        )
    return rows


def _template(name: str) -> FieldTemplate:
    try:
        return services.get_template(name)
    except services.TemplateNotFound:
        abort(404)


def _import_error(form: TemplateImportForm, message: str) -> None:
    form.file.errors = [*form.file.errors, message[:1].upper() + message[1:]]


class FieldTemplatesView(SecuredView, BaseView):
    """Saved field mappings, reusable by any flat exporter."""

    def _form_page(self, form: FieldTemplateForm, template: FieldTemplate | None):
        return self.render(
            "impexmod/field_template_form.html",
            form=form,
            saved=template,
            rows=column_rows(form.columns.data),
        )

    def _list_page(self, import_form: TemplateImportForm):
        templates = [(t, services.describe(t)) for t in services.list_templates()]
        return self.render(
            "impexmod/field_templates.html",
            templates=templates,
            import_form=import_form,
            form=ConfirmForm(),
        )

    @expose("/")
    def index(self):
        return self._list_page(TemplateImportForm())

    @expose("/new/", methods=["GET", "POST"])
    def create(self):
        form = FieldTemplateForm(
            entities_allowed=mapping.mappable_entities(), data={"columns": EXAMPLE_COLUMNS}
        )
        if form.validate_on_submit():
            try:
                template = services.create_template(
                    form.name.data or "",
                    form.entity.data or "",
                    form.columns.data,
                    form.description.data,
                )
            except services.InvalidTemplate as exc:
                form.show_error(exc.field, exc.message)
            else:
                flash(_("Field template “%(name)s” saved.", name=template.name), "success")
                return redirect(url_for(".index"))
        return self._form_page(form, None)

    @expose("/<template_name>/edit/", methods=["GET", "POST"])
    def edit(self, template_name: str):
        template = _template(template_name)
        form = FieldTemplateForm(obj=template, entities_allowed=mapping.mappable_entities())
        if form.validate_on_submit():
            try:
                services.update_template(
                    template.name,
                    columns=form.columns.data,
                    entity=form.entity.data or "",
                    description=form.description.data or "",
                )
            except services.InvalidTemplate as exc:
                form.show_error(exc.field, exc.message)
            except services.TemplateInUse as exc:
                form.show_error("entity", say(exc))
            else:
                flash(_("Field template “%(name)s” saved.", name=template.name), "success")
                return redirect(url_for(".index"))
        # The name is the key exporters use: it is shown, not edited.
        form.name.data = template.name
        return self._form_page(form, template)

    @expose("/<template_name>/download")
    def download(self, template_name: str):
        """The template as a JSON file, to keep or to import in another shop."""
        try:
            document = services.export_template(template_name)
        except services.TemplateNotFound:
            abort(404)
        return Response(
            services.dumps(document),
            mimetype="application/json",
            headers={"Content-Disposition": f'attachment; filename="{document["name"]}.json"'},
        )

    @expose("/import/", methods=["POST"])
    def import_file(self):
        form = TemplateImportForm()
        if not form.validate_on_submit():
            return self._list_page(form)
        data = form.file.data.read()
        replace = bool(form.replace.data)
        try:
            document = services.parse_document(data)
            name = str(document["name"]).strip()
            if not replace and _exists(name):
                raise services.InvalidTemplate(
                    "name",
                    _(
                        "a template named %(name)s already exists: tick “Replace” to update it",
                        name=repr(name),
                    ),
                )
            template = services.import_template(document, replace=replace)
        except (services.InvalidTemplate, services.TemplateInUse) as exc:
            _import_error(form, say(getattr(exc, "message", exc)))
            return self._list_page(form)
        flash(_("Field template “%(name)s” imported.", name=template.name), "success")
        return redirect(url_for(".index"))

    @expose("/<template_name>/delete/", methods=["GET", "POST"])
    def delete(self, template_name: str):
        template = _template(template_name)
        form = ConfirmForm()
        if form.validate_on_submit():
            try:
                services.delete_template(template.name)
            except services.TemplateInUse as exc:
                message = say(exc)
                flash(message[:1].upper() + message[1:] + ".", "danger")
            else:
                flash(_("Field template “%(name)s” deleted.", name=template_name), "success")
            return redirect(url_for(".index"))
        return self.render(
            "impexmod/confirm.html",
            form=form,
            title=_("Delete the field template “%(name)s”?", name=template.name),
            message=_("Download it first if you may want it back. This cannot be undone."),
            button=_("Delete"),
            style="danger",
        )


def _exists(name: str) -> bool:
    try:
        services.get_template(name)
    except services.TemplateNotFound:
        return False
    return True
