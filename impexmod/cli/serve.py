"""``impexmod serve``: the shop under gunicorn, the production server (impexmod.serving)."""

from __future__ import annotations

import click

from impexmod import serving


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes  [default: one per core]",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Request threads per worker (workers x threads requests are answered at once).",
)
@click.option(
    "--timeout",
    type=click.IntRange(min=10),
    default=120,
    show_default=True,
    help="Seconds a request may take before its worker is restarted.",
)
@click.option("--access-log", is_flag=True, help="Log every request on standard output.")
def command(host, port, workers, threads, timeout, access_log):
    """Serve the panel and the feed URLs with gunicorn (without Redis, with the scheduler)."""
    from impexmod import create_app

    click.echo(f"Serving on http://{host}:{port}/ with gunicorn (Ctrl+C to stop)")
    serving.serve(
        create_app,
        host=host,
        port=port,
        workers=workers,
        threads=threads,
        timeout=timeout,
        access_log=access_log,
    )
