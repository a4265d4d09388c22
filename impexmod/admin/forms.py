"""The panel's forms (Flask-WTF: each carries a CSRF token)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from flask_babel import gettext as _
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import (
    BooleanField,
    DecimalField,
    EmailField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from impexmod import entities
from impexmod.admin.i18n import LANGUAGES, say
from impexmod.admin.i18n import lazy_gettext as _l
from impexmod.admin.output_fields import (
    FiltersField,
    OptionsField,
    format_choices,
    stylesheet_choices,
    template_choices,
)
from impexmod.entities import derived
from impexmod.export import definition as exporters


class _EntityLabels(Mapping):
    """The entity specs' labels (marked N_ there for the catalogue), in the panel's language,
    read from derived.LABELS on each lookup so that an entity registered later is in it."""

    def __getitem__(self, name: str):
        return _l(derived.LABELS[name])

    def __iter__(self):
        return iter(derived.LABELS)

    def __len__(self) -> int:
        return len(derived.LABELS)


ENTITY_LABELS = _EntityLabels()
STRATEGY_LABELS = {
    "full": _l("Full: every entity, each run"),
    "incremental": _l("Incremental: what changed since the previous run"),
}
# The services name a field by its argument; the form's field is sometimes called otherwise.
FIELD_ALIASES = {
    "option": "options",
    "filter": "filters",
    "match": "filter_match",
    "fmt": "format",
    "mode": "modes",
}


def choices(names, labels: dict[str, str]) -> list[SelectChoice]:
    """Choices labelled from ``labels``, else with the name made readable."""
    return [SelectChoice(n, labels.get(n, n.replace("_", " ").capitalize())) for n in names]


def entity_choices() -> list[SelectChoice]:
    """The entities, as a merchant reads them."""
    return choices(entities.ENTITY_NAMES, ENTITY_LABELS)


def show_error(form: FlaskForm, field: str, message: str, fallback: str) -> None:
    """Put a service's error next to its field (or next to ``fallback`` when none matches),
    in the panel's language when the service marked it (``say``)."""
    message = say(message)
    text = message[:1].upper() + message[1:]
    target = getattr(form, FIELD_ALIASES.get(field, field), None)
    if target is None or not hasattr(target, "errors"):
        target = getattr(form, fallback)
    if not isinstance(target.errors, list):
        target.errors = list(target.errors)
    target.errors.append(text)


# A task's name, checked here too so that its errors are in the panel's language (the task
# services check it again, in English, for the command line).
NAME_CHECKS = [
    DataRequired(_l("A name is required")),
    Length(max=128, message=_l("At most 128 characters")),
]


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(_l("Enter your e-mail address."))])
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Enter your password."))])


class LanguageForm(FlaskForm):
    """The merchant's language: one of the panel's, or "" for the browser's."""

    language = SelectField(_l("Language"), validate_choice=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.language.choices = [SelectChoice("", _l("Browser's language"))] + [
            SelectChoice(code, name) for code, name in LANGUAGES.items()
        ]


class ConfirmForm(FlaskForm):
    """A form with nothing but its CSRF token: buttons that change something."""


class OutputForm(FlaskForm):
    """What an export writes and which entities it lists (exporters and manual exports)."""

    entity = SelectField(
        _l("Entity"), validate_choice=False, description=_l("What the feed lists.")
    )
    format = SelectField(
        _l("Format"),
        validate_choice=False,
        description=_l("Automatic: native XML, or the format a template or stylesheet writes."),
    )
    template = SelectField(
        _l("Template"),
        validate_choice=False,
        description=_l(
            "A platform's file (it implies its format), or one of your field templates."
        ),
    )
    stylesheet = SelectField(
        _l("Stylesheet"),
        validate_choice=False,
        description=_l("An XSLT stylesheet applied to the native XML (not with a template)."),
    )
    options = OptionsField(
        _l("Options"),
        description=_l(
            "One KEY=VALUE per line, e.g. separator=tab. The options of each format "
            "are listed on the right."
        ),
    )
    filters = FiltersField(
        _l("Selection"),
        description=_l(
            "One filter per line, e.g. category=Shoes, active=1, price>=10, "
            "reference in A1,A2. Empty: every entity."
        ),
    )
    filter_match = RadioField(
        _l("Match"),
        choices=[SelectChoice("all", _l("All the filters")), SelectChoice("any", _l("Any filter"))],
        default="all",
        validate_choice=False,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.entity.choices = entity_choices()
        self.format.choices = format_choices()
        self.template.choices = template_choices()
        self.stylesheet.choices = stylesheet_choices()

    def output_arguments(self) -> dict:
        """The output and selection fields as the task services take them."""
        return {
            "entity": self.entity.data or "",
            "fmt": self.format.data or None,
            "options": dict(self.options.data or {}),
            "template": self.template.data or None,
            "stylesheet": self.stylesheet.data or None,
            "filters": list(self.filters.data or []),
            "filter_match": self.filter_match.data or "all",
        }

    def show_error(self, field: str, message: str) -> None:
        """Put a service's error next to its field (or on the first field when none matches)."""
        show_error(self, field, message, "entity")


class WhenForm(FlaskForm):
    """When a recurring task runs and who hears about its runs (exporters and importers)."""

    schedule = StringField(
        _l("Schedule"),
        default="none",
        description=_l(
            "none (run it by hand), daily@02:30, weekly@mon@06:00, monthly@1@03:00 "
            "or a cron expression such as */15 * * * *."
        ),
    )
    timezone = StringField(_l("Timezone"), description=_l("Of the schedule, e.g. Europe/Paris."))
    notify_emails = StringField(
        _l("Notify by e-mail"), description=_l("Comma-separated addresses told when a run fails.")
    )
    webhook_url = StringField(
        _l("Webhook URL"), description=_l("Receives a signed POST when a run ends.")
    )
    notify_success = BooleanField(_l("Also notify successful runs"))

    def when_arguments(self) -> dict:
        """Schedule and notification fields as the task services take them."""
        return {
            "schedule": (self.schedule.data or "").strip() or "none",
            "timezone": (self.timezone.data or "").strip() or None,
            "notify_success": bool(self.notify_success.data),
            "notify_emails": self.notify_emails.data or None,
            "webhook_url": (self.webhook_url.data or "").strip() or None,
        }


class ExporterForm(OutputForm, WhenForm):
    """Fields of an exporter; impexmod.runs.tasks validates them (choices included)."""

    name = StringField(
        _l("Name"),
        validators=NAME_CHECKS,
        description=_l("Shown in the panel, e.g. “Stock for shop B”."),
    )
    strategy = SelectField(_l("Strategy"), validate_choice=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.strategy.choices = choices(exporters.STRATEGIES, STRATEGY_LABELS)

    def service_arguments(self) -> dict:
        """The form's data as the task services take them."""
        return {
            "name": self.name.data or "",
            "strategy": self.strategy.data or "",
            **self.when_arguments(),
            **self.output_arguments(),
        }

    def show_error(self, field: str, message: str) -> None:
        """Put a service's error next to its field (or on the name when no field matches)."""
        show_error(self, field, message, "name")


class ManualExportForm(OutputForm):
    """A one-off export: what to write and which entities, downloaded or run in the background."""


class JsonField(TextAreaField):
    """A JSON document typed in a textarea; ``data`` is the parsed value."""

    def _value(self) -> str:
        if self.raw_data:
            return self.raw_data[0]
        if self.data is None:
            return ""
        if isinstance(self.data, list):
            # One item per line: a mapping reads as its list of columns.
            items = ",\n".join("  " + json.dumps(i, ensure_ascii=False) for i in self.data)
            return f"[\n{items}\n]"
        return json.dumps(self.data, indent=2, ensure_ascii=False)

    def process_formdata(self, valuelist) -> None:
        self.data = None
        text = (valuelist[0] if valuelist else "").strip()
        if not text:
            return
        try:
            self.data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                _(
                    "Not valid JSON: %(error)s at line %(line)d, column %(column)d",
                    error=exc.msg.lower(),
                    line=exc.lineno,
                    column=exc.colno,
                )
            ) from None


class FieldTemplateForm(FlaskForm):
    """A field-mapping template; impexmod.export.field_templates validates its columns."""

    name = StringField(
        _l("Name"), description=_l("Exporters name it as their template, e.g. “my-shop”.")
    )
    entity = SelectField(
        _l("Entity"), validate_choice=False, description=_l("Whose columns it maps.")
    )
    description = StringField(
        _l("Description"), description=_l("Optional: what the template is for.")
    )
    columns = JsonField(
        _l("Columns"),
        description=_l(
            'A JSON array, one object per column: {"header": "Price", "source": '
            '"price", "transforms": [{"op": "price", "decimals": 2}]}. See docs/templates.md.'
        ),
    )

    def __init__(self, *args, entities_allowed=None, **kwargs):
        super().__init__(*args, **kwargs)
        names = entities_allowed or entities.ENTITY_NAMES
        self.entity.choices = choices(names, ENTITY_LABELS)

    def show_error(self, field: str | None, message: str) -> None:
        """Put a service's error next to its field (or under the columns)."""
        show_error(self, field or "columns", message, "columns")


class TemplateImportForm(FlaskForm):
    """A field template exported as JSON, uploaded to be saved here."""

    file = FileField(
        _l("JSON file"),
        validators=[
            FileRequired(_l("Choose a .json file exported from a field template.")),
            FileAllowed(["json"], _l("A field template is a .json file.")),
        ],
    )
    replace = BooleanField(_l("Replace a template of the same name"))


class StylesheetForm(FlaskForm):
    """An XSLT stylesheet to upload; impexmod.export.stylesheets checks that it compiles."""

    name = StringField(_l("Name"), description=_l("Exporters name it as their stylesheet."))
    file = FileField(
        _l("XSLT file"),
        validators=[
            FileRequired(_l("Choose an .xsl file.")),
            FileAllowed(["xsl", "xslt"], _l("A stylesheet is an .xsl or .xslt file.")),
        ],
    )
    record_wise = BooleanField(
        _l("Record-wise"),
        description=_l(
            "Applied to each chunk of entities and the results joined (no whole "
            "document in memory). Leave unticked if it needs the whole feed at once."
        ),
    )

    def show_error(self, field: str | None, message: str) -> None:
        """Put a service's error next to its field (compile errors go under the file)."""
        show_error(self, field or "file", message, "file")


class CombinationForm(FlaskForm):
    price_impact = DecimalField(_l("Price impact"), places=6, validators=[Optional()])
    quantity = IntegerField(_l("Quantity"), validators=[Optional()])
