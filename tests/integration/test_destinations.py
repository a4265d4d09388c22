"""Destinations of an exporter, delivered after each successful run to real servers on
loopback (the transports' own servers: tests/integration/test_delivery_*.py), recorded per
run, retried with backoff and notified; the run's success stands whatever they answer."""

from __future__ import annotations

import email
import email.policy
import json
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from flask_migrate import downgrade, upgrade
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import inspect, text

from impexmod.delivery.signing import SIGNATURE_HEADER, verify
from impexmod.dispatch import deliveries, jobs
from impexmod.dispatch.scheduler import Scheduler
from impexmod.export import definition as exporters
from impexmod.export import destinations as dests
from impexmod.export.destinations import DestinationSpec
from impexmod.extensions import db
from impexmod.models import Notification, Run, RunDelivery, Task, TaskDestination, now
from impexmod.runs import history, links, tasks
from impexmod.runs.tasks import InvalidTask
from tests.delivery_servers import free_port, self_signed, sshd, stalling_server
from tests.integration import test_delivery_email, test_delivery_s3, test_delivery_webhook
from tests.integration.test_delivery_email import PASSWORD as SMTP_PASSWORD
from tests.integration.test_delivery_ftp import PASSWORD as FTP_PASSWORD
from tests.integration.test_delivery_ftp import ftp_server
from tests.integration.test_delivery_s3 import keys
from tests.integration.test_delivery_webhook import SECRET as HOOK_SECRET


@pytest.fixture
def cert(tmp_path):
    return self_signed(tmp_path)


# The transports' own servers (each test module's fixtures), started the same way here.
smtp = test_delivery_email.smtp
moto_port, bucket = test_delivery_s3.moto_port, test_delivery_s3.bucket
hook = test_delivery_webhook.hook


@pytest.fixture(scope="module")
def sftp(tmp_path_factory):
    if not Path("/usr/sbin/sshd").exists() or os.geteuid() != 0:
        pytest.skip("sshd, and root for its key login, are needed")
    with sshd(tmp_path_factory.mktemp("sshd")) as running:
        yield running


@pytest.fixture
def home(tmp_path):
    folder = tmp_path / "ftp-home"
    (folder / "feeds").mkdir(parents=True)
    return folder


def exporter(*specs: DestinationSpec, **notifications):
    """A stock exporter with these destinations."""
    task = exporters.create_exporter("Stock", "stock", "csv", **notifications)
    dests.set_destinations(task, list(specs))
    return task


def ftp_spec(port, **extra) -> DestinationSpec:
    settings = {
        "host": "127.0.0.1",
        "port": port,
        "username": "shop",
        "password": FTP_PASSWORD,
        "directory": "feeds",
        "name_template": "{exporter}-{run}.{ext}",
    }
    return DestinationSpec("ftp", {**settings, **extra}, label="Partner FTP")


def run_file_bytes(run: Run) -> bytes:
    with history.run_file(run).open() as stream:
        return stream.read()


def fetch(client, url: str) -> tuple[int, bytes]:
    """GET a URL of the app: its status and body, the response closed (its file with it)."""
    response = client.get(url)
    try:
        return response.status_code, response.get_data()
    finally:
        response.close()


def rows_of(run: Run) -> list[RunDelivery]:
    db.session.rollback()
    return history.deliveries_of([run.id]).get(run.id, [])


def test_a_run_is_delivered_to_ftp_and_recorded(app, home):
    with ftp_server(home) as port:
        task = exporter(ftp_spec(port))
        run = jobs.start_run(task, inline=True)
    assert run.status == "succeeded"
    [row] = rows_of(run)
    assert (row.outcome, row.attempt, row.kind, row.label) == ("ok", 1, "ftp", "Partner FTP")
    assert row.remote_name == f"feeds/Stock-{run.id}.csv"
    assert (home / "feeds" / f"Stock-{run.id}.csv").read_bytes() == run_file_bytes(run)
    assert row.bytes == run.bytes and row.started_at <= row.ended_at
    assert 'Delivered to ftp "Partner FTP"' in run.log
    described = tasks.describe_run(run)
    assert described["deliveries"][0]["outcome"] == "ok"


def test_a_run_is_delivered_to_every_kind_end_to_end(
    app,
    home,
    cert,
    sftp,
    smtp,
    hook,
    moto_port,
    bucket,
):
    s3, bucket_name = bucket
    # FTP (plain) is the first test's: pyftpdlib's servers share one loop per process.
    with ftp_server(home, tls=True, cert=cert) as ftps_port:
        task = exporter(
            DestinationSpec(
                "sftp",
                {
                    "host": "127.0.0.1",
                    "port": sftp.port,
                    "username": "root",
                    "private_key": sftp.client_key,
                    "accept_new_host_key": True,
                    "directory": str(sftp.root),
                    "name_template": "{exporter}-{run}.{ext}",
                },
            ),
            DestinationSpec(
                "ftps",
                {**ftp_spec(ftps_port).settings, "ca_cert": cert[0].read_text(), "directory": ""},
            ),
            DestinationSpec(
                "email",
                {
                    "host": "127.0.0.1",
                    "port": smtp.port,
                    "starttls": True,
                    "ca_cert": cert[0].read_text(),
                    "username": "shop",
                    "password": SMTP_PASSWORD,
                    "from": "shop@example.test",
                    "to": "partner@example.test",
                },
            ),
            DestinationSpec("webhook", {"url": hook.url, "secret": HOOK_SECRET}),
            DestinationSpec(
                "s3",
                {
                    "bucket": bucket_name,
                    "prefix": "exports",
                    "endpoint_url": f"http://127.0.0.1:{moto_port}",
                    "access_key_id": "test",
                    "secret_access_key": "test-secret",
                    "name_template": "{exporter}/{run}.{ext}",
                },
            ),
        )
        run = jobs.start_run(task, inline=True)
    assert run.status == "succeeded"
    content = run_file_bytes(run)
    rows = rows_of(run)
    assert [(r.kind, r.outcome, r.attempt) for r in rows] == [
        (k, "ok", 1) for k in ("sftp", "ftps", "email", "webhook", "s3")
    ], [r.error for r in rows]
    assert (sftp.root / f"Stock-{run.id}.csv").read_bytes() == content
    assert (home / f"Stock-{run.id}.csv").read_bytes() == content
    [message] = [
        email.message_from_bytes(e.original_content, policy=email.policy.default)
        for e in smtp.envelopes
    ]
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content() in (content, content.decode())
    assert keys(s3, bucket_name) == [f"exports/Stock/{run.id}.csv"]
    body = s3.get_object(Bucket=bucket_name, Key=f"exports/Stock/{run.id}.csv")["Body"].read()
    assert body == content
    # The webhook's signed body carries a download link that serves the run's file.
    [(raw, headers)] = hook.calls
    assert verify(HOOK_SECRET, raw, headers[SIGNATURE_HEADER])
    link = json.loads(raw)["download_url"]
    assert link.startswith(app.config["PUBLIC_URL"] + "/feeds/files/")
    assert fetch(app.test_client(), link.removeprefix(app.config["PUBLIC_URL"])) == (200, content)
    # The SFTP host key accepted on first use is saved; later deliveries check it.
    sftp_row = db.session.get(TaskDestination, rows[0].destination_id)
    assert sftp_row.learned == {"host_key": sftp.host_key}
    from tests.integration.test_admin_auth import signed_in

    edit = signed_in(app).get(f"/admin/tasks/{task.id}/edit/").get_data(as_text=True)
    assert 'data-field="learned-host-key"' in edit and sftp.host_key.split()[1][:20] in edit
    for secret in (sftp.client_key.splitlines()[1], SMTP_PASSWORD, HOOK_SECRET, "test-secret"):
        assert secret not in edit


def test_a_refused_server_is_retried_with_backoff_then_notified(app, home):
    app.config.update(DELIVERY_RETRY_SECONDS=60, DELIVERY_MAX_ATTEMPTS=3)
    task = exporter(ftp_spec(free_port()), notify_emails=None)
    run = jobs.start_run(task, inline=True)
    assert run.status == "succeeded"  # whatever the destination answers
    [row] = rows_of(run)
    assert (row.outcome, row.attempt) == ("retrying", 1)
    assert "connection refused" in row.error
    first_wait = row.next_attempt_at - row.ended_at.replace(microsecond=0)
    assert timedelta(seconds=55) <= first_wait <= timedelta(seconds=65)
    assert db.session.query(Notification).count() == 0
    # Not due yet: nothing is tried.
    assert deliveries.retry_due(now()) == 0
    # The scheduler's tick retries it when due (after 60 s, then 120 s).
    Scheduler(start=lambda *a, **k: None).tick(now() + timedelta(seconds=61))
    [row] = rows_of(run)
    assert (row.outcome, row.attempt) == ("retrying", 2)
    assert deliveries.retry_due(now() + timedelta(seconds=61 + 121)) == 1
    [row] = rows_of(run)
    assert (row.outcome, row.attempt, row.next_attempt_at) == ("failed", 3, None)
    assert [a["attempt"] for a in row.attempts] == [1, 2, 3]
    assert all("refused" in a["error"] for a in row.attempts)
    [note] = db.session.query(Notification).all()
    assert note.event == "delivery.failed" and note.level == "error"
    assert "Partner FTP" in note.title and "refused" in note.message
    run = db.session.get(Run, run.id)
    assert run.status == "succeeded"
    assert "after 3 attempts" in run.log and "the run's success stands" in run.log
    assert list((home / "feeds").iterdir()) == []


def test_a_stalled_server_times_out_within_the_configured_timeout(app):
    app.config.update(DELIVERY_TIMEOUT=1, DELIVERY_MAX_ATTEMPTS=2)
    with stalling_server() as port:
        task = exporter(ftp_spec(port))
        started = time.monotonic()
        run = jobs.start_run(task, inline=True)
        took = time.monotonic() - started
    assert took < 1 + 4
    assert run.status == "succeeded"
    [row] = rows_of(run)
    assert (row.outcome, row.attempt) == ("retrying", 1) and "timed out" in row.error


def test_bad_credentials_are_not_retried_and_notified_by_webhook(app, home):
    from tests.integration.test_notify import Hook
    from tests.support import live_server

    receiver = Hook()
    with live_server(receiver.app) as base, ftp_server(home) as port:
        task = exporter(ftp_spec(port, password="wrong"), webhook_url=f"{base}/hook")
        run = jobs.start_run(task, inline=True)
    assert run.status == "succeeded"
    [row] = rows_of(run)
    assert (row.outcome, row.attempt) == ("failed", 1)
    assert "wrong" not in row.error
    [(body, headers)] = [c for c in receiver.calls if b"delivery.failed" in c[0]]
    payload = json.loads(body)
    assert payload["event"] == "delivery.failed"
    assert payload["delivery"]["label"] == "Partner FTP"
    assert payload["run"]["status"] == "succeeded"
    assert list((home / "feeds").iterdir()) == []


def test_a_disabled_destination_is_not_delivered(app, home):
    with ftp_server(home) as port:
        spec = ftp_spec(port)
        spec.enabled = False
        run = jobs.start_run(exporter(spec), inline=True)
    assert run.status == "succeeded" and rows_of(run) == []


def test_secrets_live_in_their_own_column_and_are_never_described(app):
    task = exporter(ftp_spec(2121))
    [row] = tasks.destinations_of(task)
    assert "password" not in row.settings
    assert row.get_secrets() == {"password": FTP_PASSWORD}
    raw = db.session.execute(text("SELECT settings, secrets FROM destination")).one()
    # kept apart from the settings, and encrypted (docs/security.md, "Secrets at rest")
    assert FTP_PASSWORD not in raw.settings and FTP_PASSWORD not in raw.secrets
    assert raw.secrets.startswith("gAAAA")
    described = json.dumps(tasks.describe(task))
    assert FTP_PASSWORD not in described
    assert tasks.describe(task)["destinations"][0]["secrets"] == ["password"]
    # A blank secret on an update keeps the stored one; another value replaces it.
    spec = ftp_spec(2121, password="", directory="other")
    spec.id = row.id
    dests.set_destinations(task, [spec])
    assert row.get_secrets() == {"password": FTP_PASSWORD}
    assert row.settings["directory"] == "other"
    spec.settings["password"] = "new-one"
    dests.set_destinations(task, [spec])
    assert row.get_secrets() == {"password": "new-one"}
    # Removing it from the list removes it.
    dests.set_destinations(task, [])
    assert tasks.destinations_of(task) == []


def test_invalid_settings_are_refused_naming_the_destination_and_field(app):
    task = exporters.create_exporter("Stock", "stock", "csv")
    with pytest.raises(InvalidTask, match="Partner FTP: host"):
        dests.set_destinations(task, [ftp_spec(21, host="")])
    with pytest.raises(InvalidTask, match="no setting 'hots'"):
        dests.set_destinations(task, [DestinationSpec("ftp", {"hots": "x"})])
    with pytest.raises(InvalidTask, match="kind 'gopher'"):
        dests.set_destinations(task, [DestinationSpec("gopher", {})])
    assert tasks.destinations_of(task) == []


def test_test_connection_says_what_failed_in_one_line(app, home):
    with ftp_server(home) as port:
        assert dests.test_connection(ftp_spec(port)).ok
        bad = dests.test_connection(ftp_spec(port, password="nope"))
    assert not bad.ok and "nope" not in bad.error
    line = dests.outcome_line(dests.test_connection(ftp_spec(free_port())))
    assert line.startswith("Failed:") and "refused" in line and "\n" not in line
    assert dests.outcome_line(dests.test_connection(ftp_spec(21, host=""))).startswith("Failed")


def test_a_download_link_expires_and_dies_with_the_feed_token(app, home):
    task = exporter()
    run = jobs.start_run(task, inline=True)
    client = app.test_client()
    base = app.config["PUBLIC_URL"]
    link = links.download_url(run, task).removeprefix(base)
    assert fetch(client, link)[0] == 200
    assert fetch(client, link + "x")[0] == 404  # another name
    assert fetch(client, link.replace("/files/", "/files/x"))[0] == 404  # tampered
    app.config["DELIVERY_LINK_SECONDS"] = 10
    old = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=links.SALT)
    stale = old.dumps([run.id, task.token_nonce])
    assert fetch(client, f"/feeds/files/{stale}/{run.file_key}")[0] == 200

    class Earlier(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 11

    made_before = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=links.SALT, signer=Earlier)
    expired = made_before.dumps([run.id, task.token_nonce])
    assert fetch(client, f"/feeds/files/{expired}/{run.file_key}")[0] == 404
    tasks.rotate_token(task)
    assert fetch(client, link)[0] == 404


def test_deleting_the_exporter_deletes_its_destinations_and_deliveries(app, home):
    with ftp_server(home) as port:
        task = exporter(ftp_spec(port))
        jobs.start_run(task, inline=True)
    tasks.delete_task(task)
    assert db.session.query(TaskDestination).count() == 0
    assert db.session.query(RunDelivery).count() == 0


def test_the_migration_goes_up_and_down(app):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("the SQLite file of this test only")
    downgrade(revision="0009_secrets")
    assert not {"destination", "delivery"} & set(inspect(db.engine).get_table_names())
    upgrade()
    assert {"destination", "delivery"} <= set(inspect(db.engine).get_table_names())
    columns = {c["name"] for c in inspect(db.engine).get_columns("delivery")}
    assert {"run_id", "destination_id", "attempt", "outcome", "bytes", "remote_name"} <= columns


def test_the_cli_adds_an_exporter_with_destinations_and_shows_deliveries(app, home, tmp_path):
    runner = app.test_cli_runner()
    secret_file = tmp_path / "password.txt"
    secret_file.write_text(FTP_PASSWORD)
    with ftp_server(home) as port:
        result = runner.invoke(
            args=[
                "exporter",
                "add",
                "--name",
                "Stock",
                "--entity",
                "stock",
                "--format",
                "csv",
                "--destination",
                f"ftp:host=127.0.0.1,port={port},username=shop,password=@{secret_file},"
                "directory=feeds,label=Partner FTP",
                "--destination",
                json.dumps(
                    {
                        "kind": "email",
                        "label": "Buyers",
                        "enabled": False,
                        "settings": {"host": "127.0.0.1", "from": "s@x.test", "to": "a@x.test"},
                    }
                ),
            ]
        )
        assert result.exit_code == 0, result.output
        assert 'ftp "Partner FTP"' in result.output and FTP_PASSWORD not in result.output
        assert "secrets set: password" in result.output and "[disabled]" in result.output
        task_id = int(result.output.split()[1])
        tested = runner.invoke(args=["exporter", "test-destination", str(task_id), "1"])
        assert tested.exit_code == 0 and tested.output.startswith("Connected"), tested.output
        ran = runner.invoke(args=["exporter", "run", str(task_id)])
    assert ran.exit_code == 0, ran.output
    assert 'delivery to ftp "Partner FTP": ok, attempt 1, feeds/Stock-' in ran.output
    listed = runner.invoke(args=["exporter", "destinations", str(task_id), "--json"])
    described = json.loads(listed.output)
    assert [d["kind"] for d in described] == ["ftp", "email"]
    assert FTP_PASSWORD not in listed.output
    # A piece without "=" continues the previous value; a bad one names the option.
    added = runner.invoke(
        args=[
            "exporter",
            "add-destination",
            str(task_id),
            "email:host=127.0.0.1,from=s@x.test,to=a@x.test,b@x.test",
        ]
    )
    assert added.exit_code == 0, added.output
    assert tasks.destinations_of(db.session.get(Task, task_id))[2].settings["to"] == (
        "a@x.test,b@x.test"
    )
    bad = runner.invoke(
        args=["exporter", "add", "--name", "X", "--entity", "stock", "--destination", "ftp:port=1"]
    )
    assert bad.exit_code == 2 and "host: is required" in bad.output
    assert "X" not in [t.name for t in tasks.list_tasks()]
    removed = runner.invoke(args=["exporter", "remove-destination", str(task_id), "1"])
    assert removed.exit_code == 0
    assert len(tasks.destinations_of(db.session.get(Task, task_id))) == 2


def panel_form(**fields) -> dict:
    """The exporter form as a merchant fills it in."""
    return {"name": "Stock", "entity": "stock", "format": "csv", "strategy": "full",
            "schedule": "none", "timezone": "", **fields}  # fmt: skip


def ftp_block(index: int, port: int, **extra) -> dict:
    p = f"dest-{index}-"
    values = {"kind": "ftp", "label": "Partner FTP", "enabled": "1", "host": "127.0.0.1",
              "port": str(port), "username": "shop", "password": FTP_PASSWORD,
              "directory": "feeds", "passive": "1", **extra}  # fmt: skip
    return {p + k: v for k, v in values.items() if v is not None}


def test_the_panel_adds_edits_and_removes_destinations_never_showing_a_secret(app, home):
    from tests.integration.test_admin_auth import signed_in

    panel = signed_in(app)
    page = panel.post("/admin/tasks/new/", data={**panel_form(), "add_destination": "ftp"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'name="dest-0-host"' in html
    assert 'type="password" class="form-control" id="dest-0-password"' in html
    assert Task.query.count() == 0  # adding a block saves nothing
    # An invalid destination keeps everything unsaved, and says which one.
    page = panel.post("/admin/tasks/new/", data={**panel_form(), **ftp_block(0, 21, host="")})
    assert "Partner FTP: host: is required" in page.get_data(as_text=True)
    assert Task.query.count() == 0
    saved = panel.post("/admin/tasks/new/", data={**panel_form(), **ftp_block(0, 2121)})
    assert saved.status_code == 302, saved.get_data(as_text=True)
    task = Task.query.one()
    [row] = tasks.destinations_of(task)
    assert (row.kind, row.label) == ("ftp", "Partner FTP")
    assert row.get_secrets() == {"password": FTP_PASSWORD}
    edit = panel.get(f"/admin/tasks/{task.id}/edit/").get_data(as_text=True)
    assert FTP_PASSWORD not in edit and 'value="2121"' in edit
    assert "Stored: leave blank to keep it" in edit
    # Test connection, with the stored password (the input left blank), against a live server.
    with ftp_server(home) as port:
        data = {**panel_form(), **ftp_block(0, port, password="", id=str(row.id))}
        tested = panel.post(f"/admin/tasks/{task.id}/edit/", data={**data, "test_destination": "0"})
        body = tested.get_data(as_text=True)
        assert 'data-field="test-outcome">Connected' in body, body[-3000:]
        assert FTP_PASSWORD not in body
        wrong = {**data, "dest-0-password": "bad-pass", "test_destination": "0"}
        body = panel.post(f"/admin/tasks/{task.id}/edit/", data=wrong).get_data(as_text=True)
        assert 'data-field="test-outcome">Failed:' in body and "bad-pass" not in body
    # Saving with the password blank keeps it; a second destination is added; then removed.
    webhook = {"dest-1-kind": "webhook", "dest-1-url": "https://erp.example.test/in",
               "dest-1-secret": "whsec", "dest-1-enabled": "1"}  # fmt: skip
    done = panel.post(f"/admin/tasks/{task.id}/edit/", data={**data, **webhook})
    assert done.status_code == 302
    rows = tasks.destinations_of(task)
    assert [r.kind for r in rows] == ["ftp", "webhook"]
    assert rows[0].get_secrets() == {"password": FTP_PASSWORD}
    assert rows[1].get_secrets() == {"secret": "whsec"}
    edit = panel.get(f"/admin/tasks/{task.id}/edit/").get_data(as_text=True)
    assert "whsec" not in edit and FTP_PASSWORD not in edit
    gone = {**data, "dest-0-remove": "1", **webhook, "dest-1-id": str(rows[1].id)}
    assert panel.post(f"/admin/tasks/{task.id}/edit/", data=gone).status_code == 302
    assert [r.kind for r in tasks.destinations_of(task)] == ["webhook"]


def test_the_run_page_and_history_show_delivery_outcomes(app, home):
    from tests.integration.test_admin_auth import signed_in

    task = exporter(ftp_spec(free_port()))
    run = jobs.start_run(task, inline=True)
    panel = signed_in(app)
    details = panel.get(f"/admin/runs/{run.id}/").get_data(as_text=True)
    assert "Deliveries" in details and "Partner FTP" in details and "connection refused" in details
    listed = panel.get(f"/admin/runs/?task={task.id}").get_data(as_text=True)
    assert 'data-field="deliveries"' in listed and "retrying" in listed
