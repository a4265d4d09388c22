"""secrets at rest: webhook signing secrets and importers' passwords encrypted

Revision ID: 0009_secrets
Revises: 0008

Encrypts what was kept in clear with the app's encryption keys (IMPEXMOD_ENCRYPTION_KEY, or the
instance folder's encryption_key): ``task.webhook_secret`` in place (TEXT now: a token is longer
than the secret), and an importer's ``options["password"]`` moved to the new encrypted
``task.secrets`` as {"password": ...} (the destinations, made after, are encrypted from their
start). The downgrade decrypts them back. Self-contained (Fernet
and the key from the config, not impexmod's models), so that later changes to the models do not
change what this revision does. Written by hand, portable to SQLite, PostgreSQL and MariaDB.
"""

import json

import sqlalchemy as sa
from alembic import op
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app

revision = "0009_secrets"
down_revision = "0008"
branch_labels = None
depends_on = None

task = sa.table(
    "task",
    sa.column("id", sa.Integer),
    sa.column("options", sa.JSON),
    sa.column("webhook_secret", sa.Text),
    sa.column("secrets", sa.Text),
)


def _keyring() -> MultiFernet:
    return MultiFernet([Fernet(k) for k in current_app.config["ENCRYPTION_KEYS"]])


def _decrypt(keyring: MultiFernet, token: str, where: str) -> str:
    try:
        return keyring.decrypt(token.encode()).decode()
    except InvalidToken:
        raise RuntimeError(
            f"{where} cannot be decrypted with IMPEXMOD_ENCRYPTION_KEY: run the downgrade "
            "with the key the values were encrypted with"
        ) from None


def upgrade():
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.add_column(sa.Column("secrets", sa.Text(), nullable=True))
        batch_op.alter_column(
            "webhook_secret", existing_type=sa.String(length=128), type_=sa.Text()
        )
    keyring = _keyring()
    conn = op.get_bind()
    rows = conn.execute(sa.select(task.c.id, task.c.options, task.c.webhook_secret)).all()
    for row in rows:
        values = {}
        if row.webhook_secret:
            values["webhook_secret"] = keyring.encrypt(row.webhook_secret.encode()).decode()
        options = row.options if isinstance(row.options, dict) else None
        if options and "password" in options:
            options = dict(options)
            password = options.pop("password")
            values["options"] = options
            if password:
                clear = json.dumps({"password": password}, sort_keys=True)
                values["secrets"] = keyring.encrypt(clear.encode()).decode()
        if values:
            conn.execute(task.update().where(task.c.id == row.id).values(**values))


def downgrade():
    keyring = _keyring()
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(task.c.id, task.c.options, task.c.webhook_secret, task.c.secrets)
    ).all()
    for row in rows:
        values = {}
        if row.webhook_secret:
            where = f"task {row.id}'s webhook_secret"
            values["webhook_secret"] = _decrypt(keyring, row.webhook_secret, where)
        if row.secrets:
            secrets = json.loads(_decrypt(keyring, row.secrets, f"task {row.id}'s secrets"))
            if secrets.get("password"):
                values["options"] = {**(row.options or {}), "password": secrets["password"]}
        if values:
            conn.execute(task.update().where(task.c.id == row.id).values(**values))
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.alter_column(
            "webhook_secret", existing_type=sa.Text(), type_=sa.String(length=128)
        )
        batch_op.drop_column("secrets")
