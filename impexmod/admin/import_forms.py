"""The panel's import forms: a recurring importer ("Add an HTTP download") and an uploaded file.
impexmod.importing checks their values; errors come back next to the field they concern."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from impexmod.admin.forms import ENTITY_LABELS, WhenForm, choices, show_error
from impexmod.admin.i18n import lazy_gettext as _l
from impexmod.admin.i18n import say
from impexmod.importing import FORMATS, netguard
from impexmod.importing.definition import ENTITIES, MODES
from impexmod.importing.mappings import saved_mappings

FORMAT_LABELS = {
    "xml": _l("XML (native Advanced Importer feed)"),
    "csv": _l("CSV (spreadsheet)"),
    "xlsx": _l("XLSX (Excel workbook)"),
    "zip": _l("ZIP (a data group of several files)"),
}
MODE_LABELS = {
    "create": _l("Create new entries"),
    "update": _l("Update existing entries"),
    "delete": _l("Delete the entries the input no longer holds"),
    "disable": _l("Disable the entries the input no longer holds"),
}
DEFAULT_MODES = ["create", "update"]
# As impexmod.importing.validation checks it, said here in the panel's language.
NAME_REQUIRED = _l("A name of 1 to 128 characters is required")
NAME_CHECKS = [DataRequired(NAME_REQUIRED), Length(max=128, message=NAME_REQUIRED)]


class ModesField(SelectMultipleField):
    """One checkbox per mode; ``data`` is the list of ticked ones."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ImportOptionsForm(FlaskForm):
    """What an input holds and how it is imported (importers and uploads)."""

    entity = SelectField(
        _l("Entity"),
        validate_choice=False,
        description=_l(
            "What a CSV or XLSX file holds. Automatic: from the file's name "
            "(products.csv, stock-….xlsx); a native feed says it itself."
        ),
    )
    format = SelectField(
        _l("Format"), validate_choice=False, description=_l("Automatic: from the file.")
    )
    modes = ModesField(
        _l("Modes"),
        default=DEFAULT_MODES,
        validate_choice=False,
        description=_l(
            "Deleting or disabling what is absent is refused (with a warning) when the "
            "input is partial or has errors."
        ),
    )
    source = StringField(
        _l("Source"),
        description=_l(
            "Whose keys the references are when the input does not say: a supplier "
            "(Acme, read as supplier:Acme) or shop:<id>. Empty: the feed's own, else "
            "supplier:default."
        ),
    )
    mapping = SelectField(
        _l("Column mapping"),
        validate_choice=False,
        description=_l("A saved mapping of your file's headers to impexmod's columns (CSV, XLSX)."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        auto = SelectChoice("", _l("Automatic"))
        self.entity.choices = [auto, *choices(ENTITIES, ENTITY_LABELS)]
        self.format.choices = [auto, *choices(FORMATS, FORMAT_LABELS)]
        self.modes.choices = choices(MODES, MODE_LABELS)
        saved = [SelectChoice(m.name, f"{m.name} ({m.entity})") for m in saved_mappings()]
        if self.mapping.data and self.mapping.data not in {c.value for c in saved}:
            # Shown as it is, so that saving refuses it instead of dropping it unseen.
            saved.append(
                SelectChoice(self.mapping.data, _("%(name)s (deleted)", name=self.mapping.data))
            )
        self.mapping.choices = [SelectChoice("", _l("None: the headers are impexmod's")), *saved]

    def import_arguments(self) -> dict:
        """The fields as the import services take them."""
        return {
            "entity": self.entity.data or None,
            "fmt": self.format.data or None,
            "modes": list(self.modes.data or []),
            "source": (self.source.data or "").strip() or None,
            "mapping": self.mapping.data or None,
        }

    def show_error(self, field: str, message: str) -> None:
        """Put a service's error next to its field (or on the entity when none matches)."""
        show_error(self, field, message, "entity")


class ImporterForm(ImportOptionsForm, WhenForm):
    """A recurring importer of a URL; impexmod.importing.definition validates it."""

    name = StringField(
        _l("Name"),
        validators=NAME_CHECKS,
        description=_l("Shown in the panel, e.g. “Stock from shop A”."),
    )
    url = StringField(
        _l("URL"),
        description=_l(
            "The feed to download (http or https), e.g. the feed URL of another impexmod shop."
        ),
    )
    username = StringField(
        _l("User"), description=_l("HTTP Basic authentication, if the URL asks.")
    )
    password = PasswordField(_l("Password"))
    # The path of a file on the server that the command line saved (kept on edit; see below).
    kept_path: str | None = None

    def validate_url(self, field) -> None:
        """The panel reads only http(s) URLs: a merchant must not read the server's files."""
        url = (field.data or "").strip()
        if url.startswith("/") and url != self.kept_path:
            raise ValidationError(
                _(
                    "An http(s) URL: importing a file on the server is for the command line "
                    "(impexmod importer add --url /path)."
                )
            )
        try:
            # Early, to say it next to the field; each download's connections are checked too.
            netguard.check_url(url)
        except netguard.BlockedAddress as exc:
            raise ValidationError(say(exc)) from None

    @classmethod
    def of(cls, fields: dict) -> ImporterForm:
        """The form filled in with a saved importer (``definition.importer_fields``)."""
        data = {
            **fields,
            "entity": "" if fields["entity"] == "any" else fields["entity"],
            "format": "" if fields["fmt"] == "auto" else fields["fmt"],
            "modes": [m for m in (fields["modes"] or "").split(",") if m],
            "mapping": fields["mapping"] or "",
        }
        return cls(data=data)

    def service_arguments(self) -> dict:
        """The form's data as create_importer and update_importer take them."""
        return {
            "name": self.name.data or "",
            "url": (self.url.data or "").strip(),
            "username": (self.username.data or "").strip() or None,
            "password": self.password.data or None,
            **self.import_arguments(),
            **self.when_arguments(),
        }

    def show_error(self, field: str, message: str) -> None:
        """Put a service's error next to its field (or on the name when none matches)."""
        show_error(self, field, message, "name")


class UploadForm(ImportOptionsForm):
    """A file to import now: dry-run first, then imported on request."""

    file = FileField(_l("File"), validators=[FileRequired(_l("Choose the file to import."))])

    def show_error(self, field: str, message: str) -> None:
        """Put a service's error next to its field (or under the file when none matches)."""
        show_error(self, field, message, "file")
