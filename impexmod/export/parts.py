"""Large full exports in parallel: key-range parts written by the free workers, joined.

A full export of a writer that can be split (``SPLITTABLE``: native XML, CSV, JSON Lines; no
template or stylesheet) with at least two parts' worth of entities is cut by id into ranges
of about the same count. The run's own worker records one ``run_part`` row per range, queues
a job per range but the first (impexmod.dispatch.jobs.enqueue_parts), then writes every part
no other worker has claimed yet (a conditional UPDATE claims a part): with one worker the
run still ends, with more it ends sooner. Each part is written to its own stored file with
the same root attributes, and says where its body starts and ends; once all are done, the
run's worker joins them (the first part's head, every body, the last part's end) into the
feed's temporary file, which the runner places and publishes as any other.

Atomic: the feed URL moves only after the join, so a failed part (its error, an exporter
edited meanwhile, a worker killed or silent) fails the run and leaves the previous feed. Part
rows and files last only while the run works: they are removed when it ends, and the
sweeper removes the files of a run that died (they are temporaries of the run).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, func, select, update

from impexmod import entities
from impexmod.export import reader
from impexmod.export.output import output_ext
from impexmod.export.selection import Selection
from impexmod.export.stream import Plan, Written, write_feed
from impexmod.export.writers import writer_class
from impexmod.extensions import db
from impexmod.models import PartStatus, Run, RunPart, RunStatus, Task, now
from impexmod.runs import lifecycle
from impexmod.runs.feedstore import get_store, part_name
from impexmod.runs.lifecycle import Progress

# How often the run's worker looks at the parts others write.
POLL_SECONDS = 0.2
COPY_CHUNK = 1024 * 1024


class PartFailed(RuntimeError):
    """A part of the run failed: the run fails with it."""


class PartCancelled(RuntimeError):
    """The run of a part ended (or dropped its parts) while the part was being written."""


def fingerprint(task: Task) -> str:
    """A digest of what decides a task's feed, to tell that the exporter was edited."""
    shape = [
        task.entity,
        task.format,
        task.options,
        task.template,
        task.stylesheet,
        task.filters,
        task.filter_match,
    ]
    return hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()


def splittable(task: Task) -> bool:
    """Whether the task's feed can be written in parts that join byte for byte."""
    if task.template or task.stylesheet:
        return False
    try:
        return bool(getattr(writer_class(task.format), "SPLITTABLE", False))
    except ValueError:
        return False


def part_count(total: int) -> int:
    """How many parts a full feed of ``total`` entities is cut into (1: it is not)."""
    most = int(current_app.config.get("EXPORT_PARTS", 1))
    least = max(int(current_app.config.get("EXPORT_PART_MIN", 1)), 1)
    return max(1, min(most, total // least))


def _spans(task: Task, plan: Plan) -> tuple[int, list[reader.Span]]:
    """The number of entities of the feed, and its key ranges (one: not split)."""
    descriptor = entities.resolve(task.entity)
    with db.engine.connect() as conn:
        total = reader.count_all(conn, descriptor, plan.selection)
        count = part_count(total)
        cuts = reader.boundaries(conn, descriptor, plan.selection, total, count)
        conn.rollback()
    return total, list(zip([None, *cuts], [*cuts, None], strict=True))


def _describe(span: reader.Span) -> str:
    lo, hi = span
    if lo is None:
        return f"ids below {hi}"
    return f"ids from {lo}" if hi is None else f"ids {lo} to {hi - 1}"


def write_in_parts(run: Run, task: Task, plan: Plan, root: dict, fh) -> Written | None:
    """Write the run's full feed into ``fh`` in parallel parts; None (nothing written) if the
    feed is not worth splitting or cannot be split, or no other worker can help."""
    if not splittable(task) or not lifecycle.queues_parts():
        return None
    total, spans = _spans(task, plan)
    if len(spans) < 2:
        return None
    mark = fingerprint(task)
    for number, (lo, hi) in enumerate(spans):
        db.session.add(
            RunPart(run_id=run.id, number=number, lo=lo, hi=hi, root=root, fingerprint=mark)
        )
    run.total = total
    run.log_line(f"Split into {len(spans)} parts by id, written by the free workers and joined")
    db.session.commit()
    try:
        lifecycle.enqueue_parts(run, range(1, len(spans)))
        for number in range(len(spans)):  # every part no other worker has taken yet
            work_part(run.id, number, parent=run)
        done = _wait(run, len(spans))
        written = _join(task, run, done, fh)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        _clear(task.id, run.id)
        raise
    _clear(task.id, run.id)
    return written


def _claim(run_id: int, number: int) -> bool:
    """Take a queued part for this process; False if a worker already has it (or it is gone)."""
    took = db.session.execute(
        update(RunPart)
        .where(
            RunPart.run_id == run_id,
            RunPart.number == number,
            RunPart.status == PartStatus.QUEUED,
        )
        .values(status=PartStatus.RUNNING, worker=_identity(), heartbeat_at=now())
    ).rowcount
    db.session.commit()
    return took == 1


def _identity() -> str:
    """``host:pid`` of this process, shown in the run's log beside the part it wrote."""
    return f"{socket.gethostname()}:{os.getpid()}"


def work_part(run_id: int, number: int, parent: Run | None = None) -> str:
    """Write part ``number`` of run ``run_id`` if no one has taken it: "done", "failed",
    "cancelled" or "taken". ``parent``: the run, when its own worker writes the part (a
    failure is then raised, and the run's counts follow)."""
    if not _claim(run_id, number):
        return "taken"
    part = db.session.execute(
        select(RunPart).where(RunPart.run_id == run_id, RunPart.number == number)
    ).scalar()
    if part is None:  # dropped since: the run ended meanwhile
        return "cancelled"
    run = parent or db.session.get(Run, run_id)
    task = db.session.get(Task, run.task_id) if run is not None else None
    if task is None:
        fail_part(run_id, number, "its run or exporter was deleted")
        return "cancelled"
    try:
        if fingerprint(task) != part.fingerprint:
            raise PartFailed(f"exporter {task.id} was edited since run {run_id} started")
        plan = Plan(False, None, 0, None, Selection.of(task))
        progress = PartProgress(part.id, run_id, parent)
        with get_store().writing_part(task.id, run_id, number) as out:
            written = write_feed(task, plan, out, part.root, progress, span=(part.lo, part.hi))
            size = out.tell()
    except PartCancelled:
        db.session.rollback()
        if parent is not None:  # the run itself was ended (the sweeper's verdict): stop here
            raise
        current_app.logger.info("part %s of run %s: its run ended; dropped", number, run_id)
        return "cancelled"
    except Exception as exc:
        db.session.rollback()
        if parent is None:
            current_app.logger.exception("part %s of run %s failed", number, run_id)
        reason = f"{type(exc).__name__}: {exc}"
        fail_part(run_id, number, reason)
        if parent is not None:
            count = db.session.query(RunPart).filter(RunPart.run_id == run_id).count()
            raise PartFailed(_failure(number, (part.lo, part.hi), count, reason)) from exc
        return "failed"
    db.session.execute(
        update(RunPart)
        .where(RunPart.id == part.id, RunPart.status == PartStatus.RUNNING)
        .values(
            status=PartStatus.DONE,
            head=written.head,
            body_end=written.body_end,
            size=size,
            warnings=list(written.warnings),
            heartbeat_at=now(),
        )
    )
    db.session.commit()
    return "done"


def fail_part(run_id: int, number: int, reason: str) -> None:
    """Record that part ``number`` of a run failed (which fails the run), unless it is done."""
    db.session.execute(
        update(RunPart)
        .where(
            RunPart.run_id == run_id,
            RunPart.number == number,
            RunPart.status.in_([PartStatus.QUEUED, PartStatus.RUNNING]),
        )
        .values(status=PartStatus.FAILED, error=reason[:2000])
    )
    db.session.commit()


class PartProgress:
    """A part's counts and heartbeat on its row, chunk by chunk; raises PartCancelled once its
    run is no longer running (so a part never outlives its run)."""

    def __init__(self, part_id: int, run_id: int, parent: Run | None):
        self.part_id, self.run_id, self.parent = part_id, run_id, parent

    def start(self, total: int) -> None:
        """Record how many entities the part goes through."""
        self._update(total=total)

    def advance(self, done: int, written: int, deleted: int) -> None:
        """Add one chunk's counts."""
        self._update(
            done=RunPart.done + done,
            written=RunPart.written + written,
            deleted=RunPart.deleted + deleted,
        )

    def _update(self, **values) -> None:
        alive = db.session.execute(
            update(RunPart)
            .where(RunPart.id == self.part_id, RunPart.status == PartStatus.RUNNING)
            .values(heartbeat_at=now(), **values)
        ).rowcount
        status = db.session.execute(select(Run.status).where(Run.id == self.run_id)).scalar()
        db.session.commit()
        if alive != 1 or status != RunStatus.RUNNING.value:
            raise PartCancelled(f"run {self.run_id} is {status or 'gone'}")
        if self.parent is not None:
            _tally(self.parent)


def _tally(run: Run) -> None:
    """Set the run's counts to the sums of its parts' (the panel and the CLI follow them)."""
    sums = db.session.execute(
        select(
            func.coalesce(func.sum(RunPart.done), 0),
            func.coalesce(func.sum(RunPart.written), 0),
            func.coalesce(func.sum(RunPart.deleted), 0),
        ).where(RunPart.run_id == run.id)
    ).one()
    Progress(run).tally(int(sums[0]), int(sums[1]), int(sums[2]))


def _failure(number: int, span: reader.Span, count: int, error: str | None) -> str:
    """The run's error when one of its parts failed."""
    return f"part {number + 1} of {count} ({_describe(span)}) failed: {error or 'no reason'}"


def _wait(run: Run, count: int) -> list[RunPart]:
    """Wait until every part is done and return them in order; PartFailed if one failed or
    its worker went silent."""
    stale = timedelta(seconds=int(current_app.config["RUN_STALE_SECONDS"]))
    while True:
        _tally(run)  # commits: the next read sees what the others committed meanwhile
        status = db.session.execute(select(Run.status).where(Run.id == run.id)).scalar()
        if status != RunStatus.RUNNING.value:
            raise PartCancelled(f"run {run.id} is {status or 'gone'}")
        found = list(
            db.session.execute(
                select(RunPart).where(RunPart.run_id == run.id).order_by(RunPart.number)
            ).scalars()
        )
        failed = next((p for p in found if p.status == PartStatus.FAILED), None)
        if failed is not None:
            raise PartFailed(_failure(failed.number, (failed.lo, failed.hi), count, failed.error))
        if len(found) == count and all(p.status == PartStatus.DONE for p in found):
            return found
        silent = next(
            (p for p in found if p.heartbeat_at is not None and p.heartbeat_at < now() - stale),
            None,
        )
        if silent is not None:
            raise PartFailed(
                f"part {silent.number + 1} of {count} stopped: its worker ({silent.worker}) "
                f"has said nothing for {stale.total_seconds():.0f} s"
            )
        time.sleep(POLL_SECONDS)


def _copy(src, dst, length: int, name: str) -> None:
    """Copy ``length`` bytes of ``src`` from where it is to ``dst``."""
    while length > 0:
        chunk = src.read(min(length, COPY_CHUNK))
        if not chunk:
            raise OSError(f"{name} ends {length} bytes before the length its part recorded")
        dst.write(chunk)
        length -= len(chunk)


def _join(task: Task, run: Run, done: list[RunPart], fh) -> Written:
    """Write the parts into ``fh`` as one feed: the first one's head, every body, the last
    one's end; log each part."""
    store = get_store()
    warnings: list[str] = []
    last = len(done) - 1
    for part in done:
        start = 0 if part.number == 0 else part.head
        end = part.size if part.number == last else part.body_end
        name = part_name(run.id, part.number)
        with store.open(task.id, name) as src:
            src.seek(start)
            _copy(src, fh, end - start, name)
        warnings.extend(part.warnings or [])
        run.log_line(
            f"Part {part.number + 1} of {len(done)} ({_describe((part.lo, part.hi))}): "
            f"{part.written} entities, by {part.worker}"
        )
    return Written(warnings, output_ext(task))


def _clear(task_id: int, run_id: int) -> None:
    """Drop a run's part rows (a worker still writing one stops at its next chunk) and files."""
    db.session.execute(delete(RunPart).where(RunPart.run_id == run_id))
    db.session.commit()
    get_store().remove_parts(task_id, run_id)
