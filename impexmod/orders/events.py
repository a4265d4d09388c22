"""Inbound events as a carrier sends them: a JSON or XML body parsed safely, then each event
checked on its own, so that one bad event is rejected (with its index and why) while the others
are queued.

JSON: one event object, a list of them, or ``{"events": [...]}``. XML: ``<events>`` holding
``<event>`` elements (or one ``<event>``), each field an attribute or a child element. The XML is
parsed without DTD, entities or network (impexmod.importing.safexml's options); a DOCTYPE is
refused outright. docs/orders.md, "Inbound update feeds" describes the format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from impexmod.importing.safexml import PARSER_OPTIONS

TYPES = ("shipped", "delivered", "tracking")
MAX_EVENT_ID = 128  # inbound_event.event_id
MAX_TEXT = 64  # shipment.carrier and shipment.tracking_number


class MalformedBody(ValueError):
    """A body that is not well-formed JSON or XML, or not shaped as events; says where and why."""


@dataclass(frozen=True)
class Event:
    """One checked event, ready to be queued (``payload`` is what inbound_event stores)."""

    event_id: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Rejected:
    """An event of the body that was not queued: its position in the body, id and why."""

    index: int
    event_id: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """As the 202 answer lists it."""
        return {"index": self.index, "id": self.event_id, "reason": self.reason}


def is_xml(data: bytes, content_type: str | None) -> bool:
    """Whether the body is XML: by its content type, else by its first character."""
    kind = (content_type or "").lower()
    if "xml" in kind:
        return True
    if "json" in kind:
        return False
    return data.lstrip()[:1] == b"<"


def parse(data: bytes, content_type: str | None = None) -> list[Any]:
    """The raw events of a body (dicts, or what was sent in their place); MalformedBody if the
    body cannot be read as events at all."""
    if not data.strip():
        raise MalformedBody('the body is empty: send one event, a list, or {"events": [...]}')
    return _parse_xml(data) if is_xml(data, content_type) else _parse_json(data)


def _parse_json(data: bytes) -> list[Any]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"not UTF-8: byte {exc.start} cannot be decoded") from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedBody(
            f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    if isinstance(body, dict) and "events" in body:
        body = body["events"]
        if not isinstance(body, list):
            raise MalformedBody('"events" must be a list of event objects')
    elif isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        raise MalformedBody('expected an event object, a list of events, or {"events": [...]}')
    return body


def _parse_xml(data: bytes) -> list[Any]:
    parser = etree.XMLParser(**PARSER_OPTIONS)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (exc.lineno, 0)
        raise MalformedBody(f"malformed XML at line {line}, column {column}: {exc.msg}") from None
    if root.getroottree().docinfo.doctype:
        raise MalformedBody("refused: a DOCTYPE is not allowed (no DTD, no entities)")
    if root.tag == "event":
        return [_xml_event(root)]
    if root.tag != "events":
        raise MalformedBody(f"the root element is <{root.tag}>; expected <events> or <event>")
    found = []
    for child in root:
        if not isinstance(child.tag, str):
            continue  # a comment or processing instruction
        found.append(_xml_event(child) if child.tag == "event" else f"<{child.tag}>")
    return found


def _xml_event(elem: etree._Element) -> dict[str, Any]:
    event: dict[str, Any] = dict(elem.attrib)
    for child in elem:
        if isinstance(child.tag, str):
            event[child.tag] = (child.text or "").strip()
    return event


def _text(raw: dict, *names: str) -> str | None:
    for name in names:
        value = raw.get(name)
        if value is None or isinstance(value, (dict, list, bool)):
            continue
        text = str(value).strip()
        if text:
            return text
    return None


def _timestamp(text: str) -> str:
    """An ISO 8601 moment, as naive UTC ISO text (a moment without offset is taken as UTC)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds")


def check(raw: Any) -> dict[str, Any]:
    """The stored payload of one raw event; ValueError saying what is wrong with it."""
    if not isinstance(raw, dict):
        shown = raw if isinstance(raw, str) and raw.startswith("<") else type(raw).__name__
        raise ValueError(f"not an event object ({shown})")
    event_id = _text(raw, "id", "event_id")
    if event_id is None:
        raise ValueError("no event id (id or event_id)")
    if len(event_id) > MAX_EVENT_ID:
        raise ValueError(f"the event id is over {MAX_EVENT_ID} characters")
    kind = (_text(raw, "type") or "").lower()
    if not kind:
        raise ValueError(f"no type ({', '.join(TYPES)})")
    if kind not in TYPES:
        raise ValueError(f"type {kind!r} is not one of {', '.join(TYPES)}")
    payload: dict[str, Any] = {"id": event_id, "type": kind}
    if (order_id := _text(raw, "order_id")) is not None:
        if not order_id.isdigit():
            raise ValueError(f"order_id {order_id!r} is not a number")
        payload["order_id"] = int(order_id)
    elif (reference := _text(raw, "order_reference")) is not None:
        payload["order_reference"] = reference[:64]
    elif (order := _text(raw, "order")) is not None:
        payload["order"] = order[:64]
    else:
        raise ValueError("no order (order, order_reference or order_id)")
    if (number := _text(raw, "shipment", "shipment_number")) is not None:
        if not number.isdigit() or not 1 <= int(number) <= 999:
            raise ValueError(f"shipment {number!r} is not a shipment number (1 to 999)")
        payload["shipment"] = int(number)
    texts = (("carrier", ("carrier",)), ("tracking_number", ("tracking_number", "tracking")))
    for key, names in texts:
        if (value := _text(raw, *names)) is not None:
            if len(value) > MAX_TEXT:
                raise ValueError(f"{key} is over {MAX_TEXT} characters")
            payload[key] = value
    if kind == "tracking" and "tracking_number" not in payload and "carrier" not in payload:
        raise ValueError("a tracking event needs a tracking_number or a carrier")
    if (stamp := _text(raw, "timestamp")) is not None:
        try:
            payload["timestamp"] = _timestamp(stamp)
        except ValueError:
            raise ValueError(f"timestamp {stamp!r} is not an ISO 8601 date and time") from None
    return payload


def checked(raws: list[Any]) -> tuple[list[Event], list[Rejected]]:
    """Each raw event checked: the good ones in body order, and the rejected with why."""
    good, rejected = [], []
    for index, raw in enumerate(raws):
        try:
            payload = check(raw)
        except ValueError as exc:
            event_id = _text(raw, "id", "event_id") if isinstance(raw, dict) else None
            rejected.append(Rejected(index, event_id and event_id[:MAX_EVENT_ID], str(exc)))
            continue
        good.append(Event(payload["id"], payload))
    return good, rejected
