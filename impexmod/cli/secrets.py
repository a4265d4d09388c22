"""``impexmod secrets``: the keys that encrypt secrets at rest (impexmod.models.crypto)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from impexmod.config import keep_encryption_keys, new_encryption_key, read_encryption_keys
from impexmod.extensions import db
from impexmod.models.crypto import SecretUnreadable, reencrypt

ENV_STEPS = """\
The keys come from IMPEXMOD_ENCRYPTION_KEY, which this command cannot change on every machine.
Rotate them in three steps:
  1. `impexmod secrets generate-key` prints a NEW key.
  2. On every web process, worker and scheduler, set IMPEXMOD_ENCRYPTION_KEY=NEW,OLD and
     restart them (NEW encrypts, both decrypt).
  3. Run `impexmod secrets rotate-key` again on one machine, then set
     IMPEXMOD_ENCRYPTION_KEY=NEW everywhere."""


@click.group("secrets")
def command():
    """The encryption keys of the secrets kept in the database."""


@command.command("generate-key")
def generate_key():
    """Print a fresh encryption key (for IMPEXMOD_ENCRYPTION_KEY); nothing is changed."""
    click.echo(new_encryption_key())


@command.command("rotate-key")
@click.option(
    "--batch", default=500, show_default=True, type=click.IntRange(min=1), help="Rows per commit."
)
@with_appcontext
def rotate_key(batch):
    """Encrypt every secret in the database under a new key, then retire the old keys.

    \b
    Keys kept in the instance folder (IMPEXMOD_ENCRYPTION_KEY unset): a new key is generated
    and put first in the instance folder's encryption_key file (the old keys still decrypt),
    every encrypted column of every table is re-encrypted, then the file keeps the new key
    alone. The other processes of the machine read the file again when it changes.
    Keys from IMPEXMOD_ENCRYPTION_KEY (several machines): give it NEW,OLD everywhere first;
    this re-encrypts everything under NEW and says when OLD may be removed.
    Interrupted, it is safe to run again: any of the listed keys decrypts.
    """
    cfg = current_app.config
    path = cfg.get("ENCRYPTION_KEY_FILE")
    if path:
        old = read_encryption_keys(path)
        keep_encryption_keys(path, [new_encryption_key(), *old])
        click.echo(f"A new key is first in {path}; {len(old)} old key(s) still decrypt.")
    elif len(cfg["ENCRYPTION_KEYS"]) < 2:
        raise click.ClickException(ENV_STEPS)
    try:
        with db.engine.connect() as connection:
            done = reencrypt(connection, db.metadata, batch=batch)
    except SecretUnreadable as exc:
        raise click.ClickException(str(exc)) from None
    for name, count in sorted(done.counts.items()):
        click.echo(f"  {name}: {count} value(s) re-encrypted")
    if done.skipped:
        click.echo(f"  {done.skipped} value(s) changed meanwhile, already under the new key")
    if path:
        keep_encryption_keys(path, read_encryption_keys(path)[:1])
        click.echo(f"Done: the old keys are retired; {path} holds the new key alone.")
    else:
        click.echo(
            "Done: every secret is encrypted with the first key of IMPEXMOD_ENCRYPTION_KEY. "
            "Set IMPEXMOD_ENCRYPTION_KEY to that key alone on every machine and restart them."
        )
