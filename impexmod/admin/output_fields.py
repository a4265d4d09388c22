"""Form fields and choices for what an export writes: format, template, stylesheet, options and
selection, as the exporter form and the manual export show them."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import gettext as _
from wtforms import TextAreaField
from wtforms.fields.choices import SelectChoice

from impexmod.admin.i18n import lazy_gettext as _l
from impexmod.admin.i18n import say
from impexmod.export import selection, stylesheets, writers
from impexmod.export.platforms import TEMPLATES

FORMAT_LABELS = {
    "xml": _l("XML (native Advanced Importer feed)"),
    "csv": _l("CSV (spreadsheet)"),
    "xlsx": _l("XLSX (Excel workbook)"),
    "json": _l("JSON (one document)"),
    "jsonl": _l("JSON Lines (one object per line)"),
}
AUTOMATIC = ("", _l("Automatic: XML, or the format of the template or stylesheet"))
PREDEFINED = _l("Predefined templates")
MAX_LINES = 200  # filters in one selection


class OptionsField(TextAreaField):
    """Format options, one ``KEY=VALUE`` per line; ``data`` is a dict."""

    def _value(self) -> str:
        if self.raw_data:
            return self.raw_data[0]
        return "\n".join(f"{k}={v}" for k, v in (self.data or {}).items())

    def process_formdata(self, valuelist) -> None:
        self.data = {}
        if not valuelist:
            return
        lines = [ln.strip() for ln in valuelist[0].splitlines()]
        for number, line in enumerate(lines, 1):
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise ValueError(
                    _(
                        "Line %(number)d: “%(line)s” is not KEY=VALUE (e.g. separator=tab)",
                        number=number,
                        line=line,
                    )
                )
            self.data[key.strip()] = value.strip()

    def process_data(self, value) -> None:
        self.data = dict(value or {})


def filter_text(item: dict) -> str:
    """A saved filter in the syntax it is typed in (``price >= 10``, ``reference in A1,A2``)."""
    # A one-filter selection reads back as exactly that filter, quoted where it must be.
    return selection.Selection([item]).describe()


class FiltersField(TextAreaField):
    """The selection, one filter per line in the CLI syntax; ``data`` is a list of filters."""

    def _value(self) -> str:
        if self.raw_data:
            return self.raw_data[0]
        return "\n".join(filter_text(f) for f in (self.data or []))

    def process_formdata(self, valuelist) -> None:
        self.data = []
        if not valuelist:
            return
        lines = [ln.strip() for ln in valuelist[0].splitlines()]
        if len([ln for ln in lines if ln]) > MAX_LINES:
            raise ValueError(_("At most %(count)d filters", count=MAX_LINES))
        for number, line in enumerate(lines, 1):
            if not line:
                continue
            try:
                self.data.append(selection.parse_filter(line))
            except selection.InvalidFilter as exc:
                message = say(exc)
                text = message[:1].lower() + message[1:]
                raise ValueError(
                    _("Line %(number)d: %(error)s", number=number, error=text)
                ) from None

    def process_data(self, value) -> None:
        self.data = list(value or [])


def format_choices() -> list[SelectChoice]:
    """Automatic, then every format writers know."""
    return [SelectChoice(*AUTOMATIC)] + [
        SelectChoice(f, FORMAT_LABELS.get(f, f.upper())) for f in writers.FORMATS
    ]


def template_choices() -> list[SelectChoice]:
    """None, the predefined templates (with their titles), then the saved field templates."""
    from impexmod.export import mapping

    out = [SelectChoice("", _("None"))]
    predefined = str(PREDEFINED)
    out += [SelectChoice(t.name, t.title, optgroup=predefined) for t in TEMPLATES.values()]
    saved = [n for n in mapping.saved_names() if n not in TEMPLATES]
    out += [SelectChoice(n, n, optgroup=_("Your field templates")) for n in saved]
    return out


def stylesheet_choices() -> list[SelectChoice]:
    """None, the shipped stylesheets, then the uploaded ones."""
    out = [SelectChoice("", _("None"))]
    for sheet in list_stylesheets():
        if sheet.record_wise:
            label = _("%(name)s (%(ext)s, record-wise)", name=sheet.name, ext=sheet.ext)
        else:
            label = f"{sheet.name} ({sheet.ext})"
        group = _("Shipped") if is_shipped(sheet) else _("Uploaded")
        out.append(SelectChoice(sheet.name, label, optgroup=group))
    return out


def list_stylesheets() -> list[stylesheets.StylesheetEntry]:
    """Every stylesheet an exporter may name: the shipped ones, then the uploaded ones."""
    return stylesheets.list_stylesheets()


def is_shipped(sheet: stylesheets.StylesheetEntry) -> bool:
    """Whether a listed stylesheet comes from xslt/ (it cannot be deleted)."""
    return sheet.origin == "shipped"


@dataclass
class OptionHelp:
    """The options one format or predefined template takes, for the form's side panel."""

    key: str  # the format or template name the form selects
    title: str
    options: dict[str, str] = field(default_factory=dict)


def option_help() -> list[OptionHelp]:
    """The options of every format, then of every predefined template that takes some."""
    out = []
    for fmt in writers.FORMATS:
        cls = writers.writer_class(fmt)
        out.append(OptionHelp(fmt, FORMAT_LABELS.get(fmt, fmt), dict(getattr(cls, "OPTIONS", {}))))
    for template in TEMPLATES.values():
        options = dict(getattr(template.load(), "OPTIONS", {}))
        if options:
            out.append(OptionHelp(template.name, template.title, options))
    return out


def output_context() -> dict:
    """What the templates of forms with output fields need besides the form."""
    return {"predefined": list(TEMPLATES), "option_help": option_help()}
