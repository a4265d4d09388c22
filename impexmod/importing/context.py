"""What the loaders of one chunk share: the connection, resolved keys, options and the log."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection

from impexmod.importing.bulk import insert_ids, insert_rows, update_rows  # noqa: F401
from impexmod.importing.entry import OWN, Entry, Ref, same
from impexmod.importing.errors import RowError
from impexmod.importing.keys import KeyIndex, parts, register


class EntryFailed(Exception):
    """A top-level entry cannot be written; the chunk is rolled back and retried without it."""

    def __init__(self, entry: Entry):
        super().__init__(entry.origin.path)
        self.entry = entry


@dataclass
class Options:
    """How an import behaves: modes, dry run, whose keys, what may be removed."""

    create: bool = True
    update: bool = True
    delete: bool = False  # delete entries absent from the input
    disable: bool = False  # disable them instead
    dry_run: bool = False
    source: str | None = None
    remove_missing: frozenset[str] = frozenset()  # tags, combinations, categories, images
    entity: str | None = None  # what a flat file holds
    mapping: dict[str, str] = field(default_factory=dict)  # their header -> our column
    mapping_name: str | None = None  # a saved ImportMapping
    # A data group's descriptors: [{"pattern": "cat*.csv", "entity": ..., "format": ...}]
    group: list[dict] | None = None


@dataclass
class ChunkLog:
    """What one chunk did; merged into the run's report only if the chunk commits."""

    counts: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    diffs: list[dict] = field(default_factory=list)
    warnings: list[RowError] = field(default_factory=list)
    upserts: set[tuple[str, int]] = field(default_factory=set)
    deletes: set[tuple[str, int]] = field(default_factory=set)
    keys: list[tuple[str, str, str, int]] = field(default_factory=list)
    seen: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))


def root_of(entry: Entry) -> Entry:
    """The top-level entry an entry is nested in."""
    while entry.parent is not None:
        entry = entry.parent
    return entry


class Chunk:
    """One chunk's shared state. Loaders plan (no writes), then apply."""

    def __init__(
        self, conn: Connection, shop: str, options: Options, langs: dict[str, int], keep_diffs: bool
    ):
        self.conn = conn
        self.shop = shop
        self.options = options
        self.langs = langs  # iso -> id
        self.keys = KeyIndex(conn, shop)
        self.pending: dict[Ref, Entry] = {}
        self.log = ChunkLog()
        self.failed: set[Entry] = set()
        self.applying = False
        self.keep_diffs = keep_diffs
        self.errors: list[RowError] = []
        self.cache: dict[str, Any] = {}

    # --------------------------------------------------------------------- outcomes

    def fail(self, entry: Entry, field: str, reason: str) -> None:
        """Reject the top-level entry holding ``entry``; during writes, abort the chunk."""
        root = root_of(entry)
        self.errors.append(RowError.at(entry.origin, field, reason))
        self.failed.add(root)
        if self.applying:
            raise EntryFailed(root)

    def dead(self, entry: Entry) -> bool:
        """Whether the entry's top-level entry was rejected."""
        return bool(self.failed) and root_of(entry) in self.failed

    def warn(self, entry: Entry, field: str, reason: str) -> None:
        """A warning that does not stop the entry."""
        self.log.warnings.append(RowError.at(entry.origin, field, reason, "warning"))

    def count(self, kind: str, action: str, n: int = 1) -> None:
        """Count what happened to ``n`` entities of ``kind``."""
        self.log.counts[(kind, action)] += n

    def diff(self, entry: Entry, action: str, changes: dict[str, tuple[Any, Any]]) -> None:
        """Keep one entity's diff for a dry run's report."""
        if self.keep_diffs:
            self.log.diffs.append(
                {
                    "entity": entry.kind,
                    "key": label(entry),
                    "action": action,
                    "changes": {k: [_plain(o), _plain(n)] for k, (o, n) in changes.items()},
                }
            )

    def changed(self, *pairs: tuple[str, int]) -> None:
        """Record entities for the change log."""
        self.log.upserts.update(p for p in pairs if p[1])

    def seen(self, kind: str, local_id: int) -> None:
        """Remember an entity present in the input (for delete-absent)."""
        self.log.seen[kind].add(local_id)

    # ------------------------------------------------------------------------- keys

    def target(self, link) -> int | Entry | None:
        """A link's local id, or the entry of this chunk that will create it."""
        if link is None:
            return None
        if isinstance(link, Entry):
            return link
        if link in self.keys.found:
            return self.keys.found[link]
        return self.pending.get(link)

    def id_of(self, link) -> int | None:
        """A link's local id once the entries it may point to are written."""
        target = self.target(link)
        if isinstance(target, Entry):
            return target.local_id
        return target

    def match(self, entry: Entry) -> int | None:
        """The local id an entry names (its key, then its identifier field), or None."""
        if entry.ref is not None and entry.ref in self.keys.found:
            return self.keys.found[entry.ref]
        field_name = entry.flags.get("identifier")
        if field_name and entry.values.get(field_name) not in (None, ""):
            ref = Ref(entry.kind, field=field_name, value=str(entry.values[field_name]))
            if ref in self.keys.ambiguous:
                self.warn(entry, field_name, f"several {entry.kind}s have this {field_name}")
            return self.keys.found.get(ref)
        return None

    def identifier_refs(self, entries) -> list[Ref]:
        """The identifier refs of entries matched by a field (to resolve them in bulk)."""
        out = []
        for entry in entries:
            field_name = entry.flags.get("identifier")
            if field_name and entry.values.get(field_name) not in (None, ""):
                out.append(Ref(entry.kind, field=field_name, value=str(entry.values[field_name])))
        return out

    def decide(self, entry: Entry) -> None:
        """Match an entry and choose create, update or skip from its mode and the run's."""
        entry.local_id = self.match(entry)
        options = self.options
        if entry.local_id is not None:
            self.seen(entry.kind, entry.local_id)
            ok = options.update and entry.mode in ("both", "update")
            entry.action = "update" if ok else "skip"
        else:
            ok = options.create and entry.mode in ("both", "create")
            entry.action = "create" if ok else "skip"
            if ok and entry.ref is not None:
                self.pending.setdefault(entry.ref, entry)

    def created(self, entry: Entry, local_id: int) -> None:
        """An entry was inserted: remember its id and register its key."""
        entry.local_id = local_id
        if entry.ref is not None and entry.ref.source not in (None, OWN) and not entry.ref.field:
            self.log.keys.append((entry.ref.source, entry.kind, entry.ref.reference, local_id))

    def matched(self, entry: Entry) -> None:
        """An existing entity was matched by identifier: register its key for later runs."""
        if entry.ref is not None and entry.ref not in self.keys.found and entry.local_id:
            self.log.keys.append(
                (entry.ref.source, entry.kind, entry.ref.reference, entry.local_id)
            )

    def register_keys(self) -> None:
        """Insert the identity rows collected so far."""
        register(self.conn, self.shop, self.log.keys)
        self.log.keys = []


def label(entry: Entry) -> str:
    """How reports name an entry."""
    if entry.ref is not None:
        return entry.ref.label()
    if entry.local_id:
        return f"{entry.kind} #{entry.local_id}"
    return f"{entry.kind} at {entry.origin.path}"


def _plain(value):
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


# ------------------------------------------------------------------------- bulk statements


def defaults(table: Table) -> dict[str, Any]:
    """Every insertable column with its default, so that executemany rows share their keys."""
    out = {}
    for column in table.columns:
        if column.primary_key and column.autoincrement in (True, "auto") and column.name == "id":
            continue
        default = column.default
        if default is None:
            out[column.name] = None
        elif default.is_callable:
            # SQLAlchemy wraps zero-argument defaults (``now``) into one taking a context.
            out[column.name] = default.arg(None)
        else:
            out[column.name] = default.arg
    return out


def load_by(conn: Connection, table: Table, column: str, values) -> list:
    """Rows of ``table`` whose ``column`` is in ``values``."""
    values = sorted({v for v in values if v is not None})
    rows = []
    for part in parts(values):
        rows.extend(conn.execute(select(table).where(table.c[column].in_(part))).all())
    return rows


def changes_of(row, values: dict) -> dict[str, tuple[Any, Any]]:
    """Field -> (old, new) for the values that differ from a stored row."""
    mapping = row._mapping
    return {k: (mapping[k], v) for k, v in values.items() if not same(mapping[k], v)}
