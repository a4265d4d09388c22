"""Download links of one run's file, signed and expiring (webhook and e-mail deliveries).

A link signs (run id, the task's feed token nonce) with a timestamp: it opens that run's file
for ``DELIVERY_LINK_SECONDS`` after it was made, and dies at once when the exporter's feed
token is rotated. The feeds blueprint serves it (impexmod.feeds.views.run_file).
"""

from __future__ import annotations

import hmac

from flask import current_app
from itsdangerous import BadData, URLSafeTimedSerializer

from impexmod.extensions import db
from impexmod.models import Run, Task

SALT = "impexmod.run-file"
MAX_ID = 2**31 - 1


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def lifetime() -> int:
    """Seconds a download link stays valid."""
    return int(current_app.config.get("DELIVERY_LINK_SECONDS", 7 * 24 * 3600))


def download_url(run: Run, task: Task) -> str | None:
    """A signed link to the run's file, valid for ``lifetime()`` seconds (None: no file)."""
    if not run.file_key:
        return None
    token = _serializer().dumps([run.id, task.token_nonce])
    return f"{current_app.config['PUBLIC_URL']}/feeds/files/{token}/{run.file_key}"


def run_for_link(token: str, name: str) -> Run | None:
    """The run a link opens, or None for a tampered, expired, revoked or mismatched one."""
    try:
        run_id, nonce = _serializer().loads(token, max_age=lifetime())
    except (BadData, ValueError, TypeError):
        return None
    if type(run_id) is not int or not 1 <= run_id <= MAX_ID or not isinstance(nonce, str):
        return None
    run = db.session.get(Run, run_id)
    if run is None or run.file_key != name or run.file_removed_at is not None:
        return None
    task = db.session.get(Task, run.task_id)
    if task is None or not hmac.compare_digest(task.token_nonce, nonce):
        return None
    return run
