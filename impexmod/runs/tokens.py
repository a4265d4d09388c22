"""Feed tokens: signed with itsdangerous, one per task, revocable by rotation.

The feed endpoint (impexmod.feeds) reads them; task services and pipelines put feed URLs in
what they describe, so they live with the tasks.

A token signs (task id, nonce). The nonce is random and stored on the task: rotating it makes
every token signed before unverifiable, so the old URL dies at once.
"""

from __future__ import annotations

import hmac
import secrets

from flask import current_app
from itsdangerous import BadData, URLSafeSerializer

from impexmod.extensions import db
from impexmod.models import Task
from impexmod.runs import lifecycle

SALT = "impexmod.feed-url"
# Task ids are an Integer column: 32-bit signed on PostgreSQL and MariaDB.
MAX_ID = 2**31 - 1


def new_nonce() -> str:
    """A fresh unguessable nonce (128 bits)."""
    return secrets.token_urlsafe(16)


def _serializer(salt: str) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=salt)


def sign(task: Task, salt: str = SALT) -> str:
    """A token of (task id, nonce) under ``salt``: one salt per kind of URL, so that a token
    of one kind (a feed) never opens a URL of another (an inbound feed)."""
    return _serializer(salt).dumps([task.id, task.token_nonce])


def make_token(task: Task) -> str:
    """The token in the feed URL of a task."""
    return sign(task)


def task_for_token(token: str, salt: str = SALT) -> Task | None:
    """The task a token opens, or None for a tampered, unknown or rotated token."""
    try:
        task_id, nonce = _serializer(salt).loads(token)
    except (BadData, ValueError, TypeError):
        return None
    # A bool is an int to Python (True would open task 1), and an id past the column's range
    # makes the database driver raise: neither is a task, so both are the plain "no task".
    if type(task_id) is not int or not 1 <= task_id <= MAX_ID or not isinstance(nonce, str):
        return None
    task = db.session.get(Task, task_id)
    if task is None or not hmac.compare_digest(task.token_nonce, nonce):
        return None
    return task


def feed_filename(task: Task) -> str:
    """The file name at the end of the feed URL, e.g. ``products.xml``."""
    # The extension is the pipeline's to say (an exporter's depends on its output).
    return f"{task.entity}.{lifecycle.pipeline_of(task).file_ext(task)}"


def feed_url(task: Task) -> str:
    """The public URL a partner polls for this task's feed."""
    base = current_app.config["PUBLIC_URL"]
    return f"{base}/feeds/{make_token(task)}/{feed_filename(task)}"
