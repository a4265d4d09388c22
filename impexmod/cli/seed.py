"""`impexmod seed`: a deterministic demo catalog."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from impexmod.extensions import db


@click.command("seed")
@click.option(
    "--products",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Number of products to create.",
)
@click.option(
    "--seed",
    "seed",
    type=int,
    default=0,
    show_default=True,
    help="Random seed: the same products and seed give the same catalog.",
)
@click.option("--append", is_flag=True, help="Add the products to a catalog that has some.")
@with_appcontext
def command(products: int, seed: int, append: bool) -> None:
    """Seed a demo catalog: products, variants, stock, prices, customers and orders."""
    from impexmod.factories.seed import TABLES, SeedRefused, seed_catalog

    shown = 0

    def progress(done: int, total: int) -> None:
        # Large seeds take a while: say so every tenth, on stderr to keep the summary clean.
        nonlocal shown
        if total >= 20_000 and done * 10 // total > shown:
            shown = done * 10 // total
            click.echo(f"  {done:,} / {total:,} products", err=True)

    try:
        report = seed_catalog(db.engine, products, seed, append=append, progress=progress)
    except SeedRefused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Seeded {products:,} products (seed {seed}) in {report.seconds:.1f} s:")
    for name in TABLES:
        if report.counts.get(name):
            click.echo(f"  {name:<32}{report.counts[name]:>10,}")
