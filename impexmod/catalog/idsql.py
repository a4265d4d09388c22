"""Reading the rows of a chunk of ids: as one key range when the ids are dense, else by IN
lists small enough for every database."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy.engine import Connection, Row

# SQLite allows 999 bound parameters in old builds; IN lists are split below that.
IN_LIMIT = 900
# A chunk whose ids span at most this many times their number is read as one key range.
DENSE_SPAN = 2


def rows_in(conn: Connection, stmt, column, ids: Sequence[int]) -> list[Row]:
    """Run ``stmt`` restricted to ``column IN ids``: as one range when the ids are dense (as a
    full export's chunks are), else in parts of an IN list."""
    if not ids:
        return []
    low, high = min(ids), max(ids)
    if len(ids) > 1 and high - low < DENSE_SPAN * len(ids):
        # A BETWEEN on the index costs the database and the compiler far less than hundreds of
        # bound parameters; rows of ids in the range but not asked for are dropped here.
        rows = conn.execute(stmt.where(column.between(low, high))).all()
        if high - low + 1 == len(ids) and len(set(ids)) == len(ids):
            return rows
        wanted, name = set(ids), column.key
        return [r for r in rows if r._mapping[name] in wanted]
    out: list[Row] = []
    for part in chunks(ids):
        out.extend(conn.execute(stmt.where(column.in_(part))))
    return out


def chunks(ids: Sequence[int], size: int = IN_LIMIT) -> Iterable[Sequence[int]]:
    """Split ``ids`` into parts small enough for an IN clause."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
