"""Standalone tags: ``<tag><name lang="en">red</name></tag>``, one name in one language."""

from __future__ import annotations

from sqlalchemy import func, select

from impexmod.importing.context import Chunk, insert_ids
from impexmod.importing.entry import Entry
from impexmod.models import Tag


def plan(chunk: Chunk, entries: list[Entry]) -> None:
    """Check that each tag has a name."""
    for entry in entries:
        if not chunk.dead(entry) and not any(entry.langs.get("name", {}).values()):
            chunk.fail(entry, "name", "a tag needs a <name>")


def apply(chunk: Chunk, entries: list[Entry]) -> None:
    """Find or create each tag (tags are few: one lookup per tag)."""
    for entry in entries:
        if chunk.dead(entry):
            continue
        found = chunk.match(entry)
        for iso, name in entry.langs.get("name", {}).items():
            langs = chunk.langs.values() if iso is None else [chunk.langs.get(iso)]
            for id_lang in [i for i in langs if i]:
                id_ = chunk.conn.execute(
                    select(Tag.id).where(
                        Tag.id_lang == id_lang, func.lower(Tag.name) == name.lower()[:32]
                    )
                ).scalar()
                if (
                    id_ is None
                    and found is None
                    and chunk.options.create
                    and entry.mode != "update"
                ):
                    id_ = insert_ids(
                        chunk.conn, Tag.__table__, [{"id_lang": id_lang, "name": name[:32]}]
                    )[0]
                    chunk.changed(("tag", id_))
                    chunk.count("tag", "created")
                    chunk.diff(entry, "create", {"name": (None, name)})
                    chunk.created(entry, id_)
                elif id_ is not None or found is not None:
                    entry.local_id = id_ or found
                    chunk.count("tag", "unchanged")
                    chunk.matched(entry)
                else:
                    chunk.count("tag", "skipped")
                if entry.local_id:
                    chunk.seen("tag", entry.local_id)
