"""Customers (with their addresses) and orders (addresses copied, lines, status history).

An order's lines and history have no key of their own: they are replaced as a whole when what
the feed lists differs from what is stored. Order states are matched by name, and created when a
feed names one this shop lacks.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import delete

from impexmod.importing.context import (
    Chunk,
    changes_of,
    defaults,
    insert_ids,
    insert_rows,
    load_by,
    update_rows,
)
from impexmod.importing.entry import Entry
from impexmod.importing.keys import TABLES
from impexmod.importing.loaders.common import finish
from impexmod.models import OrderDetail, OrderHistory, OrderState

REQUIRED = {"customer": ("email", "firstname", "lastname"), "order": ("reference",)}
LINE_COLUMNS = [c.name for c in OrderDetail.__table__.columns if c.name not in ("id", "id_order")]


def plan(chunk: Chunk, entries: list[Entry]) -> None:
    """Match customers, orders and addresses; check what a new one needs."""
    for entry in entries:
        if chunk.dead(entry):
            continue
        chunk.decide(entry)
        existing = chunk.cache.setdefault(entry.kind, {})
        if entry.local_id is not None:
            existing[entry.local_id] = None
        if entry.action == "create":
            missing = [f for f in REQUIRED.get(entry.kind, ()) if not entry.values.get(f)]
            if missing:
                chunk.fail(entry, missing[0], f"a new {entry.kind} needs <{missing[0]}>")


def _write(chunk: Chunk, kind: str, items: list[tuple[Entry, dict]]) -> None:
    table = TABLES[kind]
    rows = {r.id: r for r in load_by(chunk.conn, table, "id", [e.local_id for e, _ in items])}
    base = defaults(table)
    new, updates = [], []
    for entry, values in items:
        row = rows.get(entry.local_id)
        if row is None:
            entry.action = "create"
            new.append((entry, {**base, **values}))
            continue
        diff = changes_of(row, values)
        entry.flags.setdefault("changes", {}).update(diff)
        if diff:
            updates.append(({"id": entry.local_id}, {k: v for k, (_, v) in diff.items()}))
    for (entry, _), id_ in zip(
        new, insert_ids(chunk.conn, table, [v for _, v in new]), strict=True
    ):
        chunk.created(entry, id_)
    update_rows(chunk.conn, table, updates)
    for entry, _ in items:
        if entry.action == "update":
            chunk.matched(entry)


def apply(chunk: Chunk, entries: list[Entry]) -> None:
    """Write customers then their addresses, or orders with what they carry."""
    todo = [e for e in entries if e.action in ("create", "update") and not chunk.dead(e)]
    if not todo:
        return
    kind = todo[0].kind
    if kind == "customer":
        items = []
        for entry in todo:
            values = dict(entry.values)
            if "id_lang" in entry.links:
                values["id_lang"] = chunk.id_of(entry.links["id_lang"])
            items.append((entry, values))
        _write(chunk, "customer", items)
        addresses = [(a, e.local_id) for e in todo for a in e.nested("address")]
        _addresses(chunk, addresses)
        for entry in todo:
            if entry.action == "create" or entry.flags.get("changes"):
                chunk.changed(("customer", entry.local_id))
            finish(chunk, entry)
        return
    _orders(chunk, todo)


def _addresses(chunk: Chunk, pairs: list[tuple[Entry, int | None]]) -> None:
    items = []
    for address, customer in pairs:
        if chunk.dead(address):
            continue
        address.local_id = chunk.match(address)
        if address.local_id is None and customer is None:
            chunk.warn(address, "address", "an address needs its customer: skipped")
            continue
        values = dict(address.values)
        if customer is not None and address.local_id is None:
            values["id_customer"] = customer
        address.action = "update" if address.local_id else "create"
        items.append((address, values))
    _write(chunk, "address", items)


def _state(chunk: Chunk, link) -> int | None:
    if link is None:
        return None
    found = chunk.id_of(link)
    if found is None and link.field == "name":
        row = {**defaults(OrderState.__table__), "name": link.value[:64]}
        found = insert_ids(chunk.conn, OrderState.__table__, [row])[0]
        chunk.keys.found[link] = found
    return found


def _orders(chunk: Chunk, todo: list[Entry]) -> None:
    items = []
    for entry in todo:
        values = dict(entry.values)
        customer = chunk.id_of(entry.links.get("id_customer"))
        if entry.links.get("id_customer") is not None and customer is None:
            chunk.warn(entry, "id_customer", f"unknown {entry.links['id_customer'].label()}")
        values["id_customer"] = customer
        state = _state(chunk, entry.links.get("current_state"))
        if state is None and entry.action == "create":
            chunk.fail(entry, "current_state", "a new order needs its <current_state>")
        if state is not None:
            values["current_state"] = state
        _addresses(chunk, [(a, customer) for a in entry.nested("address")])
        for address in entry.nested("address"):
            if address.local_id and address.flags.get("role") in ("delivery", "invoice"):
                values[f"id_address_{address.flags['role']}"] = address.local_id
        items.append((entry, values))
    _write(chunk, "order", items)
    _children(chunk, todo)
    for entry in todo:
        if entry.action == "create" or entry.flags.get("changes"):
            chunk.changed(("order", entry.local_id))
        finish(chunk, entry)


def _children(chunk: Chunk, orders: list[Entry]) -> None:
    """Replace the lines and the history of orders whose feed lists other ones."""
    conn = chunk.conn
    ids = [o.local_id for o in orders]
    lines = defaultdict(list)
    for r in sorted(load_by(conn, OrderDetail.__table__, "id_order", ids), key=lambda r: r.id):
        lines[r.id_order].append(tuple(r._mapping[c] for c in LINE_COLUMNS))
    history = defaultdict(list)
    for r in sorted(load_by(conn, OrderHistory.__table__, "id_order", ids), key=lambda r: r.id):
        history[r.id_order].append((r.id_order_state, r.date_add))
    new_lines, new_history, replace_lines, replace_history = [], [], [], []
    for order in orders:
        wanted = []
        for line in order.nested("order_detail"):
            values = {**defaults(OrderDetail.__table__), **line.values, "id_order": order.local_id}
            for name in ("product_id", "product_attribute_id"):
                values[name] = chunk.id_of(line.links.get(name)) or 0
            wanted.append(values)
        if (
            order.nested("order_detail")
            and [tuple(w[c] for c in LINE_COLUMNS) for w in wanted] != lines[order.local_id]
        ):
            replace_lines.append(order.local_id)
            new_lines.extend(wanted)
            order.flags.setdefault("changes", {})["lines"] = (
                len(lines[order.local_id]),
                len(wanted),
            )
        states = []
        for item in order.nested("order_history"):
            states.append(
                (_state(chunk, item.links.get("id_order_state")), item.values.get("date_add"))
            )
        if order.nested("order_history") and states != history[order.local_id]:
            replace_history.append(order.local_id)
            new_history.extend(
                {
                    "id_order": order.local_id,
                    "id_order_state": s,
                    "date_add": d or defaults(OrderHistory.__table__)["date_add"],
                }
                for s, d in states
                if s is not None
            )
            order.flags.setdefault("changes", {})["history"] = (
                len(history[order.local_id]),
                len(states),
            )
    for table, doomed, rows in (
        (OrderDetail.__table__, replace_lines, new_lines),
        (OrderHistory.__table__, replace_history, new_history),
    ):
        if doomed:
            conn.execute(delete(table).where(table.c.id_order.in_(doomed)))
        insert_rows(conn, table, rows)
