"""Configuration: embedded defaults, overridden by ``IMPEXMOD_*`` environment variables."""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import uuid
from pathlib import Path

from flask import Flask

DEFAULTS = {
    "PUBLIC_URL": "http://127.0.0.1:5000",
    "TIMEZONE": "Europe/Paris",
    "REDIS_URL": None,
    # Unset: "impexmod-<shop id>", so that instances sharing a Redis never share a queue.
    "QUEUE_NAME": None,
    # Rows per chunk read from the database and written to a feed.
    "CHUNK_SIZE": 1000,
    # Seconds an order exporter waits before its second attempt at a send, doubled at each
    # further attempt (at most 60 s between two attempts): impexmod.orders.sending.
    "ORDER_EXPORT_BACKOFF": 1.0,
    # A full export of at least 2 x EXPORT_PART_MIN entities (in XML, CSV or JSON Lines, with
    # Redis) is cut into up to EXPORT_PARTS key ranges that the free workers write in
    # parallel, then joined into one feed (impexmod.export.parts). EXPORT_PARTS 1: never.
    "EXPORT_PARTS": 4,
    "EXPORT_PART_MIN": 50000,
    # Reverse proxies in front of the web processes whose X-Forwarded-* headers are believed.
    "TRUSTED_PROXIES": 0,
    # A run's process refreshes its heartbeat this often (impexmod.dispatch.liveness).
    "HEARTBEAT_SECONDS": 10,
    # A run on another machine whose heartbeat is older than this is dead (on this machine a
    # dead process is seen at once), so its task may run again.
    "RUN_STALE_SECONDS": 180,
    # With FEED_STORE=s3://bucket/prefix: the S3-compatible server (unset: AWS itself), its
    # region, and credentials (unset: boto3's chain, AWS_ACCESS_KEY_ID... or an instance role).
    "S3_ENDPOINT_URL": None,
    "S3_REGION": None,
    "S3_ACCESS_KEY_ID": None,
    "S3_SECRET_ACCESS_KEY": None,
    "S3_SESSION_TOKEN": None,
    # Feeds over this many MiB go up as multipart uploads of parts this size (S3's least: 5).
    "S3_MULTIPART_MB": 8,
    # Write a gzip twin of each feed after publishing it, served to clients that accept gzip.
    "GZIP_FEEDS": True,
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    # Seconds between two looks of the scheduler at due tasks (it also wakes for the next slot).
    "SCHEDULER_INTERVAL": 15,
    # Days a run's file stays downloadable; the retention job removes older ones.
    "RETENTION_DAYS": 30,
    # E-mail notifications: no SMTP host, no e-mail.
    "SMTP_HOST": None,
    "SMTP_PORT": 25,
    "SMTP_USERNAME": None,
    "SMTP_PASSWORD": None,
    "SMTP_FROM": "impexmod@localhost",
    "SMTP_STARTTLS": False,
    # A failed delivery is retried after 1, 2, 4, ... times this, up to NOTIFY_MAX_ATTEMPTS tries.
    "NOTIFY_RETRY_SECONDS": 60,
    "NOTIFY_MAX_ATTEMPTS": 6,
    # Seconds an e-mail or webhook delivery may take before it counts as failed.
    "NOTIFY_TIMEOUT": 10,
    # Deliveries of a run's file to its exporter's destinations (impexmod.dispatch.deliveries):
    # seconds any network wait may take (connecting, each answer, each read or write)...
    "DELIVERY_TIMEOUT": 30,
    # ... and for the panel's "Test connection".
    "DELIVERY_CHECK_TIMEOUT": 10,
    # A retryable failure is tried again after 1, 2, 4, ... times this, up to this many tries.
    "DELIVERY_RETRY_SECONDS": 60,
    "DELIVERY_MAX_ATTEMPTS": 4,
    # Seconds the download link of a webhook (or a too-large e-mail) stays valid.
    "DELIVERY_LINK_SECONDS": 7 * 24 * 3600,
    # Currency of the prices in platform feeds (Google Shopping, Amazon, ...), ISO 4217.
    "CURRENCY": "EUR",
    # The storefront, for product links in platform feeds (default: PUBLIC_URL).
    "SHOP_URL": None,
    # Language of platform feeds and single-language columns (default: the shop's first).
    "FEED_LANGUAGE": None,
    # A stylesheet that is not record-wise runs on the whole native document: its limit.
    "XSLT_MAX_INPUT_BYTES": 256 * 1024 * 1024,
    # A manual export of fewer entities downloads at once; more runs in the background.
    "MANUAL_EXPORT_LIMIT": 1000,
    # An uploaded file smaller than this is dry-run (and imported) while the merchant waits;
    # a larger one runs in the background and its run page follows it.
    "MANUAL_IMPORT_WAIT_BYTES": 1024 * 1024,
    # Failed sign-ins allowed (Flask-Limiter notation; "" for no limit) per account: five
    # typos are more than a merchant makes, and a guesser gets 480 tries a day, not millions.
    "LOGIN_ACCOUNT_LIMIT": "5 per 15 minutes",
    # ... and per client address, across accounts (password spraying), with room for an office
    # of merchants behind one address.
    "LOGIN_ADDRESS_LIMIT": "20 per 15 minutes",
    # Prefix of the sign-in counters in Redis (default "impexmod:<SHOP_ID>:login").
    "LOGIN_THROTTLE_PREFIX": None,
    # Session and remember-me cookies only over HTTPS: None means "when PUBLIC_URL is https".
    "SESSION_COOKIE_SECURE": None,
    "REMEMBER_COOKIE_SECURE": None,
}


# The instance file that keeps the encryption keys when IMPEXMOD_ENCRYPTION_KEY is not set.
ENCRYPTION_KEY_FILE = "encryption_key"


def _kept_value(instance: Path, name: str, make) -> str:
    """Read a value kept in the instance folder, generating and saving it the first time."""
    path = instance / name
    if path.exists():
        return path.read_text().strip()
    value = make()
    # Written whole under a temporary name, then linked in: two processes starting at once
    # (a web process and a worker) agree on one value, and nobody reads a half-written file.
    temporary = instance / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    try:
        os.link(temporary, path)
    except FileExistsError:
        return path.read_text().strip()
    finally:
        temporary.unlink()
    return value


def new_encryption_key() -> str:
    """A fresh Fernet key (32 random bytes, URL-safe base64), as Fernet.generate_key makes."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def parse_encryption_keys(value: str) -> list[str]:
    """The keys of an IMPEXMOD_ENCRYPTION_KEY value (comma-, space- or line-separated, the
    current key first); ValueError, naming the key's position but never its text, if one is
    not a Fernet key."""
    keys = [k for k in re.split(r"[\s,]+", str(value)) if k]
    for position, key in enumerate(keys, 1):
        try:
            raw = base64.urlsafe_b64decode(key.encode())
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ValueError(
                f"IMPEXMOD_ENCRYPTION_KEY: key {position} of {len(keys)} is not a Fernet key "
                "(32 bytes in URL-safe base64; make one with `impexmod secrets generate-key`)"
            )
    if not keys:
        raise ValueError("IMPEXMOD_ENCRYPTION_KEY is empty")
    return keys


def keep_encryption_keys(path: str | Path, keys: list[str]) -> None:
    """Replace the instance folder's key file with ``keys`` (current first), atomically, 0600."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(keys) + "\n")
    os.replace(temporary, path)


def read_encryption_keys(path: str | Path) -> list[str]:
    """The keys kept in the instance folder's key file, current first."""
    return parse_encryption_keys(Path(path).read_text())


def _encryption_keys(cfg, instance: Path) -> None:
    # From the environment: every web process and worker must be given the same keys. Else
    # generated once and kept in the instance folder (one machine), like the secret key.
    if cfg.get("ENCRYPTION_KEY"):
        cfg["ENCRYPTION_KEY_FILE"] = None
        cfg["ENCRYPTION_KEYS"] = parse_encryption_keys(cfg["ENCRYPTION_KEY"])
        return
    cfg["ENCRYPTION_KEY_FILE"] = str(instance / ENCRYPTION_KEY_FILE)
    kept = _kept_value(instance, ENCRYPTION_KEY_FILE, new_encryption_key)
    cfg["ENCRYPTION_KEYS"] = parse_encryption_keys(kept)


def load(app: Flask, overrides: dict | None = None) -> None:
    """Fill ``app.config`` from defaults, the environment and ``overrides`` (tests)."""
    app.config.update(DEFAULTS)
    app.config.from_prefixed_env("IMPEXMOD")
    if overrides:
        app.config.update(overrides)
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    cfg = app.config
    cfg.setdefault("DATABASE_URL", f"sqlite:///{instance / 'impexmod.sqlite3'}")
    cfg["SQLALCHEMY_DATABASE_URI"] = str(cfg["DATABASE_URL"])
    cfg.setdefault("FEED_STORE", str(instance / "feeds"))
    if not cfg.get("SECRET_KEY"):
        cfg["SECRET_KEY"] = _kept_value(instance, "secret_key", lambda: secrets.token_hex(32))
    _encryption_keys(cfg, instance)
    if not cfg.get("SHOP_ID"):
        cfg["SHOP_ID"] = _kept_value(instance, "shop_id", lambda: uuid.uuid4().hex[:12])
    cfg["SHOP_ID"] = str(cfg["SHOP_ID"])
    cfg["PUBLIC_URL"] = str(cfg["PUBLIC_URL"]).rstrip("/")
    cfg["SHOP_URL"] = str(cfg.get("SHOP_URL") or cfg["PUBLIC_URL"]).rstrip("/")
    uri = cfg["SQLALCHEMY_DATABASE_URI"]
    options = dict(cfg["SQLALCHEMY_ENGINE_OPTIONS"])
    if uri.startswith("sqlite"):
        # Writers wait for each other instead of failing with "database is locked".
        options["connect_args"] = {"timeout": 60}
    elif uri.startswith(("mysql", "mariadb")):
        # The same visibility as PostgreSQL: each statement sees what is committed, so that
        # polling a run's status or claiming a task never reads an old snapshot.
        options["isolation_level"] = "READ COMMITTED"
    cfg["SQLALCHEMY_ENGINE_OPTIONS"] = options
