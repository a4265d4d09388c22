"""Destinations of an exporter (where each successful run's file is delivered) and the record
of each delivery of a run to a destination (impexmod.dispatch.deliveries)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    true,
)

from impexmod.extensions import db
from impexmod.models.catalog import now
from impexmod.models.crypto import EncryptedJSON

__all__ = ["DeliveryOutcome", "RunDelivery", "TaskDestination"]


class DeliveryOutcome:
    """The values of ``delivery.outcome``."""

    OK = "ok"
    FAILED = "failed"
    RETRYING = "retrying"  # failed, tried again at ``next_attempt_at``


class TaskDestination(db.Model):
    """One place an exporter's file goes after each successful run (SFTP, FTP(S), e-mail,
    webhook, S3): its kind, its plain settings, and its secrets kept apart."""

    __tablename__ = "destination"
    id = Column(Integer, primary_key=True)
    task_id = Column(Integer, ForeignKey("task.id", ondelete="CASCADE"), nullable=False, index=True)
    kind = Column(String(16), nullable=False)
    label = Column(String(128), nullable=False)
    position = Column(Integer, nullable=False, default=0)
    enabled = Column(Boolean, nullable=False, default=True, server_default=true())
    # Every setting but the secrets (host, port, folder, name_template, ...).
    settings = Column(JSON, nullable=False, default=dict)
    # Passwords, private keys, tokens, the webhook secret: read and written only through
    # ``get_secrets``/``set_secrets`` (a JSON object as text, or the encrypted type).
    secrets = Column("secrets", EncryptedJSON())  # encrypted at rest (impexmod.models.crypto)
    # What a delivery learned and later ones check: the SFTP host key accepted on first use.
    learned = Column(JSON)
    created_at = Column(DateTime, nullable=False, default=now)
    updated_at = Column(DateTime, nullable=False, default=now, onupdate=now)

    def get_secrets(self) -> dict[str, str]:
        """The secret settings, decrypted (the one reader of the ``secrets`` column)."""
        return dict(self.secrets or {})

    def set_secrets(self, values: dict[str, str]) -> None:
        """Replace the secret settings (the one writer of the ``secrets`` column)."""
        kept = {k: v for k, v in values.items() if v not in (None, "")}
        self.secrets = kept or None

    def delivery_settings(self) -> dict[str, Any]:
        """Everything a transport needs: what was learned, the settings (a host key the
        merchant set wins over a learned one), then the secrets."""
        return {**(self.learned or {}), **(self.settings or {}), **self.get_secrets()}


class RunDelivery(db.Model):
    """The delivery of one run's file to one destination: its latest attempt's outcome, and
    every attempt in ``attempts``."""

    __tablename__ = "delivery"
    id = Column(Integer, primary_key=True)
    run_id = Column(Integer, ForeignKey("run.id", ondelete="CASCADE"), nullable=False, index=True)
    # Kept (NULL) when the destination is removed, with its kind and label copied here.
    destination_id = Column(
        Integer, ForeignKey("destination.id", ondelete="SET NULL"), nullable=True, index=True
    )
    kind = Column(String(16), nullable=False)
    label = Column(String(128), nullable=False)
    attempt = Column(Integer, nullable=False, default=0)  # attempts made so far
    started_at = Column(DateTime)  # of the latest attempt
    ended_at = Column(DateTime)
    outcome = Column(String(16), nullable=False, default=DeliveryOutcome.RETRYING, index=True)
    bytes = Column(BigInteger)
    remote_name = Column(String(512))
    error = Column(String(512))
    next_attempt_at = Column(DateTime, index=True)
    # [{"attempt", "started_at", "ended_at", "ok", "error"}, ...], oldest first.
    attempts = Column(JSON, nullable=False, default=list)
    created_at = Column(DateTime, nullable=False, default=now)
