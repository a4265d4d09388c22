"""One run of an order exporter (impexmod.runs.lifecycle's Pipeline for ``order_export``).

The run first puts back to ready the flags claimed by runs that are no longer active (a worker
killed mid-send: they are sent again with the same idempotency key), then claims the flag's
ready orders a batch at a time until none is left, so flags set while it runs are taken too.

``http``: each batch is POSTed (impexmod.orders.sending); on a 2xx its flags are served, which
sets the chain's next flags, announced at once. A batch that keeps failing stays claimed by the
run until its end, so the loop does not take it again, then goes back to ready with its
attempts counted and why (``flags.failed``). The run succeeds when at least one send succeeded
or nothing was to be sent (with a warning per order that failed), and fails when every send
failed: the endpoint is down, which the merchant's failure notifications should say.

``pull``: the claimed orders are written into one document placed in the feed store; once the
run's success is committed the feed URL is pointed at it and only then are the flags served
(``publish``). An empty claim writes nothing: the feed URL keeps the previous document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from impexmod.export import mapping
from impexmod.extensions import db
from impexmod.models import FlagStatus, Order, OrderFlag, Run, RunStatus, Task
from impexmod.orders import documents, sending
from impexmod.orders import flags as order_flags
from impexmod.orders.exporter import Definition, definition_of
from impexmod.runs.feedstore import STORE_ERRORS, FeedFile, get_store
from impexmod.runs.lifecycle import Progress

# Warnings kept on a run (one per order that failed); the log says how many there were.
MAX_WARNINGS = 100


@dataclass
class Tally:
    """What a run did so far."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    warnings: list[str] = field(default_factory=list)
    first_error: str | None = None


@dataclass
class Placed:
    """A pull run's document, placed but not yet served, and the flags it holds."""

    feed: FeedFile
    flag_ids: list[int]


def _active_runs() -> list[int]:
    return list(db.session.scalars(select(Run.id).where(Run.status.in_(RunStatus.active()))))


def _ready_count(flag: str) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(OrderFlag)
        .where(OrderFlag.flag == flag, OrderFlag.status == FlagStatus.READY)
    )


def _references(rows: list[OrderFlag]) -> dict[int, str]:
    ids = [r.id_order for r in rows]
    return dict(
        db.session.execute(select(Order.id, Order.reference).where(Order.id.in_(ids))).all()
    )


def _mapping(d: Definition):
    if not d.template:
        return None
    found = mapping.load_mapping(d.template)
    if found is None:
        raise LookupError(f"the field template {d.template!r} no longer exists")
    return found


def _headers(d: Definition, rows: list[OrderFlag], keys: list[str], shop: str) -> dict[str, str]:
    headers = {
        "Content-Type": documents.CONTENT_TYPES[d.fmt],
        "User-Agent": "impexmod-orders",
        "X-Impexmod-Flag": d.flag,
        "X-Impexmod-Orders": str(len(rows)),
    }
    # One order: its own key. A batch: the batch's key (each order's is in the body).
    headers["Idempotency-Key"] = (
        keys[0] if len(rows) == 1 else documents.batch_key(shop, d.flag, keys)
    )
    return headers


def _serve(rows, task: Task, run: Run, d: Definition, outcome: str) -> int:
    pending: list[order_flags.Pending] = []
    served = 0
    # One transaction for the batch (one request sent them all): no row is expired, and so
    # re-read, between two of them; a failure rolls back the whole record, and the flags,
    # still claimed, are sent again with the same keys (the receiver dedupes).
    try:
        for row in rows:
            chained = order_flags.served(
                row,
                task_id=task.id,
                run_id=run.id,
                outcome=outcome,
                next_flags=d.next_flags,
                commit=False,
            )
            pending.extend(chained)
            served += 1
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    # The next exporters of the chain start now (their own runs); a failure to start them is
    # logged by the listener, never this run's.
    order_flags.announce(pending)
    return served


def _send_batch(run: Run, task: Task, d: Definition, rows, tally: Tally, held: list) -> None:
    shop = current_app.config["SHOP_ID"]
    refs = _references(rows)
    root = documents.root_of(d.flag, run=str(run.id))
    body, written = documents.render(rows, d.fmt, root, shop, _mapping(d))
    present = [r for r in rows if r.id_order in set(written)]
    gone = [r for r in rows if r.id_order not in set(written)]
    for row in gone:  # deleted since the claim: nothing to send, never sent
        order_flags.failed(row, task_id=task.id, run_id=run.id, error="the order no longer exists")
    if not present:
        return
    keys = [r.idempotency_key(shop) for r in present]
    what = (
        f"order {refs.get(present[0].id_order, present[0].id_order)} ({keys[0]})"
        if len(present) == 1
        else f"batch of {len(present)} orders"
    )
    request = sending.Request(
        url=d.url, secret=d.secret, body=body, headers=_headers(d, present, keys, shop), what=what
    )

    def log(line: str) -> None:
        run.log_line(line)
        db.session.commit()

    db.session.commit()  # no transaction held open while the receiver takes its time
    outcome = sending.send(request, timeout=d.timeout, attempts=d.attempts, log=log)
    if outcome.ok:
        tally.sent += _serve(present, task, run, d, f"HTTP {outcome.last.status}")
        return
    why = outcome.last.describe()
    tally.failed += len(present)
    tally.first_error = tally.first_error or why
    for row in present:
        if len(tally.warnings) < MAX_WARNINGS:
            tally.warnings.append(f"order {refs.get(row.id_order, row.id_order)}: {why}")
        held.append((row, f"{why} (after {len(outcome.attempts)} attempt(s))"))


def work_http(run: Run, task: Task, d: Definition, progress: Progress) -> Tally:
    """Claim and send until no ready flag is left; failures are put back at the end."""
    tally = Tally()
    held: list[tuple[OrderFlag, str]] = []
    try:
        while rows := order_flags.claim(d.flag, run.id, d.batch):
            tally.claimed += len(rows)
            before = tally.sent
            _send_batch(run, task, d, rows, tally, held)
            run.total = max(run.total or 0, tally.claimed + _ready_count(d.flag))
            progress.advance(len(rows), tally.sent - before, 0)
    finally:
        # Back to ready for the next run, with the attempts counted and why.
        for row, error in held:
            order_flags.failed(row, task_id=task.id, run_id=run.id, error=error)
    return tally


def work_pull(run: Run, task: Task, d: Definition, progress: Progress) -> Placed | None:
    """Claim every ready flag into one document placed in the feed store (None if none)."""
    store = get_store()
    shop = current_app.config["SHOP_ID"]
    flag_ids: list[int] = []
    with store.writing(task.id, run.id) as (fh, tmp):
        root = documents.root_of(d.flag, run=str(run.id))
        with documents.DocumentWriter(fh, d.fmt, root, _mapping(d)) as out:
            while rows := order_flags.claim(d.flag, run.id, d.batch):
                written = set(out.add(rows, shop))
                for row in rows:
                    if row.id_order in written:
                        flag_ids.append(row.id)
                    else:
                        order_flags.failed(
                            row, task_id=task.id, run_id=run.id, error="the order no longer exists"
                        )
                run.total = max(run.total or 0, len(flag_ids) + _ready_count(d.flag))
                progress.advance(len(rows), len(written), 0)
        if not flag_ids:
            tmp.unlink(missing_ok=True)
            return None
    feed = store.place(task.id, run.id, tmp, d.fmt)
    run.bytes, run.file_key = feed.size, feed.name
    run.log_line(f"Wrote {len(flag_ids)} orders ({feed.size} bytes): served once published")
    return Placed(feed, flag_ids)


class OrderExportPipeline:
    """The runs of order exporters (impexmod.runs.lifecycle)."""

    label = "order export "

    def follow_up(self, run: Run, task: Task) -> str | None:
        """The trigger "flag" when flags became ready after the run started (set or approved
        then: their own start found the task busy); those that failed in it wait."""
        d = definition_of(task)
        if not d.on_flag:
            return None
        since = run.started_at
        late = db.session.scalar(
            select(func.count())
            .select_from(OrderFlag)
            .where(
                OrderFlag.flag == d.flag,
                OrderFlag.status == FlagStatus.READY,
                (OrderFlag.set_at >= since) | (OrderFlag.approved_at >= since),
            )
        )
        return "flag" if late else None

    def begin(self, run: Run, task: Task) -> str:
        d = definition_of(task)
        where = sending.where(d.url) if d.destination == "http" and d.url else "its feed URL"
        return f"Started: orders flagged {d.flag} to {where} as {d.template or d.fmt}"

    def work(self, run: Run, task: Task) -> tuple[RunStatus, Any]:
        d = definition_of(task)
        released = order_flags.release_stale(d.flag, _active_runs())
        if released:
            run.log_line(f"{released} order(s) claimed by runs that died are sent again")
        progress = Progress(run)
        progress.start(_ready_count(d.flag))
        if d.destination == "pull":
            placed = work_pull(run, task, d, progress)
            if placed is None:
                run.log_line(f"No order flagged {d.flag} to serve: the feed URL keeps its document")
            return RunStatus.SUCCEEDED, placed
        tally = work_http(run, task, d, progress)
        run.warnings = list(tally.warnings)
        run.log_line(
            f"Sent {tally.sent} of {tally.claimed} orders flagged {d.flag}"
            + (f"; {tally.failed} failed and stay flagged for the next run" if tally.failed else "")
        )
        db.session.commit()
        if tally.failed and not tally.sent:
            run.error = f"every send failed ({tally.failed} orders); the last: {tally.first_error}"
            run.log_line(f"Failed: {run.error}")
            return RunStatus.FAILED, None
        return RunStatus.SUCCEEDED, None

    def closing(self, run: Run, status: RunStatus) -> None:
        if status == RunStatus.SUCCEEDED and not run.file_key:
            run.log_line(f"Succeeded in {run.duration:.2f} s")

    def publish(self, run: Run, task: Task, outcome: Placed | None) -> None:
        if outcome is None:
            return
        store = get_store()
        try:
            store.point(outcome.feed)
        except STORE_ERRORS as exc:
            # The sweeper points the URL later; the flags stay claimed by this ended run, so the
            # next run puts them back and serves them again (with the same keys).
            current_app.logger.exception("run %s: the feed URL could not be switched", run.id)
            run.log_line(f"Succeeded, but the feed URL could not be switched yet ({exc})")
            db.session.commit()
            return
        d = definition_of(task)
        served = 0
        for start in range(0, len(outcome.flag_ids), 500):
            chunk = outcome.flag_ids[start : start + 500]
            rows = list(db.session.scalars(select(OrderFlag).where(OrderFlag.id.in_(chunk))))
            served += _serve(rows, task, run, d, f"served in {outcome.feed.name}")
        run.log_line(
            f"Published {outcome.feed.name} ({outcome.feed.size} bytes): the feed URL serves "
            f"it now; {served} orders served"
        )
        run.log_line(f"Succeeded in {run.duration:.2f} s")
        db.session.commit()

    def discard(self, run: Run, task: Task) -> None:
        get_store().remove_run_files(task.id, run.id)

    def failure_note(self) -> str:
        return "; the orders stay flagged for the next run"

    def file_ext(self, task: Task) -> str:
        return task.format or "xml"
