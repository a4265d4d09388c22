"""Notifications against a real SMTP server (aiosmtpd) and a real HTTP server on loopback."""

from __future__ import annotations

import json
import socket
import threading
from datetime import timedelta
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller
from flask import Flask, request

from impexmod.delivery.signing import SIGNATURE_HEADER, sign, verify
from impexmod.dispatch import jobs, notify
from impexmod.dispatch.scheduler import Scheduler
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.models import Notification, NotificationDelivery, Run, Task
from impexmod.runs import tasks
from tests.support import live_server


def free_port() -> int:
    """A TCP port nobody listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp(app):
    """A real SMTP server on loopback; the app sends its e-mail there."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_FROM="shop@example.test")
    yield inbox
    controller.stop()


class Hook:
    """A webhook receiver that answers 500 to the first ``failures`` calls, then 204."""

    def __init__(self):
        self.failures = 0
        self.calls: list[tuple[bytes, dict]] = []
        self.lock = threading.Lock()
        self.app = Flask("hook")
        self.app.add_url_rule("/hook", view_func=self.receive, methods=["POST"])

    def receive(self):
        with self.lock:
            self.calls.append((request.get_data(), dict(request.headers)))
            if len(self.calls) <= self.failures:
                return "temporarily broken", 500
        return "", 204


@pytest.fixture
def hook(app):
    """A real HTTP server on loopback receiving webhooks; yields (Hook, its URL)."""
    receiver = Hook()
    with live_server(receiver.app) as base:
        yield receiver, f"{base}/hook"


def failing_task(**notifications) -> Task:
    """An exporter whose runs fail (its entity was broken behind the services' back)."""
    task = exporters.create_exporter("Broken stock", "stock", **notifications)
    task.entity = "no-such-entity"
    db.session.commit()
    return task


def deliveries_of(notification: Notification) -> dict[str, NotificationDelivery]:
    """The notification's deliveries by channel, as committed."""
    db.session.rollback()
    rows = db.session.query(NotificationDelivery).filter_by(notification_id=notification.id)
    return {d.channel: d for d in rows}


def test_a_failed_run_notifies_in_app_by_email_and_by_signed_webhook(app, smtp, hook):
    receiver, url = hook
    task = failing_task(notify_emails="ops@example.test, boss@example.test", webhook_url=url)
    run = jobs.start_run(task, inline=True)
    assert run.status == "failed"

    [notification] = db.session.query(Notification).all()
    assert (notification.task_id, notification.run_id) == (task.id, run.id)
    assert notification.event == "run.failed" and notification.level == "error"
    assert notification.title == f'Exporter "Broken stock" failed (run {run.id})'
    assert "unknown entity" in notification.message
    assert notify.unread() == [notification]

    [envelope] = smtp.envelopes
    assert envelope.rcpt_tos == ["ops@example.test", "boss@example.test"]
    mail = message_from_bytes(envelope.content)
    assert mail["From"] == "shop@example.test"
    assert mail["Subject"] == notification.title
    assert "unknown entity" in mail.get_payload()

    [(body, headers)] = receiver.calls
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Impexmod-Event"] == "run.failed"
    assert headers[SIGNATURE_HEADER] == sign(task.webhook_secret, body)
    assert verify(task.webhook_secret, body, headers[SIGNATURE_HEADER])
    assert not verify("another secret", body, headers[SIGNATURE_HEADER])
    payload = json.loads(body)
    assert payload["event"] == "run.failed"
    assert payload["task"] == {
        "id": task.id,
        "kind": "export",
        "name": "Broken stock",
        "entity": "no-such-entity",
    }
    assert payload["run"]["id"] == run.id and payload["run"]["status"] == "failed"
    assert "unknown entity" in payload["run"]["error"]

    sent = deliveries_of(notification)
    assert {c: (d.status, d.attempts) for c, d in sent.items()} == {
        "email": ("sent", 1),
        "webhook": ("sent", 1),
    }


def test_successes_notify_only_when_the_task_asks(app, hook):
    receiver, url = hook
    quiet = exporters.create_exporter("quiet", "stock", webhook_url=url)
    assert jobs.start_run(quiet, inline=True).status == "succeeded"
    assert db.session.query(Notification).count() == 0 and receiver.calls == []

    chatty = exporters.create_exporter("chatty", "stock", webhook_url=url, notify_success=True)
    run = jobs.start_run(chatty, inline=True)
    assert run.status == "succeeded"
    [notification] = db.session.query(Notification).all()
    assert notification.event == "run.succeeded" and notification.level == "info"
    [(body, headers)] = receiver.calls
    assert headers["X-Impexmod-Event"] == "run.succeeded"
    assert json.loads(body)["run"]["file"] == f"run-{run.id}.xml"


def test_a_failing_endpoint_is_retried_with_backoff_until_it_succeeds(app, hook):
    receiver, url = hook
    receiver.failures = 2
    task = failing_task(webhook_url=url)
    jobs.start_run(task, inline=True)
    [notification] = db.session.query(Notification).all()

    first = deliveries_of(notification)["webhook"]
    assert (first.status, first.attempts) == ("pending", 1)
    assert first.last_error.startswith("RuntimeError: HTTP 500")
    t1 = first.next_attempt_at

    # Not due yet: nothing is sent.
    assert notify.deliver_due(t1 - timedelta(seconds=1)) == 0
    assert len(receiver.calls) == 1

    # The scheduler retries it when it is due; it fails again and waits twice as long.
    assert Scheduler().tick(t1).deliveries == 1
    second = deliveries_of(notification)["webhook"]
    assert (second.status, second.attempts) == ("pending", 2)
    assert second.next_attempt_at == t1 + timedelta(seconds=120)

    assert notify.deliver_due(second.next_attempt_at) == 1
    third = deliveries_of(notification)["webhook"]
    assert (third.status, third.attempts, third.next_attempt_at) == ("sent", 3, None)
    assert third.last_error.startswith("RuntimeError: HTTP 500")  # the history stays

    # Every attempt carried the same body and signature.
    bodies = {body for body, _ in receiver.calls}
    signatures = {headers[SIGNATURE_HEADER] for _, headers in receiver.calls}
    assert len(receiver.calls) == 3 and len(bodies) == 1 and len(signatures) == 1
    # Once sent, it is never sent again.
    assert notify.deliver_due(third.created_at + timedelta(days=1)) == 0


def test_a_delivery_that_keeps_failing_gives_up_and_says_why(app):
    app.config["NOTIFY_MAX_ATTEMPTS"] = 3
    dead = f"http://127.0.0.1:{free_port()}/hook"
    task = failing_task(webhook_url=dead)
    jobs.start_run(task, inline=True)
    [notification] = db.session.query(Notification).all()
    delivery = deliveries_of(notification)["webhook"]
    while delivery.status == "pending":
        notify.deliver_due(delivery.next_attempt_at)
        delivery = deliveries_of(notification)["webhook"]
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 3, None)
    assert "ConnectionError" in delivery.last_error


def test_delivery_failures_never_fail_the_run(app):
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=free_port())  # nobody listens
    task = exporters.create_exporter(
        "fine",
        "stock",
        notify_success=True,
        notify_emails="ops@example.test",
        webhook_url=f"http://127.0.0.1:{free_port()}/hook",
    )
    run = jobs.start_run(task, inline=True)
    assert run.status == "succeeded" and run.error is None
    [notification] = db.session.query(Notification).all()
    for delivery in deliveries_of(notification).values():
        assert delivery.status == "pending" and delivery.attempts == 1
        assert delivery.last_error and delivery.next_attempt_at is not None


def test_a_broken_notifier_never_fails_the_run(app, monkeypatch):
    def explode(run):
        raise RuntimeError("notifier bug")

    monkeypatch.setattr(notify, "run_ended", explode)
    task = exporters.create_exporter("fine", "stock")
    run = jobs.start_run(task, inline=True)
    assert run.status == "succeeded"
    assert db.session.get(Run, run.id).status == "succeeded"


def test_e_mail_without_smtp_is_recorded_as_failed_at_once(app):
    assert not app.config["SMTP_HOST"]
    task = failing_task(notify_emails="ops@example.test")
    jobs.start_run(task, inline=True)
    [notification] = db.session.query(Notification).all()
    delivery = deliveries_of(notification)["email"]
    assert (delivery.status, delivery.attempts) == ("failed", 0)
    assert "IMPEXMOD_SMTP_HOST is not set" in delivery.last_error


def test_notification_targets_are_validated(app):
    with pytest.raises(tasks.InvalidTask) as bad_email:
        exporters.create_exporter("t", "stock", notify_emails="ops@example.test, nobody")
    assert bad_email.value.field == "notify_emails"
    with pytest.raises(tasks.InvalidTask) as bad_url:
        exporters.create_exporter("t", "stock", webhook_url="ftp://example.test/")
    assert bad_url.value.field == "webhook_url"


def test_notifications_cli_configures_a_task_and_lists_deliveries(app, runner, hook):
    _, url = hook
    task = failing_task()
    result = runner.invoke(
        args=["notifications", "configure", str(task.id), "--webhook-url", url, "--on-success"]
    )
    assert result.exit_code == 0, result.output
    db.session.refresh(task)
    assert task.notify_success and task.webhook_url == url and task.webhook_secret
    assert task.webhook_secret in result.output
    jobs.start_run(task, inline=True)
    listed = runner.invoke(args=["notifications", "list", "--json"])
    [entry] = json.loads(listed.output)
    assert entry["event"] == "run.failed"
    assert entry["deliveries"][0]["status"] == "sent"
    bad = runner.invoke(args=["notifications", "configure", str(task.id), "--email", "x"])
    assert bad.exit_code == 2 and "--email" in bad.output


def test_a_webhook_to_an_internal_address_is_refused_unless_allowed(app, hook):
    receiver, url = hook  # on 127.0.0.1: allowed in the test configuration only
    app.config["IMPORT_ALLOWED_NETWORKS"] = ""
    task = failing_task(webhook_url=url)
    jobs.start_run(task, inline=True)
    [notification] = db.session.query(Notification).all()
    delivery = deliveries_of(notification)["webhook"]
    assert delivery.status == "pending" and receiver.calls == []
    assert "127.0.0.1 is a loopback address" in delivery.last_error
    app.config["IMPORT_ALLOWED_NETWORKS"] = "127.0.0.0/8"
    notify.deliver_due(delivery.next_attempt_at)
    assert deliveries_of(notification)["webhook"].status == "sent"
    assert len(receiver.calls) == 1
