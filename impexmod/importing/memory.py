"""Memory while importing: the cyclic collector held back, and written entries freed at once.

An import allocates millions of short-lived objects; the engine (:mod:`impexmod.importing.engine`)
runs its chunks inside :func:`quiet_gc`, collects every few chunks (:func:`collect_chunk`) and
unlinks each written chunk's entries (:func:`release`) so that reference counting frees them.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager

from impexmod.importing.entry import Entry

_GC_LOCK = threading.Lock()
_GC_USERS = [0, False]  # imports running in this process, whether collection was enabled
YOUNG_COLLECTION_EVERY = 4  # chunks
FULL_COLLECTION_EVERY = 32  # chunks (a multiple of the above)


@contextmanager
def quiet_gc():
    """No automatic cyclic collection while importing; ``collect_chunk`` runs one every few
    chunks instead. An import allocates millions of short-lived objects, and the collector
    walked the live ones again and again (a fifth of the time and a quarter of the peak memory,
    even with a high threshold); written entries are freed by reference counting (``release``).
    The app's own objects are frozen out of collections. The first import in a process sets
    this and the last one restores it, so concurrent imports (web threads) agree."""
    with _GC_LOCK:
        if _GC_USERS[0] == 0:
            _GC_USERS[1] = gc.isenabled()
            gc.freeze()
            gc.disable()
        _GC_USERS[0] += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_USERS[0] -= 1
            if _GC_USERS[0] == 0:
                gc.unfreeze()
                if _GC_USERS[1]:
                    gc.enable()


def collect_chunk(chunks: int) -> None:
    """The collection that replaces automatic ones during an import, every few chunks: the
    younger generations (what the chunks left: a cycle may join objects made before the
    previous collection to newer ones), and everything now and then, so that no cycle
    outlives a few chunks. Written entries leave no cycle (``release``): a collection finds
    nothing but walks the entries read for the next chunk, 10 to 20 ms each time."""
    if chunks % YOUNG_COLLECTION_EVERY == 0:
        gc.collect(2 if chunks % FULL_COLLECTION_EVERY == 0 else 1)


def release(tops: list[Entry]) -> None:
    """Break the links between written entries (parent links, and flags naming an owner or a
    product entry) so reference counting frees them at once."""
    for top in tops:
        top.flags = {}
        children = top.children
        if not children:
            continue
        top.children = {}
        tree = top.tree
        if tree is not None:
            top.tree = None
            for entry in tree:
                entry.parent = None
                entry.flags = {}
            continue
        stack = [children]
        while stack:
            for items in stack.pop().values():
                for item in items:
                    if item.__class__ is Entry:
                        item.parent = None
                        item.flags = {}
                        if item.children:
                            stack.append(item.children)
