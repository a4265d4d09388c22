"""A native feed parsed in a process of its own, feeding the writer in batches.

Turning XML elements into entries costs about as much Python time as writing them, so on a
large feed a second process parses while this one writes (``IMPORT_PARALLEL_BYTES``). The
stream the writer sees is the one the in-process parser gives: the same entries, the same
warnings at the same places, the same progress. The parser process holds no connection and
writes nothing; it runs at most two chunks ahead (``INBOX_BYTES``), is stopped if the
import stops early, and its failures end the import with their message.
"""

from __future__ import annotations

import gc
import json
import os
import pickle
import struct
import subprocess
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from impexmod.importing import safexml
from impexmod.importing.entry import Entry, Ref, language_code
from impexmod.importing.errors import ImportRefused, Origin, RowError
from impexmod.importing.native import TOP_LEVEL, NativeParser

try:
    import fcntl
except ImportError:  # not a POSIX system: no parser process (``available``)
    fcntl = None  # type: ignore[assignment]

BATCH = 100  # top-level elements per message (about 200 KB of a product feed)
PIPE_BYTES = 1024 * 1024  # the pipe's own buffer (Linux lets a process ask for up to 1 MiB)
INBOX_BYTES = 8 * 1024 * 1024  # how far the parser may run ahead of the writer (2 chunks)
_HEADER = struct.Struct("!Q")  # a message: its length, then its bytes
PLAIN = frozenset(("tag", "categorypath", "image"))  # nested items that are no entries
_END, _REFUSED, _FAILED = "end", "refused", "failed"
_ref = _origin = tuple.__new__  # Ref(*fields), Origin(*fields) without their Python __new__


def _encode(entry: Entry) -> tuple:
    """An entry as plain data: pickled at C speed, rebuilt in a few microseconds."""
    children = entry.children
    if children:
        children = {
            name: items if name in PLAIN else [_encode(item) for item in items]
            for name, items in children.items()
        }
        entry.children = {}  # no parent <-> child cycles: reference counting frees the tree
    errors = [(e.file, e.line, e.path, e.field, e.reason, e.severity) for e in entry.errors]
    origin = entry.origin
    # Refs go as plain tuples: a named tuple pickles through ``__reduce__``, a Python call
    # each (ten times slower to pickle and to unpickle than the tuple and its rebuild).
    ref = entry.ref
    links = entry.links
    if links:
        links = {k: v if v is None else tuple(v) for k, v in links.items()}
    return (
        entry.kind,
        None if ref is None else tuple(ref),
        origin.line,
        origin.path,
        entry.mode,
        entry.values,
        entry.langs,
        links,
        children,
        entry.flags,
        errors,
        entry.size,
    )


def _decode(item: tuple, file: str, parent: Entry | None, tree: list[Entry]) -> Entry:
    """Rebuild an entry, appending it and its nested entries to ``tree`` in ``walk`` order."""
    kind, ref, line, path, mode, values, langs, links, children, flags, errors, size = item
    if links:
        for name, link in links.items():
            if link is not None:
                links[name] = _ref(Ref, link)
    entry = Entry(
        kind,
        None if ref is None else _ref(Ref, ref),
        _origin(Origin, (file, line, path)),
        mode,
        values,
        langs,
        links,
        children,
        flags,
        [RowError(*e) for e in errors] if errors else [],
        parent,
        None,
        None,
        size,
    )
    tree.append(entry)
    if children:
        for name, items in children.items():
            if name not in PLAIN:
                children[name] = [_decode(i, file, entry, tree) for i in items]
    return entry


def _top(item: tuple, file: str) -> Entry:
    tree: list[Entry] = []
    entry = _decode(item, file, None, tree)
    if len(tree) > 1:
        entry.tree = tree  # the engine walks every entry twice (to write, then to release)
    return entry


def _send(fd: int, data: bytes) -> None:
    """One message down the pipe: its length, then its bytes."""
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _parse(path: str, label: str, source: str, languages: set[str], out: int) -> None:
    """The parser process: stream the feed's entities, send them in batches to ``out``."""
    batch: list = []
    at = [0]

    def flush() -> None:
        nonlocal batch
        _send(out, pickle.dumps((at[0], batch), pickle.HIGHEST_PROTOCOL))
        batch = []
        gc.collect(0)

    def add_language(iso: str) -> bool:
        # The writer creates it when it reaches this point of the stream, where the in-process
        # parser would have had it created.
        if not language_code(iso):
            return False
        batch.append(iso)
        return True

    # Entries are freed by reference counting (their parent links are cut as they are sent):
    # no cyclic collection while parsing, one per batch in case anything else made a cycle.
    gc.freeze()
    gc.disable()
    try:
        # Warnings go into the batch, just before the entry they are about.
        parser = NativeParser(
            label, source, languages, lambda error: batch.append(error), add_language
        )
        elements = safexml.elements(
            Path(path),
            label,
            TOP_LEVEL,
            skipped=parser.skipped,
            position=lambda where: at.__setitem__(0, where),
        )
        for elem, where in elements:
            entry = parser.parse(elem, where)
            batch.append(None if entry is None else _encode(entry))
            if len(batch) >= BATCH:
                flush()
        flush()
        _send(out, pickle.dumps((_END, None)))
    except (BrokenPipeError, ConnectionResetError):
        return  # the writer is gone: nobody to tell
    except ImportRefused as exc:
        _send(out, pickle.dumps((_REFUSED, str(exc))))
    except Exception:  # reported to the writer, which raises it
        _send(out, pickle.dumps((_FAILED, traceback.format_exc(limit=8))))
    finally:
        os.close(out)


def _widen(fd: int) -> None:
    # A pipe holds 64 KiB; a wider one means fewer wake-ups of the inbox thread, and a parser
    # that sends without a thread of its own (one fighting the parser for the GIL stalled
    # both). Linux only; the system's limit (fs.pipe-max-size, 1 MiB) applies, and without it
    # the pipe simply stays narrow.
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (AttributeError, OSError):
        pass


# The parser process runs this module's ``child`` with this interpreter and sys.path; unlike
# multiprocessing's spawn, it never re-runs the caller's main script.
_BOOT = (
    "import json, sys; args = json.loads(sys.argv[1]); sys.path[:] = args['path']; "
    "from impexmod.importing.pipeline import child; child(args)"
)


def child(args: dict) -> None:
    """The parser process's entry point."""
    _parse(args["file"], args["label"], args["source"], set(args["languages"]), args["fd"])


def available() -> bool:
    """Whether a parser process can be started: POSIX, and a Python interpreter to run it (an
    embedding server such as uWSGI reports its own binary as ``sys.executable``)."""
    name = os.path.basename(sys.executable or "")
    return fcntl is not None and os.name == "posix" and name.startswith("python")


class _Inbox:
    """The writer's end of the pipe, read by a thread of its own.

    A pipe holds 1 MiB at most, less than one chunk of a product feed: while the writer spent
    a chunk's time in the database, the parser filled the pipe and stopped, and then the writer
    waited for it. The thread drains the pipe into a queue of up to ``limit`` bytes of
    messages, so the parser runs on; it holds the GIL only to queue what it read (reads
    release it)."""

    def __init__(self, fd: int, limit: int):
        self.fd = fd
        self.limit = limit
        self._messages: deque[bytearray] = deque()
        self._queued = 0  # bytes
        self._state = threading.Condition()
        self._eof = False
        self._error: Exception | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="impexmod-parser-inbox", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        state = self._state
        try:
            while True:
                header = self._read(_HEADER.size)
                message = None if header is None else self._read(_HEADER.unpack(header)[0])
                if message is None:
                    break  # the end of the stream (or of a message cut short)
                with state:
                    while self._queued >= self.limit and not self._closed:
                        state.wait()  # the writer is this far behind: the parser waits too
                    if self._closed:
                        return
                    self._messages.append(message)
                    self._queued += len(message)
                    state.notify_all()
        except Exception as exc:  # raised in the writer by ``get``: a dead thread would hang it
            with state:
                self._error = exc
        finally:
            with state:
                self._eof = True
                state.notify_all()

    def _read(self, size: int) -> bytearray | None:
        """``size`` bytes from the pipe, read straight into their buffer; None at its end."""
        buffer = bytearray(size)
        view = memoryview(buffer)
        done = 0
        while done < size:
            read = os.readv(self.fd, [view[done:]])
            if not read:
                return None
            done += read
        return buffer

    def get(self) -> bytearray | None:
        """The next message, or None at the end of the stream."""
        state = self._state
        with state:
            while not self._messages:
                if self._error is not None:
                    raise self._error
                if self._eof:
                    return None
                state.wait()
            message = self._messages.popleft()
            self._queued -= len(message)
            state.notify_all()
        return message

    def close(self) -> None:
        """Stop reading (the writing end must be closed already, or be about to close)."""
        with self._state:
            self._closed = True
            self._state.notify_all()
        self._thread.join(5)
        if not self._thread.is_alive():  # never close a descriptor a read is still using
            os.close(self.fd)


class ParsedFeed:
    """The entries of one native feed, parsed by a child process; iterate once, then close."""

    def __init__(self, path: Path, label: str, source: str, languages: set[str]):
        self.label = label
        read_fd, write_fd = os.pipe()
        _widen(write_fd)
        args = {
            "fd": write_fd,
            "file": str(path),
            "label": label,
            "source": source,
            "languages": sorted(languages),
            "path": sys.path,
        }
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, json.dumps(args)],
                pass_fds=(write_fd,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)  # the child's copy is the only one: its end is our EOF
        self.inbox = _Inbox(read_fd, INBOX_BYTES)

    def entries(
        self,
        warn: Callable[[RowError], None],
        add_language: Callable[[str], bool],
        position: Callable[[int], None] | None = None,
    ) -> Iterator[Entry | None]:
        """The stream the in-process parser would give; its warnings go to ``warn`` and the
        languages it takes from the feed (a shop without any) to ``add_language``, in order."""
        file = self.label
        while True:
            tag, items = self._get()
            if tag == _END:
                return
            if tag == _REFUSED:
                raise ImportRefused(items)
            if tag == _FAILED:
                raise RuntimeError(f"the feed's parsing process failed:\n{items}")
            for item in items:
                if item is None:
                    yield None
                elif item.__class__ is tuple:
                    yield _top(item, file)
                elif item.__class__ is str:
                    add_language(item)
                else:
                    warn(item)
            if position is not None and tag:
                position(tag)

    def _get(self) -> tuple:
        data = self.inbox.get()
        if data is None:
            try:
                code = self.process.wait(5)
            except subprocess.TimeoutExpired:
                code = None
            raise RuntimeError(
                f"the feed's parsing process ended unexpectedly (exit code {code})"
            ) from None
        # A batch is tens of thousands of new objects, none of them garbage: the cyclic
        # collector would walk them again and again while they are built (4x the time).
        enabled = gc.isenabled()
        gc.disable()
        try:
            return pickle.loads(data)
        finally:
            if enabled:
                gc.enable()

    def close(self) -> None:
        """Stop the parser process (at once, if the import ended early) and close the pipe."""
        process = self.process
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self.inbox.close()  # its end of the pipe closed with the process: the read returns

    def __enter__(self) -> ParsedFeed:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()
