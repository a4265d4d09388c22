"""The panel's forms (Flask-WTF: each carries a CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DecimalField,
    EmailField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, Optional

from impexmod import entities, tasks

ENTITY_LABELS = {
    "products": "Products",
    "combinations": "Combinations",
    "categories": "Categories",
    "tags": "Tags",
    "specific_prices": "Specific prices",
    "stock": "Stock",
    "orders": "Orders",
    "customers": "Customers",
}
FORMAT_LABELS = {"xml": "XML (native Advanced Importer feed)"}
STRATEGY_LABELS = {
    "full": "Full: every entity, each run",
    "incremental": "Incremental: what changed since the previous run",
}


def _choices(names, labels: dict[str, str]) -> list[tuple[str, str]]:
    return [(n, labels.get(n, n.replace("_", " ").capitalize())) for n in names]


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired("Enter your e-mail address.")])
    password = PasswordField("Password", validators=[DataRequired("Enter your password.")])


class ConfirmForm(FlaskForm):
    """A form with nothing but its CSRF token: buttons that change something."""


class ExporterForm(FlaskForm):
    """Fields of an exporter; impexmod.tasks validates them (choices included)."""

    name = StringField("Name", description="Shown in the panel, e.g. “Stock for shop B”.")
    entity = SelectField("Entity", validate_choice=False, description="What the feed lists.")
    format = SelectField("Format", validate_choice=False)
    strategy = SelectField("Strategy", validate_choice=False)
    schedule = StringField(
        "Schedule",
        default="none",
        description=(
            "none (run it by hand), daily@02:30, weekly@mon@06:00, monthly@1@03:00 "
            "or a cron expression such as */15 * * * *."
        ),
    )
    timezone = StringField("Timezone", description="Of the schedule, e.g. Europe/Paris.")
    notify_emails = StringField(
        "Notify by e-mail", description="Comma-separated addresses told when a run fails."
    )
    webhook_url = StringField("Webhook URL", description="Receives a signed POST when a run ends.")
    notify_success = BooleanField("Also notify successful runs")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.entity.choices = _choices(entities.ENTITY_NAMES, ENTITY_LABELS)
        self.format.choices = _choices(tasks.FORMATS, FORMAT_LABELS)
        self.strategy.choices = _choices(tasks.STRATEGIES, STRATEGY_LABELS)

    def service_arguments(self) -> dict:
        """The form's data as the task services take it."""
        return {
            "name": self.name.data or "",
            "entity": self.entity.data or "",
            "fmt": self.format.data or "",
            "strategy": self.strategy.data or "",
            "schedule": (self.schedule.data or "").strip() or "none",
            "timezone": (self.timezone.data or "").strip() or None,
            "notify_success": bool(self.notify_success.data),
            "notify_emails": self.notify_emails.data or None,
            "webhook_url": (self.webhook_url.data or "").strip() or None,
        }

    def show_error(self, field: str, message: str) -> None:
        """Put a service's error next to its field (or on the form when no field matches)."""
        text = message[:1].upper() + message[1:]
        target = getattr(self, field, None)
        if target is None or not hasattr(target, "errors"):
            target = self.name
        if not isinstance(target.errors, list):
            target.errors = list(target.errors)
        target.errors.append(text)


class CombinationForm(FlaskForm):
    price_impact = DecimalField("Price impact", places=6, validators=[Optional()])
    quantity = IntegerField("Quantity", validators=[Optional()])
