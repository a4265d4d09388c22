"""GET/HEAD on a feed URL: verify the token, then serve the stored file.

Every failure (bad, tampered, unknown or rotated token; no feed yet; wrong file name) is the
same plain 404, so a partner learns nothing from a wrong URL. Conditional requests, ranges and
HEAD are Werkzeug's ``send_file``; gzip is the twin the run wrote, never compressed here.
With ``?cursor=E`` a client catches up on an incremental feed from the retained run files
(``impexmod.importing.cursor``; docs/importing.md): still stored files only, never computed.
"""

from __future__ import annotations

from flask import Response, request, send_file

from impexmod.feeds import bp
from impexmod.feeds.tokens import feed_filename, task_for_token
from impexmod.importing import cursor
from impexmod.runs.feedstore import CONTENT_TYPES, get_store


def _not_found() -> Response:
    return Response("Not found\n", status=404, mimetype="text/plain")


def _accepts_gzip() -> bool:
    return request.accept_encodings["gzip"] > 0


@bp.route("/<token>/<name>", methods=["GET", "HEAD"])
def feed(token: str, name: str) -> Response:
    """Serve the current file of the feed this token opens (a retained one with ``?cursor``)."""
    task = task_for_token(token)
    if task is None or name != feed_filename(task):
        return _not_found()
    store = get_store()
    current = store.current(task.id)
    if current is None:
        return _not_found()
    if "cursor" in request.args:
        return _catch_up(task, name)
    if request.args.get(cursor.SNAPSHOT) == "full":
        return _snapshot(task, name)
    return _serve_current(store, task, name, current)


def _serve_current(store, owner, name: str, current) -> Response:
    """Serve ``owner``'s current file, with its window in the headers."""
    window_from, window_to = cursor.window_of(owner, current.run_id)
    response = _serve(
        store,
        owner,
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
    return _serve_current(store, companion, name, current)


def _serve(store, task, name, file_name, gzip_name, etag, published_at, content_type) -> Response:
    use_gzip = gzip_name is not None and _accepts_gzip()
    path = store.path(task.id, gzip_name if use_gzip else file_name)
    if use_gzip and not path.exists():
        use_gzip, path = False, store.path(task.id, file_name)
    try:
        response = send_file(
            path,
            mimetype=content_type,
            conditional=True,
            etag=f"{etag}-gz" if use_gzip else etag,
            last_modified=published_at,
            max_age=0,
            download_name=name,
            as_attachment=False,
        )
    except FileNotFoundError:  # replaced between reading current.json and opening the file
        return _not_found()
    # As stored: send_file would add a second charset to a text/* type that has one.
    response.headers["Content-Type"] = content_type
    if use_gzip:
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


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
        path = store.path(task.id, run.file_key)
        gz = run.file_key + ".gz"
        response = _serve(
            store,
            task,
            name,
            run.file_key,
            gz if store.path(task.id, gz).exists() else None,
            f"run-{run.id}",
            path.stat().st_mtime if path.exists() else None,
            CONTENT_TYPES.get(run.file_key.rsplit(".", 1)[-1], "application/octet-stream"),
        )
        response.headers[cursor.WINDOW_FROM] = "" if run.epoch_from is None else str(run.epoch_from)
        response.headers[cursor.MORE] = "1" if found.more else "0"
    response.headers[cursor.CURSOR] = str(found.cursor)
    response.headers["Cache-Control"] = "no-cache"
    return response
