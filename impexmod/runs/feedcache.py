"""What a poll of a feed URL needs, kept for a moment per process: most polls are 304s, and
two database queries per poll (the task a token opens, the window of its current run) cost
several times what the rest of a 304 does.

- A token's answer (which task, which file name) is kept ``IMPEXMOD_FEED_CACHE_SECONDS``
  (1 s by default; 0 turns the cache off). Rotating a task's URL or deleting the task forgets
  it at once in the process that did it; other processes stop serving the old URL within
  those seconds. A token that opens nothing is never kept, so wrong URLs cannot fill it.
- A published run's window (epoch from, epoch to) never changes: kept until the process ends,
  up to ``MAX_ENTRIES`` runs.

The cache belongs to the app (``app.extensions``), so two apps in one process (tests, two
shops) never see each other's tasks.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from flask import Flask, current_app

MAX_ENTRIES = 10_000  # tokens or windows kept; past it, the oldest half is dropped
KEY = "impexmod.feed_cache"


@dataclass(frozen=True)
class Opened:
    """The task a token opens and the file name its URL ends with."""

    task_id: int
    filename: str


class FeedCache:
    """Tokens' answers for a few seconds, and runs' windows for good."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.lock = threading.Lock()
        self.tokens: dict[str, tuple[float, Opened]] = {}
        self.windows: dict[tuple[int, int], tuple[int | None, int | None]] = {}

    def opened(self, token: str) -> Opened | None:
        """The kept answer for a token, if still fresh."""
        found = self.tokens.get(token)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def keep(self, token: str, opened: Opened) -> None:
        """Keep a token's answer for ``seconds``."""
        if self.seconds <= 0:
            return
        with self.lock:
            _trim(self.tokens)
            self.tokens[token] = (time.monotonic() + self.seconds, opened)

    def forget(self, task_id: int) -> None:
        """Drop every kept token of a task (its URL was rotated, or it was deleted)."""
        with self.lock:
            for token in [t for t, (_, o) in self.tokens.items() if o.task_id == task_id]:
                del self.tokens[token]

    def window(self, task_id: int, run_id: int, load) -> tuple[int | None, int | None]:
        """A run's window, from ``load()`` the first time."""
        key = (task_id, run_id)
        found = self.windows.get(key)
        if found is None:
            found = load()
            with self.lock:
                _trim(self.windows)
                self.windows[key] = found
        return found


def _trim(entries: dict) -> None:
    if len(entries) >= MAX_ENTRIES:
        for key in list(entries)[: MAX_ENTRIES // 2]:
            del entries[key]


def cache(app: Flask | None = None) -> FeedCache:
    """The app's feed cache."""
    app = app or current_app._get_current_object()
    found = app.extensions.get(KEY)
    if found is None:
        found = app.extensions.setdefault(
            KEY, FeedCache(float(app.config.get("FEED_CACHE_SECONDS", 1)))
        )
    return found


def forget(task_id: int) -> None:
    """Forget a task's tokens in this process (its URL was rotated, or it was deleted)."""
    cache().forget(task_id)
