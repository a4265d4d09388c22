"""Tasks (saved exporter/importer definitions) and runs (one execution each)."""

from __future__ import annotations

import enum
from datetime import UTC

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    false,
)

from impexmod.extensions import db
from impexmod.models.catalog import now
from impexmod.models.crypto import EncryptedJSON, EncryptedText


class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # Not started because the task's previous run was still going (see Run.reason).
    SKIPPED = "skipped"

    @classmethod
    def active(cls) -> tuple[str, ...]:
        """Statuses of a run that has not ended."""
        return (cls.QUEUED.value, cls.RUNNING.value)


class RunTrigger(enum.StrEnum):
    MANUAL = "manual"
    SCHEDULE = "schedule"
    # Started because another task it depends on ended (chains of tasks).
    # Started again because the previous attempt died (impexmod.dispatch.liveness,
    # Task.max_retries).
    RETRY = "retry"
    # Started because events were pushed to an inbound update feed (impexmod.orders.inbound).
    INBOUND = "inbound"
    # Started because export flags its order exporter acts on became ready
    # (impexmod.orders.exporter).
    FLAG = "flag"


class TaskKind(enum.StrEnum):
    """What a task is; the value is what the ``task.kind`` column stores."""

    EXPORT = "export"  # a recurring exporter (impexmod.export.definition)
    IMPORT = "import"  # a recurring importer (impexmod.importing.definition)
    MANUAL = "manual"  # the panel's one-off export (impexmod.export.manual)
    UPLOAD = "upload"  # a file uploaded in the panel (impexmod.importing.manual)
    # The orders channel (impexmod.orders, docs/orders.md): an exporter acting on one export
    # flag, and an inbound update feed whose runs apply the events it queued.
    ORDER_EXPORT = "order_export"
    INBOUND = "inbound"

    @classmethod
    def recurring(cls) -> tuple[TaskKind, ...]:
        """The kinds the merchant defines once and runs again (listed as recurring tasks)."""
        return (cls.EXPORT, cls.IMPORT)

    @classmethod
    def importing(cls) -> tuple[TaskKind, ...]:
        """The kinds whose runs import."""
        return (cls.IMPORT, cls.UPLOAD)

    @property
    def imports(self) -> bool:
        """Whether a run of this kind imports (else it exports)."""
        return self in self.importing()


class Task(db.Model):
    __tablename__ = "task"
    id = Column(Integer, primary_key=True)
    # Stored as its value in a VARCHAR(16), as before the enum (no constraint, no migration).
    kind = Column(
        Enum(
            TaskKind,
            native_enum=False,
            create_constraint=False,
            length=16,
            values_callable=lambda kinds: [k.value for k in kinds],
        ),
        nullable=False,
        default=TaskKind.EXPORT,
    )
    name = Column(String(128), nullable=False)
    entity = Column(String(32), nullable=False)
    format = Column(String(16), nullable=False, default="xml")
    strategy = Column(String(16), nullable=False, default="full")  # full | incremental
    options = Column(JSON, nullable=False, default=dict)
    # What a task needs but nobody may read back, encrypted at rest (impexmod.models.crypto):
    # an importer's {"password": ...} of its source's HTTP Basic auth. Never in ``options``,
    # which task descriptions show whole.
    secrets = Column(EncryptedJSON())
    # Part of the signed feed token: replacing it kills every URL signed before.
    token_nonce = Column(String(64), nullable=False)
    # Last change epoch included in a successful incremental run.
    last_epoch = Column(Integer)
    # The run holding the task; claimed atomically so a task never runs twice at once.
    lock_run_id = Column(Integer)
    # The full exporter whose current file an incremental exporter's URL serves to a client
    # whose cursor has expired (``?snapshot=full``); chosen by the merchant, never guessed.
    full_companion_id = Column(Integer, ForeignKey("task.id", ondelete="SET NULL"))
    # How many times a run that died (its process killed or lost) is started again.
    max_retries = Column(Integer, nullable=False, default=0, server_default="0")
    created_at = Column(DateTime, nullable=False, default=now)
    updated_at = Column(DateTime, nullable=False, default=now, onupdate=now)
    # Schedule text (impexmod.runs.schedule): none, daily@HH:MM, weekly@DAY@HH:MM,
    # monthly@D@HH:MM or a cron expression, at wall-clock times of ``timezone``.
    schedule = Column(String(128), nullable=False, default="none", server_default="none")
    timezone = Column(String(64))
    # The next slot (naive UTC); schedulers claim it with a conditional UPDATE.
    next_run_at = Column(DateTime, index=True)
    # Failures are always notified; successes only when asked.
    notify_success = Column(Boolean, nullable=False, default=False, server_default=false())
    notify_emails = Column(String(512))  # comma-separated addresses
    webhook_url = Column(String(512))
    webhook_secret = Column(EncryptedText())  # signs webhook bodies (HMAC-SHA256)
    # Selection (impexmod.export.selection): [{"field", "op", "value"}, ...], combined by
    # ``filter_match`` (all | any). None or [] exports everything.
    filters = Column(JSON)
    filter_match = Column(String(8), nullable=False, default="all", server_default="all")
    # A predefined template (impexmod.export.platforms) or a saved FieldTemplate, by name.
    template = Column(String(64))
    # A stylesheet from xslt/ or an uploaded Stylesheet, by name, applied to the native XML.
    stylesheet = Column(String(64))


class Run(db.Model):
    __tablename__ = "run"
    id = Column(Integer, primary_key=True)
    task_id = Column(Integer, ForeignKey("task.id", ondelete="CASCADE"), nullable=False, index=True)
    status = Column(String(16), nullable=False, default=RunStatus.QUEUED.value, index=True)
    trigger = Column(String(16), nullable=False, default="manual")
    job_id = Column(String(64))
    strategy = Column(String(16))
    queued_at = Column(DateTime, nullable=False, default=now)
    started_at = Column(DateTime)
    ended_at = Column(DateTime)
    heartbeat_at = Column(DateTime)
    # The process executing the run, "host:pid:start" (impexmod.dispatch.liveness.process_identity).
    worker = Column(String(128))
    # 1 for a first run, 2 for its first retry, ...
    attempt = Column(Integer, nullable=False, default=1, server_default="1")
    total = Column(Integer)
    done = Column(Integer, nullable=False, default=0)
    entity_count = Column(Integer, nullable=False, default=0)
    deleted_count = Column(Integer, nullable=False, default=0)
    bytes = Column(BigInteger)
    duration = Column(Float)
    epoch_from = Column(Integer)
    epoch_to = Column(Integer)
    file_key = Column(String(255))
    warnings = Column(JSON, nullable=False, default=list)
    error = Column(Text)
    # Why a run was skipped (its task was still running, ...).
    reason = Column(String(255))
    # The schedule slot this run was started for (naive UTC), None for manual runs.
    scheduled_for = Column(DateTime)
    # Timestamped lines telling what the run did, oldest first.
    log = Column(Text)
    # When the retention job removed the run's file (it is no longer downloadable).
    file_removed_at = Column(DateTime)

    # Keeps the log within a TEXT column on every database (64 KiB on MariaDB).
    LOG_LIMIT = 60_000

    def log_line(self, message: str) -> None:
        """Append a timestamped line to the run's log (the caller commits)."""
        stamp = now().replace(tzinfo=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        line = " ".join(message.splitlines())  # one entry, one line (errors span several)
        text = (self.log or "") + f"{stamp} {line}\n"
        if len(text.encode()) > self.LOG_LIMIT:
            # Keep the first lines (what the run set out to do) and the latest ones, in whole
            # lines; character bounds small enough for any UTF-8 width.
            mark = "[...]\n"
            if mark in text:
                head, _, rest = text.partition(mark)
            else:
                cut = text.rfind("\n", 0, self.LOG_LIMIT // 16) + 1
                head, rest = text[:cut], text[cut:]
            tail = rest[-(self.LOG_LIMIT // 8) :]
            text = head + mark + tail[tail.find("\n") + 1 :]
        self.log = text
