"""Secrets at rest, issue 13 item 3: webhook signing secrets and importers' passwords are
Fernet tokens in the database (read raw here with plain SQL), read back by the app, migrated
from clear, rotated by `impexmod secrets rotate-key`, refused clearly under a wrong key, and
never shown in the panel, the CLI, descriptions, run logs or logs."""

from __future__ import annotations

import json
import logging
import os
import stat

import pytest
from cryptography.fernet import Fernet
from flask_migrate import downgrade, upgrade
from sqlalchemy import Column, Integer, MetaData, Table, text

from impexmod import create_app
from impexmod.config import parse_encryption_keys
from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.importing.definition import (
    InvalidImporter,
    create_importer,
    describe_importer,
    importer_fields,
    update_importer,
)
from impexmod.models import Run, Task
from impexmod.models.crypto import EncryptedJSON, SecretUnreadable, reencrypt
from impexmod.runs import tasks
from tests.integration.test_admin_auth import signed_in

PASSWORD = "hunter2-basic-auth"
HOOK = "https://hooks.example.test/impexmod"


def raw(sql: str, **params):
    """Rows read with plain SQL, past the ORM and its column types."""
    db.session.rollback()
    return db.session.execute(text(sql), params).all()


def importer_with_secrets() -> Task:
    """An importer with a Basic-auth password and a signed webhook."""
    return create_importer(
        "Supplier", "http://127.0.0.1:9/stock.xml", "stock", "xml", "create,update", None,
        "shop", PASSWORD, webhook_url=HOOK,
    )  # fmt: skip


def app_on(database: str, instance, **config):
    """Another app on the same database (another machine), with its own instance folder."""
    return create_app(
        {
            "INSTANCE_PATH": str(instance),
            "DATABASE_URL": database,
            "SHOP_ID": "testshop",
            "TESTING": True,
            "REDIS_URL": None,
            **config,
        }
    )


def read_task(other, task_id: int) -> tuple[str | None, dict | None]:
    """A task's webhook secret and secrets, as another app reads them."""
    with other.app_context():
        try:
            found = db.session.get(Task, task_id)
            return found.webhook_secret, found.secrets
        finally:
            db.session.remove()
            db.engine.dispose()


def test_secrets_are_ciphertext_in_the_database_and_read_back(app):
    task = importer_with_secrets()
    secret = task.webhook_secret
    [(options, secrets, webhook_secret)] = raw(
        "SELECT options, secrets, webhook_secret FROM task WHERE id = :id", id=task.id
    )
    if not isinstance(options, str):  # PostgreSQL's JSON column comes back decoded
        options = json.dumps(options)
    for stored in (options, secrets, webhook_secret):
        assert PASSWORD not in stored and secret not in stored
    assert "password" not in json.loads(options)
    assert secrets.startswith("gAAAA") and webhook_secret.startswith("gAAAA")  # Fernet tokens
    db.session.expire_all()
    again = db.session.get(Task, task.id)
    assert again.secrets == {"password": PASSWORD} and again.webhook_secret == secret
    assert raw("SELECT secrets FROM task WHERE id = :id", id=exporters.create_exporter(
        "no secrets", "stock").id) == [(None,)]  # fmt: skip


def test_blank_password_keeps_the_stored_one_and_no_user_drops_it(app):
    task = importer_with_secrets()
    update_importer(task, **{**importer_fields(task), "password": ""})
    db.session.expire_all()
    assert db.session.get(Task, task.id).secrets == {"password": PASSWORD}
    update_importer(task, **{**importer_fields(task), "username": ""})
    assert raw("SELECT secrets FROM task WHERE id = :id", id=task.id) == [(None,)]


def test_the_key_is_generated_once_in_the_instance_folder_mode_0600(app, monkeypatch, tmp_path):
    monkeypatch.delenv("IMPEXMOD_ENCRYPTION_KEY")
    url = app.config["DATABASE_URL"]
    first = app_on(url, tmp_path / "one")
    path = tmp_path / "one" / "encryption_key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert first.config["ENCRYPTION_KEYS"] == [path.read_text().strip()]
    assert (
        app_on(url, tmp_path / "one").config["ENCRYPTION_KEYS"] == first.config["ENCRYPTION_KEYS"]
    )
    assert (
        app_on(url, tmp_path / "two").config["ENCRYPTION_KEYS"] != first.config["ENCRYPTION_KEYS"]
    )


def test_a_bad_key_in_the_environment_is_refused_without_showing_it():
    with pytest.raises(ValueError) as bad:
        parse_encryption_keys(f"{Fernet.generate_key().decode()},not-a-key-at-all")
    assert "key 2 of 2" in str(bad.value) and "not-a-key" not in str(bad.value)


def test_a_wrong_key_gives_a_clear_error_naming_the_column(app, tmp_path):
    task = importer_with_secrets()
    [(token,)] = raw("SELECT webhook_secret FROM task WHERE id = :id", id=task.id)
    wrong = Fernet.generate_key().decode()
    other = app_on(app.config["DATABASE_URL"], tmp_path / "other", ENCRYPTION_KEY=wrong)
    with pytest.raises(SecretUnreadable) as refused:
        read_task(other, task.id)
    message = str(refused.value)
    assert message.startswith(("task.secrets ", "task.webhook_secret "))  # the column named
    assert "cannot be decrypted with IMPEXMOD_ENCRYPTION_KEY" in message
    assert token not in message and wrong not in message
    assert app.config["ENCRYPTION_KEYS"][0] not in message


def seed_clear_tasks(connection) -> None:
    """Tasks as revision 0008 kept them: the webhook secret and the password in clear."""
    stamp = "2026-01-01 00:00:00"
    for task_id, options, hook in (
        (1, {"url": "https://s.test/f.xml", "username": "shop", "password": PASSWORD}, "h" * 64),
        (2, {"url": "https://s.test/g.xml", "username": None, "password": None}, None),
        (3, {"format": "xml"}, None),
    ):
        connection.execute(
            text(
                "INSERT INTO task (id, kind, name, entity, format, strategy, options, token_nonce,"
                " max_retries, created_at, updated_at, schedule, notify_success, webhook_url,"
                " webhook_secret, filter_match) VALUES (:id, 'import', 'Seeded', 'stock', 'xml',"
                " 'full', :options, 'nonce', 0, :at, :at, 'none', 0, :url, :hook, 'all')"
            ),
            {
                "id": task_id,
                "options": json.dumps(options),
                "at": stamp,
                "url": HOOK if hook else None,
                "hook": hook,
            },
        )


def test_the_migration_encrypts_existing_clear_values_and_the_downgrade_decrypts(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    old = app_on(url, tmp_path / "instance")
    with old.app_context():
        upgrade(revision="0008")
        with db.engine.begin() as connection:
            seed_clear_tasks(connection)
        upgrade()
        rows = {r.id: r for r in raw("SELECT id, options, secrets, webhook_secret FROM task")}
        assert rows[1].webhook_secret.startswith("gAAAA") and "h" * 64 not in str(rows[1])
        assert rows[1].secrets.startswith("gAAAA") and PASSWORD not in str(rows[1])
        assert json.loads(rows[1].options) == {"url": "https://s.test/f.xml", "username": "shop"}
        assert rows[2].secrets is None and "password" not in json.loads(rows[2].options)
        assert json.loads(rows[3].options) == {"format": "xml"}
        migrated = db.session.get(Task, 1)
        assert migrated.webhook_secret == "h" * 64 and migrated.secrets == {"password": PASSWORD}
        assert describe_importer(migrated)["has_password"]
        db.session.remove()

        downgrade(revision="0008")
        [(options, hook)] = raw("SELECT options, webhook_secret FROM task WHERE id = 1")
        assert json.loads(options)["password"] == PASSWORD and hook == "h" * 64
        db.session.remove()
        db.engine.dispose()


def key_file_app(app, monkeypatch, tmp_path):
    """An app on the test's database whose keys are kept in its instance folder."""
    monkeypatch.delenv("IMPEXMOD_ENCRYPTION_KEY")
    return app_on(app.config["DATABASE_URL"], tmp_path / "machine")


def test_rotate_key_reencrypts_everything_and_the_old_key_is_no_longer_needed(
    app, monkeypatch, tmp_path
):
    machine = key_file_app(app, monkeypatch, tmp_path)
    key_file = tmp_path / "machine" / "encryption_key"
    [old_key] = machine.config["ENCRYPTION_KEYS"]
    with machine.app_context():
        task = importer_with_secrets()
        task_id, secret = task.id, task.webhook_secret
        before = raw("SELECT secrets, webhook_secret FROM task WHERE id = :id", id=task_id)
        result = machine.test_cli_runner().invoke(args=["secrets", "rotate-key"])
        assert result.exit_code == 0, result.output
        assert "task.secrets: 1 value(s)" in result.output
        assert "task.webhook_secret: 1 value(s)" in result.output
        assert "retired" in result.output
        after = raw("SELECT secrets, webhook_secret FROM task WHERE id = :id", id=task_id)
        db.session.remove()
        db.engine.dispose()
    [new_key] = key_file.read_text().split()
    assert new_key != old_key and stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert all(a != b for a, b in zip(before[0], after[0], strict=True))
    for shown in (old_key, new_key, secret, PASSWORD):
        assert shown not in result.output
    # Another machine given the new key alone reads everything; the old key opens nothing.
    url = app.config["DATABASE_URL"]
    assert read_task(app_on(url, tmp_path / "new", ENCRYPTION_KEY=new_key), task_id) == (
        secret,
        {"password": PASSWORD},
    )
    with pytest.raises(SecretUnreadable):
        read_task(app_on(url, tmp_path / "old", ENCRYPTION_KEY=old_key), task_id)


def test_rotate_key_is_safe_to_run_again_after_an_interruption(app, monkeypatch, tmp_path):
    machine = key_file_app(app, monkeypatch, tmp_path)
    key_file = tmp_path / "machine" / "encryption_key"
    [old_key] = machine.config["ENCRYPTION_KEYS"]
    with machine.app_context():
        task_id = importer_with_secrets().id
    # Cut off after the new key was put first and before anything was re-encrypted.
    half_way = Fernet.generate_key().decode()
    key_file.write_text(f"{half_way}\n{old_key}\n")
    with machine.app_context():
        result = machine.test_cli_runner().invoke(args=["secrets", "rotate-key"])
        assert result.exit_code == 0, result.output
        assert "2 old key(s) still decrypt" in result.output
        db.session.remove()
        db.engine.dispose()
    [final] = key_file.read_text().split()
    assert final not in (old_key, half_way)
    url = app.config["DATABASE_URL"]
    secret, secrets = read_task(app_on(url, tmp_path / "new", ENCRYPTION_KEY=final), task_id)
    assert secrets == {"password": PASSWORD} and len(secret) == 64


def test_rotate_key_with_keys_from_the_environment(app, runner, tmp_path):
    task = importer_with_secrets()
    secret = task.webhook_secret
    alone = runner.invoke(args=["secrets", "rotate-key"])
    assert alone.exit_code == 1 and "IMPEXMOD_ENCRYPTION_KEY=NEW,OLD" in alone.output
    [old_key] = app.config["ENCRYPTION_KEYS"]
    new_key = runner.invoke(args=["secrets", "generate-key"]).output.strip()
    app.config["ENCRYPTION_KEYS"] = parse_encryption_keys(f"{new_key},{old_key}")
    result = runner.invoke(args=["secrets", "rotate-key"])
    assert result.exit_code == 0 and "task.webhook_secret: 1 value(s)" in result.output
    assert new_key not in result.output and old_key not in result.output
    other = app_on(app.config["DATABASE_URL"], tmp_path / "other", ENCRYPTION_KEY=new_key)
    assert read_task(other, task.id) == (secret, {"password": PASSWORD})


def test_rotation_finds_encrypted_columns_of_any_table(app):
    # A table declared elsewhere (as a destination's settings will be) is found by its type.
    metadata = MetaData()
    Table(
        "vault", metadata, Column("id", Integer, primary_key=True), Column("data", EncryptedJSON())
    )
    with db.engine.begin() as connection:
        metadata.create_all(connection)
        connection.execute(metadata.tables["vault"].insert(), [{"id": 1, "data": {"token": "t0k"}}])
    [(before,)] = raw("SELECT data FROM vault")
    old_key = app.config["ENCRYPTION_KEYS"][0]
    app.config["ENCRYPTION_KEYS"] = [Fernet.generate_key().decode(), old_key]
    with db.engine.connect() as connection:
        done = reencrypt(connection, metadata)
    assert done.counts == {"vault.data": 1}
    app.config["ENCRYPTION_KEYS"] = app.config["ENCRYPTION_KEYS"][:1]
    with db.engine.connect() as connection:
        assert connection.execute(metadata.tables["vault"].select()).one().data == {"token": "t0k"}
    [(after,)] = raw("SELECT data FROM vault")
    assert after != before and "t0k" not in after


def test_the_panel_cli_descriptions_and_run_logs_never_show_a_secret(app, runner, caplog):
    panel = signed_in(app)
    task = importer_with_secrets()
    secret = task.webhook_secret
    caplog.set_level(logging.DEBUG)
    run = jobs.start_run(task, inline=True)  # its source refuses the connection: it fails
    db.session.expire_all()
    run = db.session.get(Run, run.id)
    assert run.status == "failed" and run.log
    shown = [
        panel.text("/admin/tasks/"),
        panel.text(f"/admin/tasks/{task.id}/edit/"),
        panel.text(f"/admin/runs/{run.id}/"),
        panel.text("/admin/runs/"),
        runner.invoke(args=["importer", "list", "--json"]).output,
        runner.invoke(args=["importer", "list"]).output,
        runner.invoke(args=["importer", "edit", str(task.id), "--name", "S", "--json"]).output,
        runner.invoke(
            args=["notifications", "configure", str(task.id), "--webhook-url", HOOK]
        ).output,
        json.dumps(tasks.describe(db.session.get(Task, task.id)), default=str),
        json.dumps(describe_importer(db.session.get(Task, task.id)), default=str),
        run.log,
        run.error or "",
        json.dumps(run.warnings),
        caplog.text,
    ]
    for where, output in enumerate(shown):
        assert PASSWORD not in output, where
        assert secret not in output, where
    assert '"has_password": true' in shown[4]


def test_an_importer_url_with_credentials_is_refused(app):
    with pytest.raises(InvalidImporter) as refused:
        create_importer("S", f"https://shop:{PASSWORD}@supplier.test/stock.xml", "stock", "xml")
    assert refused.value.field == "url" and PASSWORD not in refused.value.message
    assert raw("SELECT count(*) FROM task") == [(0,)]


def test_the_webhook_secret_is_printed_once_when_it_is_made(app, runner):
    task = exporters.create_exporter("stock", "stock")
    configure = ["notifications", "configure", str(task.id), "--webhook-url", HOOK]
    first = runner.invoke(args=configure)
    db.session.expire_all()
    secret = db.session.get(Task, task.id).webhook_secret
    assert first.exit_code == 0 and secret in first.output and "not shown again" in first.output
    again = runner.invoke(args=configure)
    assert again.exit_code == 0 and secret not in again.output
    replaced = runner.invoke(args=[*configure, "--new-secret"])
    db.session.expire_all()
    fresh = db.session.get(Task, task.id).webhook_secret
    assert fresh != secret and fresh in replaced.output and secret not in replaced.output


def test_the_other_processes_of_the_machine_follow_a_rotation(app, monkeypatch, tmp_path):
    machine = key_file_app(app, monkeypatch, tmp_path)
    # A web process started before the rotation, on the same instance folder.
    web = app_on(app.config["DATABASE_URL"], tmp_path / "machine")
    [old_key] = web.config["ENCRYPTION_KEYS"]
    with machine.app_context():
        task_id = importer_with_secrets().id
    assert read_task(web, task_id)[1] == {"password": PASSWORD}
    with machine.app_context():
        result = machine.test_cli_runner().invoke(args=["secrets", "rotate-key"])
        assert result.exit_code == 0, result.output
        db.session.remove()
        db.engine.dispose()
    assert read_task(web, task_id)[1] == {"password": PASSWORD}  # the new key, read from the file
    key_file = tmp_path / "machine" / "encryption_key"
    assert web.config["ENCRYPTION_KEYS"] == key_file.read_text().split() != [old_key]
