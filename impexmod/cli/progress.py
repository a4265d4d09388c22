"""Progress of long work in the terminal: a bar on a terminal, a plain line every few seconds
otherwise (logs, cron, CI); nothing for work that ends quickly.

The work reports its counts when it commits a chunk (``lifecycle.Progress``, the import and seed
services' callbacks), never per row; a ``Meter`` draws at most a few times a second and prints a
line at most every ``INTERVAL`` seconds, so following a run costs it nothing measurable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from impexmod.dispatch import jobs
from impexmod.models import Run, Task
from impexmod.runs import lifecycle

MODES = ("auto", "lines", "none")

# Seconds a run goes on before its bar is drawn: a quick command prints only its result.
DELAY = 1.0
# Seconds between two redraws of the bar.
REDRAW = 0.2
# Seconds between two plain lines (the first one too).
INTERVAL = 5.0


def option(command: Callable) -> Callable:
    """The ``--progress`` option of a command that runs long work."""
    return click.option(
        "--progress",
        "progress",
        type=click.Choice(MODES),
        default="auto",
        show_default=True,
        envvar="IMPEXMOD_PROGRESS",
        help="auto: a bar on a terminal, else a line every few seconds (not with --json); "
        "lines: the lines even on a terminal; none: only the result. On stderr; "
        "env IMPEXMOD_PROGRESS.",
    )(command)


def _count(n: int) -> str:
    return f"{n:,}"


class Meter:
    """Shows how far some work is, on stderr, from counts told as it goes (``update``)."""

    def __init__(self, label: str, mode: str = "auto", unit: str = "entities", quiet=False):
        self.label = label
        self.unit = unit
        self.stream = sys.stderr
        tty = _isatty(self.stream)
        if mode == "auto":
            mode = "bar" if tty else ("none" if quiet else "lines")
        self.mode = mode
        self.started = time.monotonic()
        self.last = self.started  # the last line or redraw
        self.done = self.total = 0
        self.shown = False  # a bar drawn or a line printed: the end is shown too
        self.bar = None

    def __enter__(self) -> Meter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.finish(failed=exc_type is not None)

    def rate(self) -> str:
        """Entities a second, over the whole work so far."""
        elapsed = time.monotonic() - self.started
        return f"{self.done / elapsed:,.0f}/s" if elapsed > 0 else ""

    def update(self, done: int, total: int | None = None) -> None:
        """The work is at ``done`` of ``total`` (0 or None: not known yet)."""
        self.done = done
        self.total = max(total or 0, done) if total else 0
        if self.mode == "none":
            return
        moment = time.monotonic()
        if self.mode == "bar":
            if moment - self.started >= DELAY and moment - self.last >= REDRAW:
                self.last = moment
                self._draw()
        elif moment - self.last >= INTERVAL and not (self.total and done >= self.total):
            self.last = moment  # the last count is the end's line (``finish``)
            self._line()

    def seen(self, run: Run) -> None:
        """Follow a run's counts (``lifecycle.Progress`` commits them chunk by chunk)."""
        self.update(run.done or 0, run.total or 0)

    def finish(self, failed: bool = False) -> None:
        """Show the end of the work, if anything of it was shown."""
        if self.bar is not None:
            if not failed:
                self._draw()
            self.bar.render_finish()
            self.bar = None
        elif self.shown and self.mode == "lines":
            self._line(end=True)

    def _line(self, end: bool = False) -> None:
        self.shown = True
        where = _count(self.done)
        if self.total:
            where += f" / {_count(self.total)} {self.unit} ({self.done * 100 // self.total}%)"
        else:
            where += f" {self.unit}"
        took = f" in {time.monotonic() - self.started:.1f} s" if end else ""
        click.echo(f"{self.label}: {where}, {self.rate()}{took}", file=self.stream)

    def _draw(self) -> None:
        self.shown = True
        if self.bar is None:
            self.bar = click.progressbar(
                length=max(self.total, 1),
                label=self.label,
                file=self.stream,
                show_pos=True,
                show_percent=True,
                item_show_func=lambda rate: rate,
            )
            self.bar.render_progress()
        # The total of an import is estimated as the file is read: it moves.
        self.bar.length = max(self.total, self.done, 1)
        self.bar.update(self.done - self.bar.pos, self.rate())


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@contextmanager
def following(task: Task, label: str, mode: str, quiet: bool = False) -> Iterator[Meter]:
    """A meter told the counts of the runs of ``task`` this process performs meanwhile."""
    meter = Meter(label, mode, quiet=quiet)

    def seen(run: Run) -> None:
        if run.task_id == task.id:
            meter.seen(run)

    with meter, lifecycle.watching(seen):
        yield meter


def start_and_follow(task: Task, wait: bool, label: str, mode: str, quiet: bool) -> Run:
    """Start a run of ``task`` now and show its progress: in this process without Redis;
    through the worker with Redis, followed by polling its row if ``wait``."""
    with following(task, label, mode, quiet) as meter:
        started = jobs.start_run(task, trigger="manual", inline=True)
        if wait:
            started = jobs.wait(started, on_poll=meter.seen)
            meter.seen(started)  # its last counts, for the end's line
    return started
