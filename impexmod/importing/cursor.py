"""Catch-up on an incremental feed: a cursor the client sends back, answered from retained runs.

Every successful run of an exporter keeps its file in the feed store, and its window of change
epochs ``(epoch_from, epoch_to]`` on its Run row (a full run covers everything up to
``epoch_to``). A client remembers the ``window-to`` of the last feed it imported and asks
``?cursor=E``; the endpoint serves the retained file whose window holds ``E`` (header
``X-Impexmod-Cursor`` = its window-to, ``X-Impexmod-More: 1`` when newer runs exist, so the
client loops), ``204`` when the client is up to date, and ``410`` when no retained file covers
``E`` (expired by retention, unknown), naming in ``X-Impexmod-Full`` the exporter's own URL
with ``?snapshot=full`` when the merchant gave it a full companion (``Task.full_companion_id``,
the same entities in the same shape): that URL serves the companion's current file under this
exporter's token, so a token never opens, nor hands out, another exporter's URL. Feeds list
states, not operations (stock is written with ``mode="set"``), so a file whose window starts
before ``E`` may be applied again safely. See docs/importing.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select

from impexmod.extensions import db
from impexmod.models import Run, RunStatus, Task
from impexmod.runs.feedstore import get_store

CURSOR = "X-Impexmod-Cursor"
WINDOW_FROM = "X-Impexmod-Window-From"
MORE = "X-Impexmod-More"
FULL = "X-Impexmod-Full"
# The query parameter of the full snapshot an exporter's URL serves from its companion.
SNAPSHOT = "snapshot"


# ---------------------------------------------------------------------------------- server


@dataclass
class Answer:
    """What the feed endpoint answers to ``?cursor=E``."""

    status: int  # 200: serve ``run``'s file; 204: up to date; 410: take the full feed
    run: Run | None = None
    cursor: int | None = None
    more: bool = False
    full_url: str | None = None


def _retained(task: Task) -> list[Run]:
    return (
        db.session.execute(
            select(Run)
            .where(
                Run.task_id == task.id,
                Run.status == RunStatus.SUCCEEDED.value,
                Run.file_key.is_not(None),
                Run.epoch_to.is_not(None),
                Run.file_removed_at.is_(None),
            )
            .order_by(Run.epoch_to)
        )
        .scalars()
        .all()
    )


def full_companion(task: Task) -> Task | None:
    """The full exporter the merchant named for ``task``, while it still matches it."""
    if task.full_companion_id is None:
        return None
    from impexmod.export.definition import companion_mismatch

    companion = db.session.get(Task, task.full_companion_id)
    if companion is None or companion_mismatch(task, companion):
        return None  # edited since it was chosen: no longer the same file
    return companion


def answer(task: Task, cursor: int) -> Answer:
    """Which retained file answers ``cursor`` (never computes a feed)."""
    runs = _retained(task)
    store = get_store()
    latest = runs[-1].epoch_to if runs else None
    if latest is not None and cursor >= latest:
        return Answer(204, cursor=cursor)
    covering = [
        r
        for r in runs
        if (r.epoch_from is None or r.epoch_from <= cursor)
        and cursor < r.epoch_to
        and store.exists(task.id, r.file_key)
    ]
    if covering:
        # The narrowest window (a delta rather than a full snapshot), else the newest snapshot.
        run = max(
            covering,
            key=lambda r: (r.epoch_from if r.epoch_from is not None else -1, r.epoch_to),
        )
        return Answer(200, run=run, cursor=run.epoch_to, more=run.epoch_to < latest)
    from impexmod.runs.tokens import feed_url

    companion = full_companion(task)
    if companion is not None and store.current(companion.id) is None:
        companion = None
    full_url = f"{feed_url(task)}?{SNAPSHOT}=full" if companion else None
    return Answer(410, cursor=cursor, full_url=full_url)


def window_of(task_id: int, run_id: int) -> tuple[int | None, int | None]:
    """The (window-from, window-to) of a run of task ``task_id``, for a plain response's
    headers."""
    run = db.session.get(Run, run_id)
    if run is None or run.task_id != task_id:
        return None, None
    return run.epoch_from, run.epoch_to


# ---------------------------------------------------------------------------------- client


@dataclass
class Step:
    """One file a catch-up loop fetched, and the cursor to keep once it is imported."""

    fetched: object  # sources.Fetched
    cursor: int | None


def catch_up(fetch, url: str, cursor: int | None, limit: int) -> Iterator[Step]:
    """Fetch deltas from ``cursor`` on (``fetch(url, params)`` -> Fetched), following 410s to
    the full feed. Stops when up to date, when the server stops saying "more", or at ``limit``."""
    from impexmod.importing.errors import ImportRefused

    for _ in range(limit):
        got = fetch(url, {"cursor": str(cursor if cursor is not None else 0)})
        if got.status == 204:
            return
        if got.status == 410:
            full = got.headers.get(FULL)
            if not full:
                raise ImportRefused(
                    f"{url}: the cursor {cursor} has expired and the server names no full feed"
                )
            plain = fetch(full, None)
            step = Step(plain, _header_int(plain, CURSOR))
            yield step
            if step.cursor is None:
                return
            cursor = step.cursor  # deltas after the snapshot come next
            continue
        step = Step(got, _header_int(got, CURSOR))
        yield step
        cursor = step.cursor
        if got.headers.get(MORE) != "1":
            return


def _header_int(fetched, name: str) -> int | None:
    value = (fetched.headers or {}).get(name, "")
    return int(value) if value.isdigit() else None
