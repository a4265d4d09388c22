"""The import engine: entries in, chunks written in dependency order, each chunk all or nothing.

A chunk is planned (keys resolved, modes decided, links checked: no writes) and then applied with
bulk statements in one transaction. An entry that turns out bad while its chunk is being written
makes the chunk roll back and run again without it, so a rejected entry leaves nothing behind;
an unexpected database error isolates entries one by one. A dry run does all of this inside one
transaction that is rolled back at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flask import current_app
from sqlalchemy import insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from impexmod.catalog import changes
from impexmod.catalog.identity import shop_source
from impexmod.entities import derived
from impexmod.entities.base import resolve_ref
from impexmod.extensions import db
from impexmod.importing.context import Chunk, EntryFailed, Options, root_of
from impexmod.importing.defaults import setting
from impexmod.importing.entry import OWN, Entry, language_code
from impexmod.importing.errors import RowError
from impexmod.importing.loaders import operations, stock
from impexmod.importing.loaders.base import Loader
from impexmod.importing.memory import collect_chunk, quiet_gc, release
from impexmod.importing.report import Report
from impexmod.models import Language

# Entity kinds, parents first, and the loader of each: from the entity specs.
ORDER = derived.IMPORT_ORDER


def loader(kind: str) -> Loader:
    """The loader of an entity kind (its spec names it)."""
    return resolve_ref(derived.LOADERS[kind])


def _refs(entry: Entry, out: list) -> None:
    if entry.ref is not None:
        out.append(entry.ref)
    for link in entry.links.values():
        if link is not None and link.__class__ is not Entry:
            out.append(link)
    if entry.kind == "stock" and entry.parent is None and not entry.links:
        out.extend(stock.refs(entry))


def run_chunk(chunk: Chunk, tops: list[Entry]) -> None:
    """Plan then apply one chunk of top-level entries."""
    by_kind: dict[str, list[Entry]] = {k: [] for k in ORDER}
    ops: list[Entry] = []
    every: list[Entry] = []
    for top in tops:
        if "operation" in top.flags:
            ops.append(top)
        elif top.children:
            tree = top.walk()
            # Kept for ``release`` (and a retry of the chunk): one flat list, walked once.
            top.tree = tree
            every.extend(tree)
        else:
            every.append(top)
    refs: list = []
    add = refs.append
    for entry in every:
        entries = by_kind.get(entry.kind)
        if entries is not None:
            entries.append(entry)
        # ``_refs``, inline: it runs for every entry of the feed.
        if entry.ref is not None:
            add(entry.ref)
        links = entry.links
        if links:
            for link in links.values():
                if link is not None and link.__class__ is not Entry:
                    add(link)
        elif entry.kind == "stock" and entry.parent is None:
            refs.extend(stock.refs(entry))
    for entry in ops:
        _refs(entry, refs)
    for entries in by_kind.values():
        refs.extend(chunk.identifier_refs(entries))
    refs.extend(chunk.identifier_refs(ops))
    chunk.keys.resolve(refs)
    chunk.cache["product_entries"] = by_kind["product"]
    for kind in ORDER:
        if by_kind[kind]:
            loader(kind).plan(chunk, by_kind[kind])
    operations.plan(chunk, ops)
    chunk.applying = True
    for kind in ORDER:
        if by_kind[kind] or kind == "combination" and by_kind["product"]:
            loader(kind).apply(chunk, by_kind[kind])
    operations.apply(chunk, ops)
    for kind in ORDER:
        skipped = sum(1 for e in by_kind[kind] if e.action == "skip" and not chunk.dead(e))
        if skipped:
            chunk.count(kind, "skipped", skipped)
    chunk.register_keys()
    deletes = chunk.log.deletes
    changes.record(chunk.conn, chunk.log.upserts - deletes, deletes)


class Importer:
    """Writes entries chunk by chunk and keeps the run's report."""

    def __init__(
        self,
        conn: Connection,
        options: Options,
        report: Report,
        progress: Callable[[int], None] | None = None,
    ):
        self.conn = conn
        self.options = options
        self.report = report
        self.progress = progress
        self.shop = shop_source()
        self.langs = dict(conn.execute(select(Language.iso_code, Language.id)).all())
        conn.rollback()  # end the read that began a transaction: chunks begin their own
        self.seen: dict[str, set[int]] = {}
        self.sources: set[str] = set()
        self.kinds: set[str] = set()
        self.own_keys = False
        self.partial: str | None = None  # why the input is not the whole catalog
        self.missing: tuple[str, str] | None = None  # root delete-missing / disable-missing
        # What the input holds is remembered only when something absent may be removed.
        self.track_seen = options.delete or options.disable
        self.outer = None
        # A whole-file check still running (``hold``): the chunks written meanwhile are held in
        # one transaction (``held``), committed once it has passed.
        self.pending = None
        self.held = None
        self._done = 0  # entries read by the last ``feed``
        if options.dry_run:
            self.outer = conn.begin()
            _open_write(conn)

    def add_language(self, iso: str) -> bool:
        """Create a language a feed uses (only for a shop that has none yet)."""
        if not language_code(iso):
            return False
        with self._begin():
            row = {"iso_code": iso.lower(), "name": iso.lower(), "active": True}
            id_ = self.conn.execute(insert(Language).values(row)).inserted_primary_key[0]
        self.langs[iso] = id_
        return True

    def hold(self, check) -> None:
        """Commit nothing until ``check`` (a ``safexml.Check``) has passed; if it fails, roll
        back every chunk written since and raise its refusal."""
        self.pending = check

    def _settle(self, wait: bool = False) -> None:
        check = self.pending
        if check is None or not (wait or check.done()):
            return
        check.result()  # raises the refusal: ``feed`` then drops what was held
        self.pending = None
        if self.held is not None:
            self.held.commit()
            self.outer = self.held = None

    def _drop_held(self) -> None:
        """The file failed (its check, or its reading): roll back what was held for it."""
        if self.pending is None:
            return  # nothing held: the chunks before the failure were committed
        self.pending = None
        if self.held is not None:
            self.held.rollback()
            self.outer = self.held = None
        self.report.written_nothing(self.report.file)  # a dry run's: would have been

    # ----------------------------------------------------------------------- input

    def feed(self, entries: Iterable[Entry | None]) -> None:
        """Write a stream of top-level entries (None items only advance progress)."""
        try:
            with quiet_gc():
                self._feed(entries)
            self._settle(wait=True)
        except BaseException:
            self._drop_held()
            raise
        if self.progress:
            self.progress(self._done)

    def _feed(self, entries: Iterable[Entry | None]) -> None:
        limit = int(setting("IMPORT_CHUNK"))
        batch: list[Entry] = []
        weight = 0
        keys: set = set()
        done = chunks = 0
        for entry in entries:
            done += 1
            if entry is None:
                continue
            if entry.errors:
                for error in entry.errors:
                    self.report.add_error(error, entry.kind)
                release([entry])
                continue
            self._note(entry)
            key = entry.ref if entry.kind != "stock" else None
            if key is not None and key in keys:
                self._write(batch)  # one key twice in a chunk: write the first one first
                release(batch)
                chunks += 1
                collect_chunk(chunks)
                batch, weight, keys = [], 0, set()
            batch.append(entry)
            keys.add(key)
            weight += entry.size
            if weight >= limit:
                self._write(batch)
                release(batch)
                chunks += 1
                collect_chunk(chunks)
                batch, weight, keys = [], 0, set()
                # Not while chunks are held: on SQLite, the progress commit (another
                # connection) would wait for this one's lock.
                if self.progress and self.held is None:
                    self.progress(done)
        if batch:
            self._write(batch)
            release(batch)
        self._done = done

    def _note(self, entry: Entry) -> None:
        if "operation" in entry.flags:
            return
        self.kinds.add(entry.kind)
        ref = entry.ref
        if ref is None or ref.field:
            return
        if ref.source in (OWN, self.shop):
            self.own_keys = True
        else:
            self.sources.add(ref.source)

    # ----------------------------------------------------------------------- chunks

    def _begin(self):
        """A transaction for one chunk: a savepoint inside a dry run's transaction, or inside
        the one that holds chunks until the file's check has passed."""
        if self.outer is None and self.pending is not None:
            if self.conn.in_transaction():
                self.conn.commit()
            self.outer = self.held = self.conn.begin()
            _open_write(self.conn)
        if self.outer is not None:
            return self.conn.begin_nested()
        if self.conn.in_transaction():
            self.conn.commit()
        return self.conn.begin()

    def _chunk(self) -> Chunk:
        return Chunk(self.conn, self.shop, self.options, self.langs, self.options.dry_run)

    def _write(self, tops: list[Entry]) -> None:
        while tops:
            tx = self._begin()
            chunk = self._chunk()
            try:
                run_chunk(chunk, tops)
            except EntryFailed as failed:
                tx.rollback()
                self.report.add_error(chunk.errors[-1], failed.entry.kind)
                tops = [t for t in tops if t is not failed.entry]
                continue
            except SQLAlchemyError as exc:
                tx.rollback()
                if len(tops) > 1:
                    for top in tops:
                        self._write([top])
                    return
                current_app.logger.warning("import: database refused %s: %s", tops[0].origin, exc)
                cause = getattr(exc, "orig", None) or exc
                reason = f"the database refused it: {str(cause)[:300]}"
                self.report.add_error(RowError.at(tops[0].origin, "", reason), tops[0].kind)
                return
            except BaseException:
                tx.rollback()
                raise
            tx.commit()
            self._merge(chunk)
            self._settle()
            return

    def _merge(self, chunk: Chunk) -> None:
        for error in chunk.errors:
            self.report.add_error(error, root_of_kind(error, chunk))
        for warning in chunk.log.warnings:
            self.report.add_error(warning)
        self.report.add_counts(chunk.log.counts)
        self.report.add_diffs(chunk.log.diffs)
        if self.track_seen:
            for kind, ids in chunk.log.seen.items():
                self.seen.setdefault(kind, set()).update(ids)

    # ----------------------------------------------------------------------- the end

    def remove_absent(self, partial: str | None, missing_source: str | None, action: str) -> None:
        """Delete or disable what the input no longer holds, unless that would be unsafe."""
        if self.report.refused or self.report.error_count:
            self.report.add_error(
                RowError(
                    self.report.file,
                    None,
                    "",
                    "mode",
                    "delete-absent refused: the input had errors, so it may be incomplete",
                    "warning",
                )
            )
            return
        if partial:
            self.report.add_error(
                RowError(
                    self.report.file,
                    None,
                    "",
                    "mode",
                    f"delete-absent refused: the input is partial ({partial})",
                    "warning",
                )
            )
            return
        if missing_source:
            sources = [missing_source]
        elif self.own_keys or not self.sources:
            sources = None
        else:
            sources = sorted(self.sources)
        for kind in sorted(self.kinds):
            # A stock row lives and dies with its product: a stock file deletes no stock.
            if kind not in operations.DELETABLE or kind == "stock":
                continue
            doomed = operations.absent(self.conn, kind, sources, self.seen.get(kind, set()))
            if action == "disable" and kind not in operations.DISABLEABLE:
                continue
            for start in range(0, len(doomed), 1000):
                tx = self._begin()
                chunk = self._chunk()
                chunk.applying = True
                part = doomed[start : start + 1000]
                if action == "disable":
                    operations.disable(chunk, kind, part)
                else:
                    operations.remove(chunk, kind, part)
                changes.record(chunk.conn, chunk.log.upserts - chunk.log.deletes, chunk.log.deletes)
                tx.commit()
                self._merge(chunk)

    def close(self) -> None:
        """End the run: a dry run's transaction is rolled back, so nothing stays written."""
        if self.outer is not None:
            self.outer.rollback()
            self.outer = None


def root_of_kind(error: RowError, chunk: Chunk) -> str | None:
    """The entity type an error is counted under (the failed top-level entry's)."""
    for entry in chunk.failed:
        if entry.origin.path and error.path.startswith(entry.origin.path):
            return root_of(entry).kind
    return None


def _open_write(conn: Connection) -> None:
    # pysqlite opens its transaction lazily, at the first write: a SAVEPOINT issued before that
    # would be taken for the transaction itself, and releasing it would commit.
    if conn.dialect.name == "sqlite":
        conn.execute(text("UPDATE change_epoch SET value = value WHERE 1 = 0"))


def open_connection() -> Connection:
    """A connection of its own for an import (so the ORM session is not involved)."""
    return db.engine.connect()
