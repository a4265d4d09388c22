"""Order exporters (impexmod.orders.exporter, .pipeline) on the test database, against a real
HTTP receiver on loopback: definitions, signed sends with idempotency keys, retries, bounded
timeouts, chains with approval, orders that keep failing, batches, pull mode, the CLI."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from impexmod.dispatch import jobs
from impexmod.extensions import db
from impexmod.factories.orm import OrderFactory
from impexmod.models import FlagStatus, OrderFlag, Run, Task
from impexmod.orders import exporter, flags, states
from impexmod.runs import lifecycle
from impexmod.runs.tasks import InvalidTask, TaskNotFound
from impexmod.runs.tokens import feed_url
from tests.order_receiver import receiving

SHOP = "testshop"


@pytest.fixture
def shop(app):
    """Standard states, ``erp`` set on payment, ``warehouse`` needing approval; fast retries."""
    app.config["ORDER_EXPORT_BACKOFF"] = 0.05
    for n in range(1, 4):
        OrderFactory(reference=f"ORD{n}", state="Awaiting payment")
    db.session.commit()
    states.ensure_standard_transitions()
    flags.define("erp", "ERP")
    flags.define("warehouse", "Warehouse", needs_approval=True)
    states.allow("Awaiting payment", "Payment accepted", ["erp"])
    return app


def _http(receiver, name="ERP", flag="erp", **more):
    more.setdefault("on_flag", False)
    return exporter.create_order_exporter(
        name, flag, url=receiver.url, secret=receiver.secret, **more
    )


def _run(task) -> Run:
    run = lifecycle.start(task, wait_seconds=60)
    db.session.expire_all()
    return db.session.get(Run, run.id)


def _flag(reference, name="erp") -> OrderFlag:
    db.session.expire_all()
    order = states.find_order(reference)
    return db.session.scalar(
        select(OrderFlag).where(OrderFlag.id_order == order.id, OrderFlag.flag == name)
    )


def _settle(*tasks, timeout=60) -> None:
    """Wait until no run of these tasks is queued or running (flag-triggered runs)."""
    deadline = time.monotonic() + timeout
    ids = [t.id for t in tasks]
    while time.monotonic() < deadline:
        db.session.rollback()
        active = db.session.scalars(
            select(Run).where(Run.task_id.in_(ids), Run.status.in_(("queued", "running")))
        ).all()
        if not active:
            return
        for run in active:
            jobs.wait(run, timeout=max(deadline - time.monotonic(), 0.1))
    raise AssertionError("runs still active")


def test_definitions_are_checked_field_by_field(shop):
    good = {"url": "http://127.0.0.1:9/x", "secret": "zq-secret-zq"}
    cases = [
        ({"flag": "crm"}, "flag"),
        ({"url": "ftp://x"}, "url"),
        ({"url": None}, "url"),
        ({"secret": None}, "secret"),
        ({"fmt": "csv"}, "format"),
        ({"template": "nope"}, "template"),
        ({"batch": 0}, "batch"),
        ({"timeout": 999}, "timeout"),
        ({"attempts": "many"}, "attempts"),
        ({"next_flags": ["erp"]}, "next_flags"),
        ({"next_flags": ["crm"]}, "next_flags"),
        ({"destination": "ftp"}, "destination"),
        ({"schedule": "sometimes"}, "schedule"),
    ]
    for change, field in cases:
        given = {"flag": "erp", **good, **change}
        with pytest.raises(InvalidTask) as caught:
            exporter.create_order_exporter("E", given.pop("flag"), **given)
        assert caught.value.field == field, (change, caught.value)
    with pytest.raises(InvalidTask, match="url: a pull exporter"):
        exporter.create_order_exporter("P", "erp", destination="pull", url="http://x/")
    with pytest.raises(InvalidTask, match="name"):
        exporter.create_order_exporter(" ", "erp", **good)
    assert db.session.scalar(select(Task.id)) is None  # nothing half-saved

    task = exporter.create_order_exporter(
        "ERP", "erp", next_flags=["warehouse"], fmt="json", batch=5, **good
    )
    assert (task.kind, task.entity, task.format) == ("order_export", "orders", "json")
    assert task.secrets == {"secret": "zq-secret-zq"} and "secret" not in json.dumps(task.options)
    exporter.update_order_exporter(task, batch=2, url="https://erp.example/orders")
    d = exporter.definition_of(exporter.get_order_exporter(task.id))
    assert (d.batch, d.url, d.secret, d.next_flags, d.on_flag) == (
        2,
        "https://erp.example/orders",
        "zq-secret-zq",
        ("warehouse",),
        True,
    )
    described = exporter.describe(task)
    assert described["has_secret"] and "zq-secret" not in json.dumps(described)
    assert [t.id for t in exporter.list_order_exporters("erp")] == [task.id]
    assert exporter.list_order_exporters("warehouse") == []
    exporter.delete_order_exporter(task)
    with pytest.raises(TaskNotFound):
        exporter.get_order_exporter(task.id)


def test_a_paid_order_is_posted_once_signed_with_its_idempotency_key(shop):
    with receiving() as erp:
        task = _http(erp, on_flag=True)  # started by the flag itself
        states.move("ORD1", "Payment accepted", actor="test")
        _settle(task)
        [post] = erp.posts
        flag = _flag("ORD1")
        key = flag.idempotency_key(SHOP)
        assert erp.signed(post)
        assert post.headers["Idempotency-Key"] == key == f"{SHOP}:order-{flag.id_order}:erp:1"
        assert post.headers["X-Impexmod-Flag"] == "erp"
        assert post.headers["Content-Type"] == "application/xml; charset=utf-8"
        assert post.order_keys() == [key]
        assert b"<reference>ORD1</reference>" in post.body
        assert (flag.status, flag.outcome, flag.served_by) == (FlagStatus.SENT, "HTTP 200", task.id)
        run = db.session.scalars(select(Run).where(Run.task_id == task.id)).one()
        assert (run.trigger, run.status, run.entity_count) == ("flag", "succeeded", 1)
        assert "attempt 1/3: HTTP 200: ok" in run.log
        # Sent once: a flag once sent is never claimed again.
        assert _run(task).entity_count == 0
        assert len(erp.posts) == 1


def test_a_500_is_retried_in_the_run_without_a_duplicate_at_the_receiver(shop):
    with receiving(script=[500]) as erp:
        task = _http(erp)
        states.move("ORD1", "Payment accepted", actor="test")
        run = _run(task)
        assert run.status == "succeeded" and run.warnings == []
        assert [p.answered for p in erp.posts] == [500, 200]
        assert len({p.headers["Idempotency-Key"] for p in erp.posts}) == 1
        assert list(erp.keys.values()) == [1]
        assert "attempt 1/3: HTTP 500: Internal error: the ERP is down xxx" in run.log
        excerpt = run.log.split("HTTP 500: ")[1].split("\n")[0]
        assert len(excerpt) == 200  # the first 200 characters, on one line
        assert "attempt 2/3: HTTP 200" in run.log
        assert _flag("ORD1").attempts == 1


def test_a_receiver_that_never_answers_is_given_up_after_the_timeout(shop):
    with receiving(script=["hang"]) as erp:
        task = _http(erp, timeout=1)
        states.move("ORD1", "Payment accepted", actor="test")
        started = time.monotonic()
        run = _run(task)
        assert time.monotonic() - started < 8
        assert run.status == "succeeded"
        assert "attempt 1/3: no answer within 1 s (timed out)" in run.log
        assert [p.answered for p in erp.posts] == ["hang", 200]
        assert erp.posts[0].headers["Idempotency-Key"] == erp.posts[1].headers["Idempotency-Key"]


def test_an_order_that_keeps_failing_shows_its_attempts_and_why(shop):
    with receiving(default=500) as erp:
        task = _http(erp, attempts=2)
        states.move("ORD1", "Payment accepted", actor="test")
        for number in range(1, 4):
            run = _run(task)
            assert run.status == "failed"
            assert run.error.startswith("every send failed (1 orders); the last: HTTP 500")
            flag = _flag("ORD1")
            assert (flag.status, flag.attempts) == (FlagStatus.READY, number)
            assert flag.last_error.startswith("HTTP 500: Internal error")
            assert flag.last_error.endswith("(after 2 attempt(s))")
        assert len(erp.posts) == 6
        [failing] = exporter.describe(task)["failing"]
        assert (failing["order_id"], failing["attempts"]) == (flag.id_order, 3)
        assert [f.id for f in flags.failing("erp")] == [flag.id]


def test_some_failures_make_a_run_that_succeeded_with_warnings(shop):
    with receiving(script=[500, 500]) as erp:
        task = _http(erp, attempts=2)
        states.move("ORD1", "Payment accepted", actor="test")
        states.move("ORD2", "Payment accepted", actor="test")
        run = _run(task)
        assert (run.status, run.entity_count, run.done) == ("succeeded", 1, 2)
        assert run.warnings == [
            "order ORD1: HTTP 500: " + ("Internal error: the ERP is down " + "x" * 300)[:200]
        ]
        assert (_flag("ORD1").status, _flag("ORD2").status) == ("ready", "sent")
        assert "Sent 1 of 2 orders flagged erp; 1 failed" in run.log
        # The next run sends what failed, once.
        assert _run(task).entity_count == 1
        assert sorted(erp.keys.values()) == [1, 1]


def test_the_chain_sets_the_next_flag_held_until_approved(shop):
    with receiving() as erp, receiving(secret="warehouse-secret") as warehouse:
        first = _http(erp, next_flags=["warehouse"], on_flag=True)
        second = _http(warehouse, name="Warehouse", flag="warehouse", on_flag=True)
        states.move("ORD1", "Payment accepted", actor="test")
        _settle(first, second)
        assert len(erp.posts) == 1 and warehouse.posts == []
        held = _flag("ORD1", "warehouse")
        assert held.status == FlagStatus.HELD and held.set_by.endswith("(chain)")
        assert _run(second).entity_count == 0  # held: not taken
        flags.approve([held.id], actor="merchant")
        _settle(first, second)
        [post] = warehouse.posts
        assert warehouse.signed(post) and post.headers["X-Impexmod-Flag"] == "warehouse"
        assert _flag("ORD1", "warehouse").status == FlagStatus.SENT


def test_a_batch_is_one_document_with_a_key_per_order(shop):
    with receiving() as erp:
        task = _http(erp, batch=10, fmt="json")
        for ref in ("ORD1", "ORD2", "ORD3"):
            states.move(ref, "Payment accepted", actor="test")
        run = _run(task)
        [post] = erp.posts
        body = json.loads(post.body)
        assert [o["reference"] for o in body["orders"]] == ["ORD1", "ORD2", "ORD3"]
        assert body["feed"]["flag"] == "erp" and post.headers["X-Impexmod-Orders"] == "3"
        keys = [_flag(r).idempotency_key(SHOP) for r in ("ORD1", "ORD2", "ORD3")]
        assert post.order_keys() == keys
        assert post.headers["Idempotency-Key"].startswith(f"{SHOP}:batch:erp:")
        assert erp.signed(post) and run.entity_count == 3


def test_a_send_cut_off_by_a_dead_run_is_sent_again_with_the_same_key(shop):
    with receiving() as erp:
        task = _http(erp)
        states.move("ORD1", "Payment accepted", actor="test")
        [claimed] = flags.claim("erp", run_id=999_999, limit=1)  # a run that died mid-send
        key = claimed.idempotency_key(SHOP)
        run = _run(task)
        assert "1 order(s) claimed by runs that died are sent again" in run.log
        assert [p.headers["Idempotency-Key"] for p in erp.posts] == [key]


def test_a_connection_refused_is_retried_then_recorded(shop):
    task = exporter.create_order_exporter(
        "ERP", "erp", url="http://127.0.0.1:9/orders", secret="k", attempts=2, on_flag=False
    )
    states.move("ORD1", "Payment accepted", actor="test")
    run = _run(task)
    assert run.status == "failed"
    assert run.log.count("connection refused") >= 2
    assert _flag("ORD1").last_error == "connection refused (after 2 attempt(s))"


def _fetch(client, path):
    response = client.get(path)
    response.get_data()
    response.close()  # the store's file
    return response


def test_pull_mode_serves_the_document_on_the_token_url(shop, client):
    task = exporter.create_order_exporter("Pull", "erp", destination="pull", fmt="xml")
    path = feed_url(task).removeprefix(shop.config["PUBLIC_URL"])
    assert path.endswith("/orders.xml")
    assert client.get(path).status_code == 404  # before the first run
    assert _run(task).status == "succeeded"
    assert client.get(path).status_code == 404  # nothing flagged: nothing written
    states.move("ORD1", "Payment accepted", actor="test")
    states.move("ORD2", "Payment accepted", actor="test")
    run = _run(task)
    assert run.status == "succeeded" and run.file_key == f"run-{run.id}.xml"
    got = _fetch(client, path)
    assert got.status_code == 200 and b"<reference>ORD2</reference>" in got.data
    assert got.data.count(b"idempotency-key=") == 2
    assert _flag("ORD1").status == _flag("ORD2").status == FlagStatus.SENT
    assert _flag("ORD1").outcome == f"served in run-{run.id}.xml"
    # An empty claim writes nothing new: the same document is served.
    assert _run(task).file_key is None
    assert _fetch(client, path).data == got.data


def test_cli_adds_lists_shows_runs_and_removes(shop, runner):
    with receiving() as erp:
        added = runner.invoke(
            args=["orders", "exporter", "add", "ERP", "--flag", "erp", "--next-flag", "warehouse"]
            + ["--format", "json", "--url", erp.url, "--secret", erp.secret, "--no-on-flag"]
            + ["--timeout", "5", "--attempts", "2", "--schedule", "daily@03:00", "--json"]
        )
        assert added.exit_code == 0, added.output
        task_id = json.loads(added.output)["id"]
        states.move("ORD1", "Payment accepted", actor="test")
        listed = runner.invoke(args=["orders", "exporter", "list"])
        assert "ERP  [flag erp then sets warehouse]" in listed.output
        assert "runs not when the flag is set; daily@03:00" in listed.output
        ran = runner.invoke(args=["orders", "exporter", "run", str(task_id), "--wait"])
        assert ran.exit_code == 0, ran.output
        assert f"of order exporter {task_id}: succeeded, 1 of 1 orders sent" in ran.output
        assert len(erp.posts) == 1
        shown = json.loads(
            runner.invoke(args=["orders", "exporter", "show", str(task_id), "--json"]).output
        )
        assert shown["flag_counts"] == {"sent": 1} and shown["last_run"]["status"] == "succeeded"
        bad = runner.invoke(
            args=["orders", "exporter", "add", "X", "--flag", "crm", "--url", erp.url]
        )
        assert bad.exit_code == 1
        assert bad.output.startswith("Error: --flag: no export flag 'crm'")
        assert len(bad.output.strip().splitlines()) == 1
        missing = runner.invoke(args=["orders", "exporter", "show", "999"])
        assert missing.output == "Error: no order exporter with id 999\n"
        removed = runner.invoke(args=["orders", "exporter", "remove", str(task_id)])
        assert removed.output == f"Order exporter {task_id} removed.\n"
        assert "No order exporter yet" in runner.invoke(args=["orders", "exporter", "list"]).output


def test_a_field_template_shapes_the_orders_sent(shop):
    from impexmod.export import field_templates

    field_templates.create_template(
        "erp-orders",
        "orders",
        [
            {"header": "ref", "source": "reference"},
            {"header": "lines", "source": "lines"},
            {"header": "channel", "value": "web"},
        ],
    )
    with pytest.raises(InvalidTask, match="format: a field template is written as json or jsonl"):
        exporter.create_order_exporter(
            "T", "erp", template="erp-orders", fmt="xml", url="http://x/", secret="k"
        )
    with receiving() as erp:
        task = _http(erp, template="erp-orders", fmt="jsonl", batch=5)
        assert task.format == "jsonl"
        states.move("ORD1", "Payment accepted", actor="test")
        states.move("ORD3", "Payment accepted", actor="test")
        assert _run(task).entity_count == 2
        [post] = erp.posts
        assert post.headers["Content-Type"] == "application/x-ndjson"
        rows = [json.loads(line) for line in post.body.splitlines()]
        assert [(r["ref"], r["channel"]) for r in rows] == [("ORD1", "web"), ("ORD3", "web")]
        assert [r["idempotency_key"] for r in rows] == [
            _flag(ref).idempotency_key(SHOP) for ref in ("ORD1", "ORD3")
        ]


def test_an_order_exporter_runs_on_its_schedule(shop):
    from datetime import timedelta

    from impexmod.dispatch.scheduler import Scheduler
    from impexmod.models import now
    from impexmod.runs.slots import next_slot

    def inline(task, **kwargs):
        return jobs.start_run(task, inline=True, **kwargs)

    with receiving() as erp:
        task = _http(erp, schedule="daily@02:30")
        slot = next_slot(task, now())
        assert task.next_run_at == slot
        states.move("ORD2", "Payment accepted", actor="test")
        assert erp.posts == []  # not started by the flag: it waits for its slot
        report = Scheduler(start=inline).tick(slot + timedelta(seconds=3))
        [run] = db.session.scalars(select(Run).where(Run.task_id == task.id)).all()
        assert report.started == [run.id]
        assert (run.trigger, run.status, run.entity_count) == ("schedule", "succeeded", 1)
        assert len(erp.posts) == 1
