"""impexmod: the Advanced Importer of a shop, as a Flask service."""

from __future__ import annotations

import os

from flask import Flask

from impexmod import config
from impexmod.extensions import db


def create_app(test_config: dict | None = None) -> Flask:
    """Build the application: configuration, database, feed endpoint, admin panel, CLI."""
    instance_path = (test_config or {}).get("INSTANCE_PATH") or os.environ.get(
        "IMPEXMOD_INSTANCE_PATH"
    )
    app = Flask(
        __name__,
        instance_path=os.path.abspath(instance_path) if instance_path else None,
        instance_relative_config=True,
    )
    config.load(app, test_config)
    proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
    if proxies:
        # Behind N reverse proxies, the client's address and scheme are in their X-Forwarded-*
        # headers (sign-in throttling counts per address); trusted only when configured.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies
        )

    db.init_app(app)
    migrate_dir = os.path.join(os.path.dirname(__file__), "migrations")
    # Imported here, not with the extensions: alembic is half of what a process that only
    # reads models (a feed's parsing process) would otherwise import.
    from flask_migrate import Migrate

    Migrate(render_as_batch=True).init_app(app, db, directory=migrate_dir)  # batch: SQLite ALTERs

    from impexmod import models  # noqa: F401  (register the models)
    from impexmod.catalog import changes  # (and change tracking)

    changes.init_app(app)

    from impexmod.export import runner as export_runs
    from impexmod.importing import runs as import_runs
    from impexmod.orders import exporter as order_exporters
    from impexmod.orders import shipping as inbound_runs

    # Each pipeline registers itself for its kinds of task (impexmod.runs.lifecycle), so that
    # impexmod.dispatch.jobs runs them without knowing them.
    export_runs.register()
    import_runs.register()
    inbound_runs.register()
    order_exporters.register()
    # Runs are started through the lifecycle; dispatch starts them (RQ, or in this process).
    from impexmod.dispatch import jobs

    jobs.register()

    from impexmod.feeds import bp as feeds_bp

    app.register_blueprint(feeds_bp)
    from impexmod.feeds.inbound import bp as inbound_bp

    app.register_blueprint(inbound_bp)

    from impexmod import admin

    admin.init_app(app)
    # An API for carriers, not a form: no CSRF token, no panel login.
    admin.csrf.exempt(inbound_bp)

    from impexmod.cli import register

    register(app)
    return app
