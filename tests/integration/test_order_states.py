"""The order state machine and export flags (impexmod.orders.states, .flags), on the test
database (SQLite, or PostgreSQL/MariaDB in CI): allowed and refused moves, history and change
log, flags set by transitions, approvals, claims, and two threads moving one order at once."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from impexmod.catalog import changes
from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.factories.orm import OrderFactory
from impexmod.models import EntityChange, FlagStatus, OrderFlag, OrderHistory, OrderLog
from impexmod.orders import flags, states
from impexmod.runs.feedstore import get_store
from tests.support import parse_feed


@pytest.fixture
def shop(app):
    """Standard states and transitions, ``erp`` set on payment, ``warehouse`` needing approval."""
    order = OrderFactory(reference="ORD1", state="Awaiting payment")
    db.session.commit()
    states.ensure_standard_transitions()
    flags.define("erp", "ERP")
    flags.define("warehouse", "Warehouse", needs_approval=True)
    states.allow("Awaiting payment", "Payment accepted", ["erp"])
    states.allow("Payment accepted", "Processing in progress", ["warehouse"])
    return order.id


def _state_of(order_id):
    db.session.expire_all()
    return states.find_order(order_id).current_state


def test_an_allowed_move_writes_history_log_change_and_flags(shop):
    before = db.session.scalar(select(func.max(EntityChange.id)))
    moved = states.move("ORD1", "payment accepted", actor="test")
    assert (moved.from_state, moved.to_state, moved.flags) == (
        "Awaiting payment",
        "Payment accepted",
        ["erp"],
    )
    assert _state_of(shop) == states.state_named("Payment accepted").id
    assert [h["state"] for h in states.history(shop)] == ["Awaiting payment", "Payment accepted"]
    # The history row is an ORM write on the order: the change log names the order.
    kinds = db.session.execute(
        select(EntityChange.entity_type, EntityChange.entity_id).where(EntityChange.id > before)
    ).all()
    assert ("order", shop) in kinds
    [flag] = flags.of_order(shop)
    assert (flag.flag, flag.status, flag.generation) == ("erp", FlagStatus.READY, 1)
    logged = db.session.scalars(select(OrderLog.message).where(OrderLog.id_order == shop)).all()
    assert any("Awaiting payment -> Payment accepted (test)" in m for m in logged)


def test_a_refused_move_names_the_order_both_states_and_writes_nothing(shop):
    with pytest.raises(states.IllegalTransition) as caught:
        states.move(shop, "Delivered", actor="test")
    assert str(caught.value) == (
        "order ORD1 cannot go from 'Awaiting payment' to 'Delivered': no such transition"
    )
    assert db.session.scalar(select(func.count()).select_from(OrderHistory)) == 1
    assert flags.of_order(shop) == []
    with pytest.raises(states.StateError, match="no order state 'Teleported'"):
        states.move(shop, "Teleported", actor="test")
    with pytest.raises(states.OrderNotFound):
        states.move("NOPE", "Payment accepted", actor="test")


def test_expected_state_makes_a_stale_move_a_conflict(shop):
    states.move(shop, "Payment accepted", actor="a")
    with pytest.raises(states.TransitionConflict, match="no longer in 'Awaiting payment'"):
        states.move(shop, "Canceled", actor="b", expected="Awaiting payment")
    assert _state_of(shop) == states.state_named("Payment accepted").id


def test_merchant_states_and_transitions(shop):
    states.add_state("Awaiting pickup", shipped=True)
    with pytest.raises(states.StateError, match="already called"):
        states.add_state("awaiting PICKUP")
    with pytest.raises(flags.FlagError, match="no export flag 'crm'"):
        states.allow("Processing in progress", "Awaiting pickup", ["crm"])
    states.allow("Processing in progress", "Awaiting pickup", ["erp"])
    found = [t for t in states.transitions() if t["to"] == "Awaiting pickup"]
    assert found == [
        {
            "id": found[0]["id"],
            "from": "Processing in progress",
            "to": "Awaiting pickup",
            "flags": ["erp"],
        }
    ]
    states.forbid("Processing in progress", "Awaiting pickup")
    assert not [t for t in states.transitions() if t["to"] == "Awaiting pickup"]
    with pytest.raises(states.StateError, match="there is no transition"):
        states.forbid("Processing in progress", "Awaiting pickup")


def test_held_flags_wait_for_approval_and_are_decided_once(shop):
    heard: list[set[str]] = []
    flags.on_ready(heard.append)
    try:
        states.move(shop, "Payment accepted", actor="t")
        states.move(shop, "Processing in progress", actor="t")
        [held] = flags.held("warehouse")
        assert held.status == FlagStatus.HELD
        assert heard == [{"erp"}]  # held flags are not announced
        [approved] = flags.approve([held.id], actor="merchant")
        assert approved.status == FlagStatus.READY
        assert heard == [{"erp"}, {"warehouse"}]
        assert flags.reject([held.id], actor="other") == []  # decided already
    finally:
        flags._READY_LISTENERS.remove(heard.append)


def test_claims_are_shared_out_and_a_served_flag_is_set_again_as_a_new_generation(shop):
    states.move(shop, "Payment accepted", actor="t")
    [row] = flags.claim("erp", run_id=7, limit=10)
    assert flags.claim("erp", run_id=8, limit=10) == []  # already claimed by run 7
    flags.failed(row, task_id=1, run_id=7, error="HTTP 500")
    db.session.expire_all()
    row = db.session.get(OrderFlag, row.id)
    assert (row.status, row.attempts, row.last_error) == (FlagStatus.READY, 1, "HTTP 500")
    [row] = flags.claim("erp", run_id=8, limit=10)
    key = row.idempotency_key("shop")
    assert flags.served(row, task_id=1, run_id=7, outcome="HTTP 200") == []  # not its claim
    next_flags = flags.served(
        row, task_id=1, run_id=8, outcome="HTTP 200", next_flags=["warehouse"]
    )
    assert [(p.flag, p.status) for p in next_flags] == [("warehouse", FlagStatus.HELD)]
    db.session.expire_all()
    row = db.session.get(OrderFlag, row.id)
    assert (row.status, row.served_by, row.outcome, row.attempts) == ("sent", 1, "HTTP 200", 2)
    # Moving back through payment sets erp again: a new generation, hence a new key.
    states.allow("Payment accepted", "Awaiting payment")
    states.move(shop, "Awaiting payment", actor="t")
    states.move(shop, "Payment accepted", actor="t")
    db.session.expire_all()
    row = db.session.get(OrderFlag, row.id)
    assert (row.status, row.generation) == (FlagStatus.READY, 2)
    assert row.idempotency_key("shop") != key


def test_release_stale_puts_back_the_claims_of_dead_runs(shop):
    states.move(shop, "Payment accepted", actor="t")
    flags.claim("erp", run_id=5, limit=1)
    assert flags.release_stale("erp", active_runs=[5]) == 0
    assert flags.release_stale("erp", active_runs=[6]) == 1
    assert [r.status for r in flags.of_order(shop)] == [FlagStatus.READY]


def test_two_threads_moving_one_order_one_wins_the_other_conflicts(app, shop):
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def mover(target):
        with app.app_context():
            barrier.wait()
            try:
                # Both act on the state they saw (as the panel's form does): whichever
                # comes second, before or after the other's commit, is a conflict.
                states.move(shop, target, actor=target, expected="Awaiting payment")
                outcomes.append("moved")
            except states.TransitionConflict:
                outcomes.append("conflict")
            finally:
                db.session.remove()

    for _ in range(5):
        threads = [
            threading.Thread(target=mover, args=(t,)) for t in ("Payment accepted", "Canceled")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(outcomes) == ["conflict", "moved"], outcomes
        db.session.expire_all()
        history = states.history(shop)
        assert len(history) == 2  # the first row and the winner's: nothing half-written
        won = history[-1]["state"]
        assert db.session.scalar(
            select(func.count()).select_from(OrderFlag).where(OrderFlag.id_order == shop)
        ) == (1 if won == "Payment accepted" else 0)
        # Reset for the next round.
        db.session.execute(OrderHistory.__table__.delete().where(OrderHistory.id > 1))
        db.session.execute(OrderFlag.__table__.delete())
        order = states.find_order(shop)
        order.current_state = states.state_named("Awaiting payment").id
        db.session.commit()
        outcomes.clear()
    changes.claim_epoch()  # the change log still takes its epoch after the races


def test_an_incremental_order_feed_lists_the_order_a_move_changed(shop):
    other = OrderFactory(reference="ORD2", state="Awaiting payment")
    db.session.commit()
    task = exporters.create_exporter("orders", "orders", "xml", "incremental")

    def references():
        run = jobs.start_run(task, inline=True)
        assert run.status == "succeeded", run.error
        store = get_store()
        with store.open(task.id, store.current(task.id).name) as fh:
            root = parse_feed(fh.read())
        return sorted(e.findtext("reference") for e in root.iter("order"))

    assert references() == ["ORD1", "ORD2"]  # the first run lists everything
    states.move(other.id, "Payment accepted", actor="t")
    assert references() == ["ORD2"]
    assert references() == []  # nothing moved since


def test_a_write_between_the_read_and_the_update_is_a_conflict_with_nothing_written(
    shop, monkeypatch
):
    real = states.transition
    cancelled = states.state_named("Canceled").id

    def another_writer_first(source, target):
        # Another process moves the order after move() read its state, before its UPDATE.
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE orders SET current_state = {cancelled} WHERE id = {shop}")
        return real(source, target)

    monkeypatch.setattr(states, "transition", another_writer_first)
    with pytest.raises(states.TransitionConflict, match="no longer in 'Awaiting payment'"):
        states.move(shop, "Payment accepted", actor="t")
    monkeypatch.undo()
    db.session.expire_all()
    assert len(states.history(shop)) == 1
    assert flags.of_order(shop) == []
    assert states.find_order(shop).current_state == cancelled
