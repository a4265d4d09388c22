"""Feed preview: the first entities of a task's current feed, pretty-printed.

The file is streamed with lxml's ``iterparse`` (no entity expansion, no network, no DTD) and
reading stops after the first entities, so a preview costs the same for any feed size.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree

from impexmod.messages import msg
from impexmod.models import Task
from impexmod.runs.feedstore import get_store

TEXT_FORMATS = ("csv", "json", "jsonl", "txt")
MAX_LINE = 2000  # characters of one text line shown


class PreviewError(ValueError):
    """The stored feed cannot be read back."""


@dataclass
class FeedPreview:
    """The head of a task's current feed."""

    run_id: int
    name: str
    size: int
    published_at: datetime
    kind: str  # xml | text | none
    root: dict[str, str] = field(default_factory=dict)
    entities: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    more: bool = False


def preview_feed(task: Task, limit: int = 10) -> FeedPreview | None:
    """The first ``limit`` entities of the feed the task's URL serves; None before its first run."""
    store = get_store()
    current = store.current(task.id)
    if current is None:
        return None
    preview = FeedPreview(
        run_id=current.run_id,
        name=current.name,
        size=current.size,
        published_at=datetime.fromtimestamp(current.published_at, UTC).replace(tzinfo=None),
        kind="none",
    )
    ext = current.name.rsplit(".", 1)[-1]
    if ext == "xml":
        preview.kind = "xml"
        _xml_head(store.open(task.id, current.name), current.name, limit, preview)
    elif ext in TEXT_FORMATS:
        preview.kind = "text"
        _text_head(store.open(task.id, current.name), limit, preview)
    return preview


def _xml_head(stream, name: str, limit: int, preview: FeedPreview) -> None:
    with stream as fh:
        _walk(fh, name, limit, preview)


def _walk(fh, name: str, limit: int, preview: FeedPreview) -> None:
    events = etree.iterparse(
        fh,
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_blank_text=True,
    )
    depth = 0
    try:
        for event, element in events:
            if event == "start":
                if depth == 0:
                    preview.root = {"element": element.tag, **dict(element.attrib)}
                elif depth == 1 and len(preview.entities) >= limit:
                    preview.more = True
                    break
                depth += 1
                continue
            depth -= 1
            if depth == 1:
                preview.entities.append(
                    etree.tostring(element, pretty_print=True, encoding="unicode", with_tail=False)
                )
                element.clear(keep_tail=False)
    except etree.XMLSyntaxError as exc:
        raise PreviewError(
            msg("%(name)s is not readable XML: %(error)s", name=name, error=str(exc))
        ) from None


def _text_head(stream, limit: int, preview: FeedPreview) -> None:
    # Flat formats have a header line, then one entity per line; only the head is read.
    buffered = io.BufferedReader(stream, 64 * 1024)
    with io.TextIOWrapper(buffered, encoding="utf-8-sig", errors="replace", newline="") as fh:
        for number, line in enumerate(fh):
            if number > limit:
                preview.more = True
                break
            line = line.rstrip("\r\n")
            preview.lines.append(line if len(line) <= MAX_LINE else line[:MAX_LINE] + " [...]")
