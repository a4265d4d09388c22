"""`impexmod demo`: a working demo shop in one command."""

from __future__ import annotations

import os
import secrets

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade

from impexmod import entities
from impexmod.admin import users
from impexmod.cli import progress as progress_
from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.models import Product, TaskKind
from impexmod.runs import tasks
from impexmod.runs.tokens import feed_url

# (name, entity, strategy, output) of the exporters the demo defines: every entity as native
# XML, then a few of the other shapes a merchant can choose.
DEMO_EXPORTERS = (
    [(f"Demo {name.replace('_', ' ')}", name, "full", {}) for name in entities.ENTITY_NAMES]
    + [("Demo stock (incremental)", "stock", "incremental", {})]
    + [
        ("Demo products CSV", "products", "full", {"fmt": "csv"}),
        ("Demo products XLSX", "products", "full", {"fmt": "xlsx"}),
        ("Demo products JSON", "products", "full", {"fmt": "json"}),
        ("Demo Shopify", "products", "full", {"template": "shopify"}),
        ("Demo Google Shopping", "products", "full", {"template": "google-shopping"}),
        ("Demo flat CSV (XSLT)", "products", "full", {"stylesheet": "native-to-csv"}),
    ]
)


DEMO_EMAIL = "demo@impexmod.test"


def ensure_demo_merchant() -> tuple[str, str]:
    """The demo merchant's account, created or given a fresh password: (e-mail, password)."""
    password = secrets.token_urlsafe(9)
    user = users.find_user(DEMO_EMAIL)
    if user is None:
        users.create_user(DEMO_EMAIL, password)
    else:
        users.set_password(user, password)
    return DEMO_EMAIL, password


def ensure_demo_exporters() -> list:
    """Define the demo exporters unless the shop already has exporters."""
    existing = tasks.list_tasks(TaskKind.EXPORT)
    if existing:
        return existing
    return [
        exporters.create_exporter(n, e, strategy=s, **output) for n, e, s, output in DEMO_EXPORTERS
    ]


def _orders_channel() -> None:
    """Set up and print the demo's orders channel (docs/orders.md)."""
    from impexmod.factories.orm import ensure_order_states
    from impexmod.orders import exporter as order_exporters
    from impexmod.orders import inbound
    from impexmod.orders.demo import ensure_demo_channel

    channel = ensure_demo_channel(ensure_order_states)
    click.echo("Orders channel (docs/orders.md):")
    for task in channel.exporters:
        described = order_exporters.describe(task)
        then = (
            f", then sets {', '.join(described['next_flags'])}" if described["next_flags"] else ""
        )
        click.echo(f"  {task.name:<28} serves flag {described['flag']}{then}")
        if described["feed_url"]:
            click.echo(f"    {described['feed_url']}")
    if channel.order:
        click.echo(
            f"  Pay order {channel.order} to start the chain (then approve it for the "
            f"warehouse in Advanced Importer > Orders to approve):\n"
            f'    impexmod orders move {channel.order} "Payment accepted"'
        )
    url = inbound.inbound_url(channel.inbound)
    order = channel.shipping or channel.order or "ORDER-REFERENCE"
    click.echo(f"  {channel.inbound.name}: push a carrier event to its URL, e.g.")
    click.echo(
        f"    curl -X POST -H 'Content-Type: application/json' -d "
        f'\'{{"id": "evt-1", "type": "shipped", "order": "{order}", '
        f'"carrier": "DemoPost", "tracking_number": "DP123"}}\' {url}'
    )


@click.command("demo")
@click.option(
    "--products", default=300, show_default=True, help="Products to seed when the catalog is empty."
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Set everything up, print the URLs, and quit.")
@progress_.option
@with_appcontext
def command(products, host, port, no_serve, progress):
    """Build the schema, seed a catalog, run demo exporters once, and serve the shop."""
    from impexmod.factories.seed import seed_catalog

    app = current_app._get_current_object()
    if "IMPEXMOD_PUBLIC_URL" not in os.environ:
        app.config["PUBLIC_URL"] = f"http://{host}:{port}"
    upgrade()
    if db.session.query(Product.id).first() is None:
        click.echo(f"Seeding a demo catalog of {products} products...")
        with progress_.Meter("Seeding", progress, unit="products") as meter:
            seed_catalog(db.engine, products, seed=0, progress=meter.update)
    for task in ensure_demo_exporters():
        try:
            with progress_.following(task, task.name, progress) as meter:
                run = jobs.start_run(task, trigger="manual", inline=True)
                if app.config.get("REDIS_URL"):
                    run = jobs.wait(run, timeout=600, on_poll=meter.seen)
                    meter.seen(run)
        except jobs.TaskBusy:
            continue
        state = (
            f"{run.entity_count} entities"
            if run.status == "succeeded"
            else f"{run.status}: {run.error or ''}"
        )
        click.echo(f"  {task.name:<28} {state}\n    {feed_url(task)}")
    _orders_channel()
    email, password = ensure_demo_merchant()
    click.echo(f"Admin panel: {app.config['PUBLIC_URL']}/admin/")
    click.echo(f"  e-mail:   {email}\n  password: {password}   (new at each `impexmod demo`)")
    if no_serve:
        return
    if not app.config.get("REDIS_URL"):
        # No scheduler process without Redis: scheduled tasks run inside this one.
        from impexmod.dispatch.scheduler import start_embedded

        start_embedded(app)
    click.echo(f"Serving on http://{host}:{port}/ (Ctrl+C to stop)")
    # Not app.run(): Flask ignores it inside a CLI command (FLASK_RUN_FROM_CLI).
    from werkzeug.serving import run_simple

    run_simple(host, port, app, threaded=True)
