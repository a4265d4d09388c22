"""`impexmod users ...`: merchant accounts of the admin panel."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from impexmod.admin import users


@click.group("users")
def command():
    """Create and list the merchant accounts of the admin panel."""


@command.command("create")
@click.option("--email", required=True, help="The merchant's e-mail address (the login).")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help=f"At least {users.MIN_PASSWORD} characters; asked for when not given.",
)
@with_appcontext
def create(email, password):
    """Create a merchant account that can sign in to /admin."""
    try:
        user = users.create_user(email, password)
    except users.InvalidUser as exc:
        raise click.BadParameter(exc.message, param_hint=f"--{exc.field}") from None
    click.echo(f"Account {user.id} created for {user.email}; sign in at /admin.")


@command.command("set-password")
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@with_appcontext
def set_password(email, password):
    """Give an existing account a new password."""
    user = users.find_user(email)
    if user is None:
        raise click.ClickException(f"no account for {email}")
    try:
        users.set_password(user, password)
    except users.InvalidUser as exc:
        raise click.BadParameter(exc.message, param_hint=f"--{exc.field}") from None
    click.echo(f"Password of {user.email} changed.")


@command.command("list")
@with_appcontext
def list_():
    """List the accounts."""
    for user in users.list_users():
        state = "active" if user.active else "disabled"
        last = user.last_login_at.isoformat(sep=" ") if user.last_login_at else "never"
        click.echo(f"{user.id:>4}  {user.email:<40} {state:<9} last sign-in: {last}")


@command.command("set-language")
@click.option("--email", required=True)
@click.option(
    "--language",
    required=True,
    type=click.Choice(["en", "fr", "browser"]),
    help="The panel's language for this account; browser: the browser's (Accept-Language).",
)
@with_appcontext
def set_language(email, language):
    """Choose the language the panel speaks to an account."""
    user = users.find_user(email)
    if user is None:
        raise click.ClickException(f"no account for {email}")
    users.set_language(user, None if language == "browser" else language)
    click.echo(f"Language of {user.email}: {user.language or 'the browser’s'}.")
