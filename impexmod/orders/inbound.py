"""Inbound update feeds: what one is (a task of kind ``inbound``), its own token and URL, and
the durable queue of the events pushed to it, fetched from its polled URL or read from a file.

Events are stored before anything is done with them: each body's events are inserted into
``inbound_event`` and committed, then a run applies them (impexmod.orders.shipping). A
duplicate is recognised by the unique (task, event id): ids already stored are filtered out
first, and when a concurrent push stored one of the rest meanwhile (the insert hits the unique
constraint), the batch is inserted again row by row, each duplicate counted, not stored. No
dialect's upsert is needed, and the same event sent by two clients at once is stored once.

The token signs (task id, nonce) like a feed URL's, with another salt: a feed token never opens
an inbound URL, nor the reverse. Rotating the nonce kills the old URL.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError

from impexmod.extensions import db
from impexmod.importing import netguard, sources
from impexmod.importing.errors import ImportRefused
from impexmod.models import InboundEvent, InboundStatus, Task, TaskKind, now
from impexmod.orders import events as inbound_events
from impexmod.runs import tasks, tokens
from impexmod.runs.history import describe_run
from impexmod.runs.slots import default_timezone, local_iso
from impexmod.runs.tokens import new_nonce

SALT = "impexmod.inbound-url"
MAX_BYTES = 1024 * 1024
"""A pushed body over this many bytes is refused with 413 (``IMPEXMOD_INBOUND_MAX_BYTES``)."""
FILE_MAX_BYTES = 64 * 1024 * 1024
"""A polled download or a pushed file over this is refused (``IMPEXMOD_INBOUND_FILE_MAX_BYTES``)."""
SCHEDULE = "*/5 * * * *"
"""An inbound feed's default schedule: its safety net (docs/orders.md, "Inbound update feeds")."""
_LOOKUP = 500  # event ids per query looking for those already stored


class InboundTooLarge(ValueError):
    """A body or file over the inbound limit."""


@dataclass
class Receipt:
    """What happened to a body's events: queued, already stored, or rejected with why."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[inbound_events.Rejected] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The 202 answer."""
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [r.as_dict() for r in self.rejected],
        }


def max_bytes() -> int:
    """The largest pushed body accepted, in bytes."""
    return int(current_app.config.get("INBOUND_MAX_BYTES") or MAX_BYTES)


def file_max_bytes() -> int:
    """The largest polled download or pushed file accepted, in bytes."""
    return int(current_app.config.get("INBOUND_FILE_MAX_BYTES") or FILE_MAX_BYTES)


# -- tokens ------------------------------------------------------------------------------------


def make_token(task: Task) -> str:
    """The token in the inbound URL of a feed (its own salt: a feed token never opens it)."""
    return tokens.sign(task, SALT)


def task_for_token(token: str) -> Task | None:
    """The inbound feed a token opens, or None (tampered, unknown, rotated, or not inbound)."""
    task = tokens.task_for_token(token, SALT)
    return task if task is not None and task.kind == TaskKind.INBOUND else None


def inbound_url(task: Task) -> str:
    """The URL a carrier POSTs its events to."""
    return f"{current_app.config['PUBLIC_URL']}/inbound/{make_token(task)}"


# -- definitions -------------------------------------------------------------------------------


def _check_url(url: str | None) -> str | None:
    url = (url or "").strip()
    if not url:
        return None
    if len(url) > 2000:
        raise tasks.InvalidTask("url", "at most 2000 characters")
    if not url.startswith(("http://", "https://")):
        raise tasks.InvalidTask("url", "a polled URL starts with http:// or https://")
    try:
        netguard.check_url(url)  # early, to say it now; each download is checked again
    except netguard.BlockedAddress as exc:
        raise tasks.InvalidTask("url", str(exc)) from None
    return url


def create_inbound(
    name: str,
    url: str | None = None,
    schedule: str | None = SCHEDULE,
    timezone: str | None = None,
) -> Task:
    """Save an inbound feed (pushed to, and polled from ``url`` if given); InvalidTask naming
    the field, with nothing saved."""
    name = (name or "").strip()
    if not name or len(name) > 128:
        raise tasks.InvalidTask("name", "1 to 128 characters")
    url = _check_url(url)
    when = tasks.check_when(schedule, timezone, None, None)
    task = Task(
        kind=TaskKind.INBOUND,
        name=name,
        entity="orders",
        format="json",
        options={"url": url} if url else {},
        token_nonce=new_nonce(),
    )
    tasks.apply_when(task, when)
    db.session.add(task)
    db.session.commit()
    return task


def get_inbound(task_id: int) -> Task:
    """The inbound feed with this id (TaskNotFound if there is none)."""
    task = db.session.get(Task, task_id)
    if task is None or task.kind != TaskKind.INBOUND:
        raise tasks.TaskNotFound(f"no inbound feed with id {task_id}")
    return task


def list_inbound() -> list[Task]:
    """Every inbound feed, oldest first."""
    return tasks.list_tasks(kind=TaskKind.INBOUND.value)


def rotate(task: Task) -> str:
    """Give the feed a new inbound URL; the old one answers 404 from now on."""
    task.token_nonce = new_nonce()
    db.session.commit()
    return inbound_url(task)


def delete_inbound(task: Task) -> None:
    """Delete an inbound feed with its runs and its events."""
    db.session.execute(InboundEvent.__table__.delete().where(InboundEvent.task_id == task.id))
    tasks.delete_task(task)


def counts(task: Task) -> dict[str, int]:
    """How many of the feed's events are pending, applied and in error."""
    rows = db.session.execute(
        select(InboundEvent.status, func.count())
        .where(InboundEvent.task_id == task.id)
        .group_by(InboundEvent.status)
    ).all()
    found = {InboundStatus.PENDING: 0, InboundStatus.APPLIED: 0, InboundStatus.ERROR: 0}
    found.update({status: n for status, n in rows})
    return found


def describe_inbound(task: Task) -> dict[str, Any]:
    """An inbound feed as plain data, with its URL, event counts and last run."""
    return {
        "id": task.id,
        "kind": task.kind.value if isinstance(task.kind, TaskKind) else task.kind,
        "name": task.name,
        "inbound_url": inbound_url(task),
        "poll_url": (task.options or {}).get("url"),
        "schedule": task.schedule or "none",
        "timezone": task.timezone or default_timezone(),
        "next_run_at": local_iso(task, task.next_run_at),
        "events": counts(task),
        "last_run": describe_run(tasks.last_run(task)),
    }


def describe_event(event: InboundEvent) -> dict[str, Any]:
    """A stored event as plain data."""
    return {
        "id": event.id,
        "event_id": event.event_id,
        "status": event.status,
        "received_at": event.received_at.isoformat(timespec="seconds"),
        "payload": event.payload,
        "order_id": event.id_order,
        "run_id": event.run_id,
        "applied_at": event.applied_at.isoformat(timespec="seconds") if event.applied_at else None,
        "error": event.error,
    }


def events_of(task: Task, status: str | None = None, limit: int = 100) -> list[InboundEvent]:
    """The feed's latest events (of one status), newest first."""
    query = select(InboundEvent).where(InboundEvent.task_id == task.id)
    if status:
        query = query.where(InboundEvent.status == status)
    return list(db.session.scalars(query.order_by(InboundEvent.id.desc()).limit(limit)))


# -- the queue ---------------------------------------------------------------------------------


def _stored(task_id: int, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), _LOOKUP):
        found.update(
            db.session.scalars(
                select(InboundEvent.event_id).where(
                    InboundEvent.task_id == task_id,
                    InboundEvent.event_id.in_(ids[start : start + _LOOKUP]),
                )
            )
        )
    return found


def _row(task_id: int, event: inbound_events.Event) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "event_id": event.event_id,
        "payload": event.payload,
        "status": InboundStatus.PENDING,
        "received_at": now(),
    }


def _one_by_one(task_id: int, fresh: list[inbound_events.Event]) -> int:
    """Insert each event in a transaction of its own; the count of those stored (the others
    were stored meanwhile by a concurrent push)."""
    stored = 0
    for event in fresh:
        for attempt in range(5):
            try:
                db.session.execute(insert(InboundEvent), [_row(task_id, event)])
                db.session.commit()
                stored += 1
            except IntegrityError:
                db.session.rollback()  # the unique (task, event id): a duplicate
            except OperationalError:  # a deadlock or a busy SQLite: try again
                db.session.rollback()
                if attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
                continue
            break
    return stored


def queue_events(task: Task, checked: list[inbound_events.Event]) -> tuple[int, int]:
    """Store the events durably (committed) unless their id is stored already; return how
    many were stored and how many were duplicates."""
    task_id = task.id
    unique: dict[str, inbound_events.Event] = {}
    for event in checked:
        unique.setdefault(event.event_id, event)
    # In the body's order, which is the order they are applied in (shipped before delivered).
    ids = list(unique)
    for attempt in range(3):
        known = _stored(task_id, ids)
        fresh = [unique[i] for i in ids if i not in known]
        if not fresh:
            db.session.rollback()
            return 0, len(checked)
        try:
            db.session.execute(insert(InboundEvent), [_row(task_id, e) for e in fresh])
            db.session.commit()
            return len(fresh), len(checked) - len(fresh)
        except IntegrityError:
            db.session.rollback()
            break  # a concurrent push stored some of them: row by row tells which
        except OperationalError:
            db.session.rollback()
            if attempt == 2:
                break
            time.sleep(0.05 * (attempt + 1))
    known = _stored(task_id, ids)
    fresh = [unique[i] for i in ids if i not in known]
    db.session.rollback()
    stored = _one_by_one(task_id, fresh)
    return stored, len(checked) - stored


def receive(task: Task, data: bytes, content_type: str | None = None) -> Receipt:
    """Parse a body, check each event and queue the good ones (MalformedBody if the body
    cannot be read as events; nothing is stored then)."""
    raws = inbound_events.parse(data, content_type)
    good, rejected = inbound_events.checked(raws)
    accepted, duplicates = queue_events(task, good) if good else (0, 0)
    return Receipt(accepted, duplicates, rejected)


def push_file(task: Task, path: str | Path) -> Receipt:
    """Queue the events of a local file (JSON or XML); InboundTooLarge over the file limit."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    size = path.stat().st_size
    if size > file_max_bytes():
        limit = file_max_bytes()
        raise InboundTooLarge(f"{path.name}: {size:,} bytes is over the limit of {limit:,}")
    content_type = "application/xml" if path.suffix.lower() == ".xml" else None
    return receive(task, path.read_bytes(), content_type)


def poll(task: Task) -> Receipt | None:
    """Fetch the feed's polled URL (through the SSRF guard) and queue its events; None when
    it has none or it is unchanged (304). Raises ImportRefused or MalformedBody."""
    options = dict(task.options or {})
    url = options.get("url")
    if not url:
        return None
    fetched = sources.fetch_url(
        url, etag=options.get("etag"), last_modified=options.get("modified")
    )
    try:
        if fetched.path is None:
            return None
        if fetched.path.stat().st_size > file_max_bytes():
            raise ImportRefused(f"{url}: over the inbound limit of {file_max_bytes():,} bytes")
        data = fetched.path.read_bytes()
    finally:
        fetched.cleanup()
    receipt = receive(task, data)
    # Remembered once its events are stored: a failure above fetches it whole next time.
    options.update(etag=fetched.etag, modified=fetched.last_modified)
    task = db.session.get(Task, task.id)
    task.options = options
    db.session.commit()
    return receipt
