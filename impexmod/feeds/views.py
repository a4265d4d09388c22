"""GET/HEAD on a feed URL: verify the token, then serve the stored file.

Every failure (bad, tampered, unknown or rotated token; no feed yet; wrong file name) is the
same plain 404, so a partner learns nothing from a wrong URL. Conditional requests, ranges and
HEAD are Werkzeug's (``make_conditional``) over a stream the store opens, local file or
bucket object alike; gzip is the twin the run wrote, never compressed here.
With ``?cursor=E`` a client catches up on an incremental feed from the retained run files
(``impexmod.importing.cursor``; docs/importing.md): still stored files only, never computed.
"""

from __future__ import annotations

import io

from flask import Response, current_app, request, send_file
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.wsgi import wrap_file

from impexmod.feeds import bp
from impexmod.importing import cursor
from impexmod.runs import feedcache, history, links
from impexmod.runs.feedstore import CONTENT_TYPES, STORE_ERRORS, get_store
from impexmod.runs.tokens import feed_filename, task_for_token


def _not_found() -> Response:
    return Response("Not found\n", status=404, mimetype="text/plain")


def _accepts_gzip() -> bool:
    return request.accept_encodings["gzip"] > 0


def _opened(token: str) -> feedcache.Opened | None:
    """The task a token opens and its URL's file name: kept a moment (impexmod.runs.feedcache)."""
    cache = feedcache.cache()
    found = cache.opened(token)
    if found is None:
        task = task_for_token(token)
        if task is None:
            return None
        found = feedcache.Opened(task.id, feed_filename(task))
        cache.keep(token, found)
    return found


@bp.route("/<token>/<name>", methods=["GET", "HEAD"])
def feed(token: str, name: str) -> Response:
    """Serve the current file of the feed this token opens (a retained one with ``?cursor``)."""
    opened = _opened(token)
    if opened is None or name != opened.filename:
        return _not_found()
    try:
        store = get_store()
        current = store.current(opened.task_id)
        if current is None:
            return _not_found()
        if "cursor" in request.args or request.args.get(cursor.SNAPSHOT) == "full":
            task = task_for_token(token)  # these need the task itself, read now
            if task is None:
                return _not_found()
            if "cursor" in request.args:
                return _catch_up(task, name)
            return _snapshot(task, name)
        return _serve_current(store, opened.task_id, name, current)
    except STORE_ERRORS:
        # The store (a bucket's server) is unreachable: say so, logged here, no trace sent.
        current_app.logger.exception("feed of task %s: the feed store failed", opened.task_id)
        response = Response("Feed temporarily unavailable\n", status=503, mimetype="text/plain")
        response.headers["Retry-After"] = "60"
        return response


def _serve_current(store, owner_id: int, name: str, current) -> Response:
    """Serve the current file of task ``owner_id``, with its window in the headers."""
    window_from, window_to = feedcache.cache().window(
        owner_id, current.run_id, lambda: cursor.window_of(owner_id, current.run_id)
    )
    response = _serve(
        store,
        owner_id,
        name,
        current.name,
        current.gzip_name,
        current.etag,
        current.published_at,
        current.content_type,
    )
    if response.status_code < 400 and window_to is not None:
        response.headers[cursor.CURSOR] = str(window_to)
        response.headers[cursor.WINDOW_FROM] = "" if window_from is None else str(window_from)
    return response


def _snapshot(task, name: str) -> Response:
    """The full companion's current file, under this exporter's own token (docs/importing.md)."""
    companion = cursor.full_companion(task)
    store = get_store()
    current = store.current(companion.id) if companion is not None else None
    if current is None:
        return _not_found()
    return _serve_current(store, companion.id, name, current)


def _open(store, task_id: int, file_name: str, gzip_name: str | None):
    """The stored file to send (its gzip twin when the client takes gzip and it is stored),
    and whether it is the twin; (None, False) if neither is stored."""
    if gzip_name is not None and _accepts_gzip():
        try:
            return store.open(task_id, gzip_name), True
        except FileNotFoundError:
            pass
    try:
        return store.open(task_id, file_name), False
    except FileNotFoundError:  # replaced between reading current.json and opening the file
        return None, False


def _not_modified(name: str, etag: str, gzip_name: str | None, published_at) -> Response | None:
    """The 304 of a poller whose copy is current, answered without opening the file (most
    polls are these); None when the file must be sent."""
    if "Range" in request.headers or request.if_modified_since and not request.if_none_match:
        return None  # rare: Werkzeug's full rules below
    tag = f"{etag}-gz" if gzip_name is not None and _accepts_gzip() else etag
    if not request.if_none_match.contains_weak(tag):
        return None
    response = Response(status=304)
    response.set_etag(tag)
    response.last_modified = published_at
    response.headers["Accept-Ranges"] = "bytes"
    response.headers.set("Content-Disposition", "inline", filename=name)
    return response


def _headers(response: Response) -> Response:
    response.headers["Vary"] = "Accept-Encoding"
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _serve(
    store, task_id, name, file_name, gzip_name, etag, published_at, content_type
) -> Response:
    not_modified = _not_modified(name, etag, gzip_name, published_at)
    if not_modified is not None:
        return _headers(not_modified)
    # One path for every store: a seekable stream, sized by seeking to its end (which costs
    # an S3 reader nothing), that Werkzeug answers conditionally, by ranges, and closes.
    stream, use_gzip = _open(store, task_id, file_name, gzip_name)
    if stream is None:
        return _not_found()
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    response = Response(wrap_file(request.environ, stream), direct_passthrough=True)
    response.content_length = size
    response.last_modified = published_at
    response.set_etag(f"{etag}-gz" if use_gzip else etag)
    response.headers.set("Content-Disposition", "inline", filename=name)
    try:
        response = response.make_conditional(
            request.environ, accept_ranges=True, complete_length=size
        )
    except RequestedRangeNotSatisfiable:
        stream.close()
        raise
    if response.status_code == 206 and hasattr(stream, "limit_to"):
        stream.limit_to(response.content_range.stop)  # a bucket sends the range's bytes only
    # As stored: Werkzeug would add a second charset to a text/* type that has one.
    response.headers["Content-Type"] = content_type
    if use_gzip:
        response.headers["Content-Encoding"] = "gzip"
    return _headers(response)


def _catch_up(task, name: str) -> Response:
    """Answer ``?cursor=E`` from the retained run files (docs/importing.md, "Catching up")."""
    raw = request.args.get("cursor", "")
    if not raw.isdigit():
        return Response(
            "cursor: a window-to epoch (a whole number)\n", status=400, mimetype="text/plain"
        )
    found = cursor.answer(task, int(raw))
    if found.status == 204:
        response = Response(status=204)
    elif found.status == 410:
        text = "This cursor is no longer covered by a retained delta: take the full feed"
        text += f" at {found.full_url}" if found.full_url else " (no full feed is published)"
        text += " and continue with its window-to.\n"
        response = Response(text, status=410, mimetype="text/plain")
        if found.full_url:
            response.headers[cursor.FULL] = found.full_url
    else:
        run, store = found.run, get_store()
        stored = store.stat(task.id, run.file_key)
        response = _serve(
            store,
            task.id,
            name,
            run.file_key,
            run.file_key + ".gz",  # served only if stored (_open)
            f"run-{run.id}",
            stored.modified if stored is not None else None,
            CONTENT_TYPES.get(run.file_key.rsplit(".", 1)[-1], "application/octet-stream"),
        )
        response.headers[cursor.WINDOW_FROM] = "" if run.epoch_from is None else str(run.epoch_from)
        response.headers[cursor.MORE] = "1" if found.more else "0"
    response.headers[cursor.CURSOR] = str(found.cursor)
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.route("/files/<token>/<name>", methods=["GET", "HEAD"])
def run_file(token: str, name: str) -> Response:
    """Serve one run's file through a signed, expiring download link (runs.links)."""
    run = links.run_for_link(token, name)
    found = history.run_file(run) if run is not None else None
    if found is None:
        return _not_found()
    try:
        stream = found.open()  # from either store, streamed
    except FileNotFoundError:
        return _not_found()
    response = send_file(
        stream,
        mimetype=found.content_type,
        conditional=True,
        etag=f"run-{run.id}",
        max_age=0,
        download_name=found.name,
        as_attachment=True,
        last_modified=found.stored.modified,
    )
    response.headers["Content-Type"] = found.content_type
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
