"""`impexmod seed`: a deterministic demo catalog."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from impexmod.cli import progress as progress_
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
@progress_.option
@with_appcontext
def command(products: int, seed: int, append: bool, progress: str) -> None:
    """Seed a demo catalog: products, variants, stock, prices, customers and orders (a large
    one shows its progress on stderr)."""
    from impexmod.factories.seed import TABLES, SeedRefused, seed_catalog

    try:
        with progress_.Meter("Seeding", progress, unit="products") as meter:
            report = seed_catalog(db.engine, products, seed, append=append, progress=meter.update)
    except SeedRefused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Seeded {products:,} products (seed {seed}) in {report.seconds:.1f} s:")
    for name in TABLES:
        if report.counts.get(name):
            click.echo(f"  {name:<32}{report.counts[name]:>10,}")
