"""Secrets at rest: column types that keep a value encrypted in the database.

A column typed ``EncryptedText`` or ``EncryptedJSON`` is stored as a Fernet token (text) and
read back as the clear value; nothing else changes for the code that uses it. The keys are the
app's ``ENCRYPTION_KEYS`` (impexmod.config: ``IMPEXMOD_ENCRYPTION_KEY``, or generated once in
the instance folder): the first encrypts, every one decrypts (MultiFernet), so that a key is
rotated without a moment when a value cannot be read (impexmod.cli.secrets). Every column of
these types is found by ``encrypted_columns``, so a new table is covered by rotation as soon as
it declares one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app, has_app_context
from sqlalchemy import Column, MetaData, Table, Text, and_, column, event, select, table
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator

from impexmod.config import read_encryption_keys

# The app's keyring, rebuilt when its keys change (as rotation does).
_KEYRING = "impexmod.keyring"
# The key file's identity when its keys were last read.
_KEY_FILE_SEEN = "impexmod.key_file_seen"


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted: the message names the column, never the value."""


def keyring(keys: Sequence[str] | None = None) -> MultiFernet:
    """A MultiFernet of ``keys``, or of the current app's ENCRYPTION_KEYS."""
    if keys is not None:
        return MultiFernet([Fernet(k) for k in keys])
    if not has_app_context():
        raise SecretUnreadable("an encrypted column is used outside an application context")
    keys = _current_keys()
    cached = current_app.extensions.get(_KEYRING)
    if cached is None or cached[0] != keys:
        cached = (keys, keyring(keys))
        current_app.extensions[_KEYRING] = cached
    return cached[1]


def _current_keys() -> tuple[str, ...]:
    cfg = current_app.config
    path = cfg.get("ENCRYPTION_KEY_FILE")
    if path:
        # Keys kept in the instance folder are read again when the file changes, so that the
        # other processes of the machine follow `impexmod secrets rotate-key` without a restart.
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            stat = None
        seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size) if stat else None
        if seen and current_app.extensions.get(_KEY_FILE_SEEN) != seen:
            cfg["ENCRYPTION_KEYS"] = read_encryption_keys(path)
            current_app.extensions[_KEY_FILE_SEEN] = seen
    return tuple(cfg["ENCRYPTION_KEYS"])


def encrypt(clear: str, keys: Sequence[str] | None = None) -> str:
    """The Fernet token of ``clear`` under the first key."""
    return keyring(keys).encrypt(clear.encode()).decode("ascii")


def decrypt(token: str, where: str = "a value", keys: Sequence[str] | None = None) -> str:
    """The clear text of ``token``; SecretUnreadable naming ``where`` if no key opens it."""
    try:
        return keyring(keys).decrypt(str(token).encode()).decode()
    except (InvalidToken, UnicodeError):
        raise SecretUnreadable(
            f"{where} cannot be decrypted with IMPEXMOD_ENCRYPTION_KEY: the key is not the one "
            "it was encrypted with (give every machine the same keys, the current one first), "
            "or the value was not written by impexmod"
        ) from None


class Encrypted(TypeDecorator):
    """A value stored as a Fernet token in a TEXT column; None stays NULL."""

    impl = Text
    cache_ok = True

    def __init__(self) -> None:
        super().__init__()
        # "table.column", set when the column joins its table, for error messages.
        self.where = "an encrypted column"

    def serialize(self, value: Any) -> str:
        return value

    def deserialize(self, text: str) -> Any:
        return text

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return encrypt(self.serialize(value))

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return self.deserialize(decrypt(value, self.where))

    def compare_values(self, x, y) -> bool:
        return x == y


class EncryptedText(Encrypted):
    """A string kept encrypted (a password, a token, a signing secret)."""

    def serialize(self, value: Any) -> str:
        return str(value)


class EncryptedJSON(Encrypted):
    """A JSON document kept encrypted (a destination's or a task's secret settings); saved
    when it is replaced, not when it is changed in place, like a JSON column."""

    def serialize(self, value: Any) -> str:
        return json.dumps(value, sort_keys=True)

    def deserialize(self, text: str) -> Any:
        return json.loads(text)


@event.listens_for(Column, "after_parent_attach")
def _name_column(column, table) -> None:
    if isinstance(column.type, Encrypted) and isinstance(table, Table):
        column.type.where = f"{table.name}.{column.name}"


def encrypted_columns(metadata: MetaData) -> Iterator[tuple[Table, list[Column]]]:
    """Each table of ``metadata`` that has encrypted columns, with them."""
    for each in metadata.sorted_tables:
        found = [c for c in each.columns if isinstance(c.type, Encrypted)]
        if found:
            yield each, found


@dataclass
class Reencrypted:
    """What a re-encryption did: values per "table.column", and those changed meanwhile."""

    counts: dict[str, int] = field(default_factory=dict)
    skipped: int = 0

    @property
    def total(self) -> int:
        """Values re-encrypted in all."""
        return sum(self.counts.values())


def reencrypt(connection: Connection, metadata: MetaData, batch: int = 500) -> Reencrypted:
    """Encrypt every value of every encrypted column again under the first key (each token
    read raw, opened by any key, rewritten), committing every ``batch`` rows.

    Safe to run again after an interruption: a value is opened by any of the keys. A value
    changed by another process meanwhile is left alone (it was written with the first key).
    SecretUnreadable naming the column and row for a value that no key opens.
    """
    ring = keyring()
    done = Reencrypted()
    for found, columns in encrypted_columns(metadata):
        keys = list(found.primary_key.columns)
        raw = table(
            found.name,
            *(column(k.name, k.type) for k in keys),
            *(column(c.name, Text()) for c in columns),
        )
        for col in columns:
            done.counts.setdefault(f"{found.name}.{col.name}", 0)
        rows = connection.execute(select(*(raw.c[k.name] for k in keys))).all()
        if connection.in_transaction():
            connection.commit()
        for start in range(0, len(rows), batch):
            with connection.begin():
                for row in rows[start : start + batch]:
                    match = and_(*(raw.c[k.name] == v for k, v in zip(keys, row, strict=True)))
                    values = connection.execute(
                        select(*(raw.c[c.name] for c in columns)).where(match)
                    ).first()
                    for col, token in zip(columns, values or (), strict=False):
                        if token is None:
                            continue
                        where = f"{found.name}.{col.name} (row {', '.join(map(str, row))})"
                        try:
                            fresh = ring.rotate(token.encode()).decode("ascii")
                        except InvalidToken:
                            raise SecretUnreadable(
                                f"{where} cannot be decrypted with any key of "
                                "IMPEXMOD_ENCRYPTION_KEY; the values before it are re-encrypted, "
                                "the others still need the old keys: keep them"
                            ) from None
                        changed = connection.execute(
                            raw.update()
                            .where(match, raw.c[col.name] == token)
                            .values({col.name: fresh})
                        )
                        name = f"{found.name}.{col.name}"
                        if changed.rowcount:
                            done.counts[name] += 1
                        else:
                            done.skipped += 1
    return done
