"""The merchant's back office (Flask-Admin): thin views over impexmod services."""

from __future__ import annotations

import os
from datetime import timedelta

from flask import Blueprint, Flask, render_template
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme
from flask_babel import gettext as _
from flask_babel import lazy_pgettext
from flask_wtf.csrf import CSRFError, CSRFProtect

from impexmod.admin import destinations, formatting, i18n
from impexmod.admin.auth import is_panel_request, login_manager
from impexmod.admin.catalog import catalog_views
from impexmod.admin.dashboard import DashboardView
from impexmod.admin.exports import ManualExportView
from impexmod.admin.field_templates import FieldTemplatesView
from impexmod.admin.i18n import lazy_gettext as _l
from impexmod.admin.imports import ManualImportView
from impexmod.admin.notifications import NotificationsView
from impexmod.admin.order_tasks import InboundFeedsView, OrderExportersView
from impexmod.admin.orders import OrderFlowView, OrdersToApproveView
from impexmod.admin.runs import RunsView
from impexmod.admin.stylesheets import StylesheetsView
from impexmod.admin.tasks import RecurringTasksView
from impexmod.extensions import init_limiter

# The menu category keeps its name in every language, as in the module's French documentation
# ("Advanced Importer > Tâche récurrente > Ajouter un exporteur").
MENU = "Advanced Importer"
# A back-office session ends after this much inactivity (Flask's own default is 31 days).
SESSION_LIFETIME = timedelta(hours=8)

csrf = CSRFProtect()

assets = Blueprint(
    "impexmod_admin",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/admin/assets",
)


def _configure(app: Flask) -> None:
    cfg = app.config
    if cfg["PERMANENT_SESSION_LIFETIME"] == Flask.default_config["PERMANENT_SESSION_LIFETIME"]:
        cfg["PERMANENT_SESSION_LIFETIME"] = SESSION_LIFETIME
    elif not isinstance(cfg["PERMANENT_SESSION_LIFETIME"], timedelta):
        # From the environment (IMPEXMOD_PERMANENT_SESSION_LIFETIME), in seconds.
        seconds = int(cfg["PERMANENT_SESSION_LIFETIME"])
        cfg["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=seconds)
    cfg["SESSION_COOKIE_SAMESITE"] = cfg.get("SESSION_COOKIE_SAMESITE") or "Lax"
    # Cookies only over HTTPS when the shop is served over HTTPS (None: not set by config),
    # so a session is never sent in clear; a plain-http shop (the demo) still signs in.
    https = str(cfg.get("PUBLIC_URL", "")).lower().startswith("https://")
    for name in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE"):
        cfg[name] = https if cfg.get(name) is None else bool(cfg[name])
    cfg.setdefault("REMEMBER_COOKIE_HTTPONLY", True)  # SESSION_COOKIE_HTTPONLY: Flask's True
    cfg["REMEMBER_COOKIE_SAMESITE"] = cfg.get("REMEMBER_COOKIE_SAMESITE") or "Lax"
    # CSRF is checked on the panel's requests only (below): the feed endpoint takes no forms.
    cfg.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    # A token lives as long as the session that holds it, not one hour.
    cfg.setdefault("WTF_CSRF_TIME_LIMIT", None)


def init_app(app: Flask) -> None:
    """Mount the panel on /admin: login, CSRF protection, views and menu."""
    _configure(app)
    init_limiter(app)
    i18n.init_app(app)
    formatting.init_app(app)
    destinations.init_app(app)
    login_manager.init_app(app)
    csrf.init_app(app)
    app.register_blueprint(assets)

    _guard_forms_and_errors(app)
    theme = Bootstrap4Theme(base_template="impexmod/base.html", fluid=True)
    panel = Admin(
        app,
        name=MENU,
        url="/admin",
        endpoint="admin",
        index_view=DashboardView(name=_l("Dashboard"), url="/admin", endpoint="admin"),
        theme=theme,
        # Searched before Flask-Admin's own catalogue: the few strings it ships untranslated.
        translations_path=os.path.join(os.path.dirname(os.path.dirname(__file__)), "translations"),
    )
    _add_views(panel)


def _guard_forms_and_errors(app: Flask) -> None:
    """CSRF on every panel form, and the panel's own pages for refused forms and errors."""

    @app.before_request
    def _protect_panel_forms():
        if is_panel_request() and app.config.get("WTF_CSRF_ENABLED", True):
            csrf.protect()

    @app.errorhandler(CSRFError)
    def _csrf_refused(error: CSRFError):
        message = _(
            "This form has expired or did not come from the panel. Reload the page and try again."
        )
        title = _("Form refused")
        return render_template("impexmod/error.html", title=title, message=message), 400

    @app.errorhandler(404)
    def _not_found(error):
        if not is_panel_request():
            return error
        return render_template(
            "impexmod/error.html",
            title=_("Not found"),
            message=_("This page does not exist (any more)."),
        ), 404

    @app.errorhandler(500)
    def _server_error(error):
        if not is_panel_request():
            return error
        return render_template(
            "impexmod/error.html",
            title=_("Something went wrong"),
            message=_("The page could not be shown. The error was logged; try again in a moment."),
        ), 500


def _add_views(panel: Admin) -> None:
    """The menu "Advanced Importer": tasks, runs and tools, then the catalog's pages."""
    panel.add_view(
        RecurringTasksView(
            name=lazy_pgettext("menu", "Recurring tasks"),
            category=MENU,
            endpoint="tasks",
            url="tasks",
        )
    )
    panel.add_view(RunsView(name=_l("Runs"), category=MENU, endpoint="runs", url="runs"))
    panel.add_view(
        NotificationsView(
            name=_l("Notifications"), category=MENU, endpoint="notifications", url="notifications"
        )
    )
    panel.add_view(
        ManualExportView(
            name=_l("Manual export"), category=MENU, endpoint="manual_export", url="export"
        )
    )
    panel.add_view(
        ManualImportView(
            name=_l("Import a file"), category=MENU, endpoint="manual_import", url="import"
        )
    )
    panel.add_view(
        FieldTemplatesView(
            name=_l("Field templates"),
            category=MENU,
            endpoint="field_templates",
            url="field-templates",
        )
    )
    panel.add_view(
        StylesheetsView(
            name=_l("Stylesheets"), category=MENU, endpoint="stylesheets", url="stylesheets"
        )
    )
    panel.add_view(
        OrderFlowView(name=_l("Order flow"), category=MENU, endpoint="order_flow", url="order-flow")
    )
    panel.add_view(
        OrderExportersView(
            name=_l("Order exporters"),
            category=MENU,
            endpoint="order_exporters",
            url="order-exporters",
        )
    )
    panel.add_view(
        InboundFeedsView(
            name=_l("Inbound feeds"), category=MENU, endpoint="inbound_feeds", url="inbound-feeds"
        )
    )
    panel.add_view(
        OrdersToApproveView(
            name=_l("Orders to approve"),
            category=MENU,
            endpoint="orders_to_approve",
            url="orders-to-approve",
        )
    )
    for view in catalog_views():
        panel.add_view(view)
