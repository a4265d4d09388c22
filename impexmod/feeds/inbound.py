"""POST on an inbound URL: a carrier's events, stored first, applied by the feed's run.

A wrong, tampered or rotated token gets the feed URLs' plain 404, byte for byte. A body over
``IMPEXMOD_INBOUND_MAX_BYTES`` is refused (413) before it is parsed; a body that is not JSON or
XML gets 400 saying where and why; events missing an id or a type are listed in the 202's
``rejected`` while the others are stored. The answer comes once the events are committed,
whether or not a worker is free: the run is started after (docs/orders.md, "Inbound update feeds").
An API, not a form: no CSRF token (impexmod.create_app exempts it) and no panel login.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from impexmod.extensions import db
from impexmod.feeds.views import _not_found
from impexmod.models import Task
from impexmod.orders import inbound
from impexmod.orders.events import MalformedBody
from impexmod.runs import lifecycle

bp = Blueprint("inbound", __name__, url_prefix="/inbound")

_READ = 64 * 1024
# A refused body up to this many times the limit is read to its end, so the client hears the
# 413 instead of a connection reset; a larger one is cut off.
_DRAIN_FACTOR = 16


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


def _too_large(limit: int, length: int | None) -> Response:
    if length is not None and length <= limit * _DRAIN_FACTOR:
        while request.stream.read(_READ):
            pass
    response = _error(413, f"the body is over the limit of {limit:,} bytes: send fewer events")
    if length is None or length > limit * _DRAIN_FACTOR:
        response.headers["Connection"] = "close"
    return response


def _body(limit: int) -> bytes | None:
    """The body, or None once it is known to be over ``limit``."""
    chunks, total = [], 0
    while block := request.stream.read(_READ):
        total += len(block)
        if total > limit:
            return None
        chunks.append(block)
    return b"".join(chunks)


def _start(task: Task) -> None:
    """Start the run that applies the queue; a run already going will reach these events."""
    task_id = task.id
    try:
        lifecycle.start(task, trigger="inbound")
    except lifecycle.TaskBusy:
        pass
    except Exception:  # stored already: the feed's scheduled run applies them
        db.session.rollback()
        current_app.logger.exception("inbound feed %s: its run could not be started", task_id)


@bp.route("/<token>", methods=["POST"])
def push(token: str) -> Response:
    """Store the events of the body and answer 202 with what was accepted."""
    task = inbound.task_for_token(token)
    if task is None:
        return _not_found()
    limit = inbound.max_bytes()
    length = request.content_length
    if length is not None and length > limit:
        return _too_large(limit, length)
    data = _body(limit)
    if data is None:
        return _too_large(limit, length)
    try:
        receipt = inbound.receive(task, data, request.content_type)
    except MalformedBody as exc:
        return _error(400, str(exc))
    except SQLAlchemyError:
        db.session.rollback()
        current_app.logger.exception("inbound feed %s: events could not be stored", task.id)
        response = _error(503, "the events could not be stored now: send them again")
        response.headers["Retry-After"] = "10"
        return response
    if receipt.accepted:
        _start(task)
    response = jsonify(receipt.as_dict())
    response.status_code = 202
    return response


@bp.errorhandler(Exception)
def _failed(error: Exception) -> Response:
    """Whatever went wrong, the client gets one line, never a trace (the log has it)."""
    code = getattr(error, "code", None)
    if isinstance(code, int) and 400 <= code < 500:
        return _error(code, getattr(error, "description", "refused"))
    db.session.rollback()
    current_app.logger.exception("inbound request failed")
    return _error(500, "internal error: the events may not be stored; send them again")
