"""Bulk statements at driver speed: the bind processors SQLAlchemy would apply, applied once per
value, and the driver's ``executemany`` (Core's per-row parameter handling costs more than the
database does for these narrow rows).

New ids: SQLite gets them allocated here (the chunk's transaction holds SQLite's single write
lock, so ``max(id)`` cannot move under us); PostgreSQL and MariaDB use ``RETURNING`` with
SQLAlchemy's ordered batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter

from sqlalchemy import DateTime, Table, func, insert, select, text
from sqlalchemy.engine import Connection


def _processors(conn: Connection, table: Table, names: Sequence[str]) -> list:
    dialect = conn.dialect
    out = []
    for name in names:
        process = table.c[name].type._cached_bind_processor(dialect)
        if process is not None and isinstance(table.c[name].type, DateTime):
            process = _remembering(process)
        out.append(process)
    return out


def _remembering(process):
    """A processor that converts a value it has just converted only once: the rows of a chunk
    share their ``date_add``/``date_upd`` stamp, and SQLite's datetime formatting is slow."""
    last: list = [None, None]

    def run(value):
        if value is not last[0]:
            last[0], last[1] = value, process(value)
        return last[1]

    return run


def _placeholders(conn: Connection, count: int) -> str:
    mark = "?" if conn.dialect.paramstyle in ("qmark", "numeric") else "%s"
    return ", ".join([mark] * count)


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def _tuples(rows: list[dict], names: Sequence[str], processors: list) -> list[tuple]:
    # itemgetter reads a row's values in C; only the columns that have a bind processor
    # (numbers, booleans, dates on SQLite) are then converted in Python.
    if not names:
        return [() for _ in rows]
    get = itemgetter(*names)
    if len(names) == 1:
        (process,) = processors
        return [
            (value if process is None or value is None else process(value),)
            for value in map(get, rows)
        ]
    converted = [(i, p) for i, p in enumerate(processors) if p is not None]
    if not converted:
        return list(map(get, rows))
    out = []
    for row in rows:
        values = list(get(row))
        for i, process in converted:
            value = values[i]
            if value is not None:
                values[i] = process(value)
        out.append(tuple(values))
    return out


def lock_for_write(conn: Connection) -> None:
    """On SQLite, take the write lock now (a no-op UPDATE), so reads that follow are stable."""
    if conn.dialect.name == "sqlite":
        conn.execute(text("UPDATE change_epoch SET value = value WHERE 1 = 0"))


def insert_rows(conn: Connection, table: Table, rows: list[dict]) -> None:
    """INSERT rows that share their keys, in one executemany per 5,000 rows."""
    if not rows:
        return
    names = list(rows[0])
    _insert(conn, table, names, _tuples(rows, names, _processors(conn, table, names)))


def insert_values(conn: Connection, table: Table, names: list[str], rows: list[tuple]) -> None:
    """INSERT rows given as tuples of ``names`` (no dict per row), in executemany batches."""
    if not rows:
        return
    processors = _processors(conn, table, names)
    if any(processors):
        rows = _tuples(rows, range(len(names)), processors)
    _insert(conn, table, names, rows)


def _insert(conn: Connection, table: Table, names: list[str], rows: list[tuple]) -> None:
    sql = (
        f"INSERT INTO {_quote(conn, table.name)} ({', '.join(_quote(conn, n) for n in names)})"
        f" VALUES ({_placeholders(conn, len(names))})"
    )
    for start in range(0, len(rows), 5000):
        conn.exec_driver_sql(sql, rows[start : start + 5000])


def insert_ids(conn: Connection, table: Table, rows: list[dict]) -> list[int]:
    """INSERT rows (same keys each) and return their new ids, in order."""
    if not rows:
        return []
    if conn.dialect.name == "sqlite":
        names = list(rows[0])
        values = _tuples(rows, names, _processors(conn, table, names))
        return _insert_sqlite_ids(conn, table, names, values)
    stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    ids: list[int] = []
    for start in range(0, len(rows), 1000):
        ids.extend(conn.execute(stmt, rows[start : start + 1000]).scalars())
    return ids


def insert_values_ids(
    conn: Connection, table: Table, names: list[str], rows: list[tuple]
) -> list[int]:
    """INSERT rows given as tuples of ``names`` (no dict per row) and return their new ids."""
    if not rows:
        return []
    if conn.dialect.name == "sqlite":
        processors = _processors(conn, table, names)
        if any(processors):
            rows = _tuples(rows, range(len(names)), processors)
        return _insert_sqlite_ids(conn, table, names, rows)
    return insert_ids(conn, table, [dict(zip(names, row, strict=True)) for row in rows])


def _insert_sqlite_ids(
    conn: Connection, table: Table, names: list[str], values: list[tuple]
) -> list[int]:
    # The chunk's transaction holds SQLite's write lock: max(id) cannot move under us.
    lock_for_write(conn)
    first = (conn.execute(select(func.max(table.c.id))).scalar() or 0) + 1
    ids = list(range(first, first + len(values)))
    _insert(conn, table, ["id", *names], [(i, *v) for i, v in zip(ids, values, strict=True)])
    return ids


def update_rows(conn: Connection, table: Table, changes: list[tuple[dict, dict]]) -> None:
    """Apply ``(where, values)`` pairs as executemany UPDATEs, grouped by column sets; columns
    with a Python ``onupdate`` (``date_upd``) are set as Core would."""
    if not changes:
        return
    stamps = {
        c.name: c.onupdate.arg(None) if c.onupdate.is_callable else c.onupdate.arg
        for c in table.columns
        if c.onupdate is not None and not c.onupdate.is_sequence
    }
    groups: dict[tuple, list[tuple[dict, dict]]] = {}
    for where, values in changes:
        key = (tuple(sorted(where)), tuple(sorted(values)))
        groups.setdefault(key, []).append((where, values))
    mark = "?" if conn.dialect.paramstyle in ("qmark", "numeric") else "%s"
    for (where_keys, value_keys), items in groups.items():
        sets = list(value_keys) + [n for n in stamps if n not in value_keys]
        sql = (
            f"UPDATE {_quote(conn, table.name)} SET "
            + ", ".join(f"{_quote(conn, n)} = {mark}" for n in sets)
            + " WHERE "
            + " AND ".join(f"{_quote(conn, n)} = {mark}" for n in where_keys)
        )
        names = sets + list(where_keys)
        processors = _processors(conn, table, names)
        rows = [{**stamps, **values, **where} for where, values in items]
        for start in range(0, len(rows), 5000):
            conn.exec_driver_sql(sql, _tuples(rows[start : start + 5000], names, processors))


def select_in(
    conn: Connection, table: Table, columns: Sequence[str], where: dict, column: str, values
) -> list[tuple]:
    """``SELECT columns FROM table WHERE where AND column IN values`` at driver speed, in parts
    of 900 values (SQLite's historic bound-parameter limit), as plain tuples."""
    values = list(values)
    if not values:
        return []
    mark = "?" if conn.dialect.paramstyle in ("qmark", "numeric") else "%s"
    head = (
        f"SELECT {', '.join(_quote(conn, c) for c in columns)} FROM {_quote(conn, table.name)}"
        " WHERE "
        + "".join(f"{_quote(conn, k)} = {mark} AND " for k in where)
        + f"{_quote(conn, column)} IN "
    )
    fixed = list(_tuples([where], list(where), _processors(conn, table, list(where)))[0])
    process = table.c[column].type._cached_bind_processor(conn.dialect)
    out: list[tuple] = []
    # The DB-API cursor of the connection's own transaction: rows stay plain tuples.
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        for start in range(0, len(values), 900):
            part = values[start : start + 900]
            if process is not None:
                part = [process(v) for v in part]
            cursor.execute(head + "(" + ", ".join([mark] * len(part)) + ")", tuple(fixed + part))
            out.extend(tuple(r) for r in cursor.fetchall())
    finally:
        cursor.close()
    return out
