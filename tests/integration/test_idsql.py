"""Rows of a chunk of ids (impexmod.catalog.idsql): by key range when dense, else by IN lists."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, event, insert, select

from impexmod.catalog.idsql import IN_LIMIT, rows_in

meta = MetaData()
child = Table("child", meta, Column("id", Integer, primary_key=True), Column("owner", Integer))


@pytest.fixture
def conn():
    engine = create_engine("sqlite://")
    meta.create_all(engine)
    with engine.begin() as c:
        # Owners 1..3000, each with two children; owner 0 has none.
        c.execute(insert(child), [{"owner": o} for o in range(1, 3001) for _ in range(2)])
    with engine.connect() as c:
        yield c
    engine.dispose()


def _statements(conn) -> list[str]:
    seen: list[str] = []
    event.listen(conn, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


@pytest.mark.parametrize(
    "ids",
    [
        list(range(1, 1001)),  # a full export's chunk: dense
        list(range(1, 2001, 2)),  # every other id: still read as one range, then filtered
        [5, 7, 2999],  # sparse: IN list
        list(range(1, 3001, 3)),  # sparse and longer than one IN list
        [42],
        [0, 1],  # an id without rows
    ],
)
def test_exactly_the_rows_of_the_ids_asked_for(conn, ids):
    rows = rows_in(conn, select(child), child.c.owner, ids)
    assert sorted(r.owner for r in rows) == sorted(o for o in ids if o > 0 for _ in range(2))


def test_dense_ids_take_one_range_query_and_sparse_ones_in_lists(conn):
    seen = _statements(conn)
    rows_in(conn, select(child), child.c.owner, list(range(1, 1501)))
    assert len(seen) == 1 and "BETWEEN" in seen[0]
    seen.clear()
    sparse = list(range(1, 3001, 3))
    rows_in(conn, select(child), child.c.owner, sparse)
    assert len(seen) == -(-len(sparse) // IN_LIMIT) and all(" IN " in s for s in seen)


def test_no_ids_no_query(conn):
    seen = _statements(conn)
    assert rows_in(conn, select(child), child.c.owner, []) == []
    assert seen == []
