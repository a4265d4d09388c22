"""Flask extensions, created unbound and bound in the application factory."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from flask_limiter import Limiter
    from limits.strategies import RateLimiter

# Explicit constraint names keep migrations identical on SQLite, PostgreSQL and MariaDB.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING))

LIMITER = "impexmod.limiter"


@dataclass
class Throttle:
    """An app's Flask-Limiter, the key prefix of its counters, and the in-memory fallback."""

    limiter: Limiter
    prefix: str
    fallback: RateLimiter

    @property
    def strategy(self) -> RateLimiter:
        """The moving-window strategy on the configured storage (Redis or memory)."""
        return self.limiter.limiter


def init_limiter(app: Flask) -> Throttle:
    """Bind a Flask-Limiter to ``app``: counters in its Redis (REDIS_URL) if any, else in memory.

    It limits no route by itself (sign-ins are counted explicitly, see admin.auth): partners
    polling feeds are never limited and get no rate-limit headers.
    """
    # Imported here: the models import this module, and a feed's parsing process needs no
    # limiter (45 ms of imports).
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address
    from limits.storage import MemoryStorage
    from limits.strategies import MovingWindowRateLimiter

    cfg = app.config
    # One Limiter per app, not a module-level one: it keeps its storage and prefix from the
    # app it was bound to, and tests (or a CLI) may build several apps in one process.
    limiter = Limiter(
        get_remote_address,
        storage_uri=cfg.get("RATELIMIT_STORAGE_URI") or cfg.get("REDIS_URL") or "memory://",
        # Errors surface as limits' StorageError, so that admin.auth can fall back to memory.
        storage_options={"wrap_exceptions": True},
        # A moving window: a lock lasts until the oldest counted failure is a window old, and
        # no window boundary lets twice the limit through in a row.
        strategy="moving-window",
        default_limits=[],
        application_limits=[],
        headers_enabled=False,
    )
    # No limit applies to any request through the middleware, whatever RATELIMIT_* says.
    limiter.request_filter(lambda: True)
    limiter.init_app(app)
    prefix = cfg.get("LOGIN_THROTTLE_PREFIX") or f"impexmod:{cfg['SHOP_ID']}:login"
    throttle = Throttle(limiter, prefix, MovingWindowRateLimiter(MemoryStorage()))
    app.extensions[LIMITER] = throttle
    return throttle


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Foreign keys make ON DELETE CASCADE work; WAL lets feeds be read while the shop writes.
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
