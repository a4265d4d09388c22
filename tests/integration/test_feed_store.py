"""The feed store's guarantees, on the local store and on an S3 bucket.

``feed_store`` (tests/conftest.py) runs each test twice: on a folder, and on a bucket of moto's
server mode on loopback, a real S3-protocol HTTP server standing in for S3/MinIO (boto3 speaks
to it as to them: multipart uploads, ranged GETs, listings, aborted uploads).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import botocore.exceptions as bx
import pytest
from boto3.exceptions import S3UploadFailedError

from impexmod.dispatch import jobs
from impexmod.export import definition as exporters
from impexmod.importing import uploads
from impexmod.runs import history
from impexmod.runs.feedstore import get_store
from impexmod.runs.tokens import feed_url
from tests.conftest import close_s3_stores, use_s3_store

MIB = 1024 * 1024


def publish(store, task_id: int, run_id: int, data: bytes, gz: bool = False):
    """Write, place and point a run's file as the export does."""
    with store.writing(task_id, run_id) as (fh, tmp):
        fh.write(data)
    feed = store.place(task_id, run_id, tmp, "xml")
    store.point(feed)
    return store.add_gzip(feed) if gz else feed


def read(store, task_id: int, name: str) -> bytes:
    with store.open(task_id, name) as fh:
        return fh.read()


def served(app, client, task) -> bytes:
    with client.get(feed_url(task).removeprefix(app.config["PUBLIC_URL"])) as response:
        assert response.status_code == 200
        return response.data


def test_a_file_being_written_or_placed_is_never_served(app, client, feed_store):
    task = exporters.create_exporter("stock", "stock")
    first = jobs.start_run(task, inline=True)
    store = get_store()
    before = served(app, client, task)
    big = b"<advancedimporter>" + os.urandom(6 * MIB).hex().encode() + b"</advancedimporter>"
    with store.writing(task.id, first.id + 1) as (fh, tmp):
        fh.write(big[: len(big) // 2])
        # Half written: not a stored file, not served.
        assert store.names(task.id) == [f"run-{first.id}.xml", f"run-{first.id}.xml.gz"]
        assert served(app, client, task) == before
        fh.write(big[len(big) // 2 :])
    feed = store.place(task.id, first.id + 1, tmp, "xml")  # 12 MiB: a multipart upload on S3
    assert store.stat(task.id, feed.name).size == len(big)
    assert store.current(task.id).run_id == first.id  # placed is not served
    assert served(app, client, task) == before
    store.point(feed)
    assert served(app, client, task) == big
    store.add_gzip(feed)  # which removes the scratch file S3's place kept for it
    assert store.temporaries(task.id) == []


def test_a_failed_run_leaves_the_previous_feed_and_no_temporary(app, client, feed_store):
    task = exporters.create_exporter("stock", "stock")
    jobs.start_run(task, inline=True)
    store = get_store()
    before, current = served(app, client, task), store.current(task.id)
    with pytest.raises(RuntimeError):
        with store.writing(task.id, 999) as (fh, _):
            fh.write(b"<half")
            raise RuntimeError("disk on fire")
    assert store.current(task.id) == current and served(app, client, task) == before
    assert not any(n.startswith("run-999") for n in store.names(task.id))
    assert [n for n in store.temporaries(task.id) if "run999" in n] == []


def test_a_multipart_upload_cut_half_way_leaves_no_object(app, client, s3_endpoint):
    """S3's own step: the parts sent before the cut never become an object."""
    use_s3_store(app, s3_endpoint)
    task = exporters.create_exporter("stock", "stock")
    jobs.start_run(task, inline=True)
    store = get_store()
    before = served(app, client, task)
    parts = []

    def cut(params, **_):
        parts.append(params["PartNumber"])
        if len(parts) >= 2:
            raise bx.EndpointConnectionError(endpoint_url="cut by the test")

    store.s3.meta.events.register("provide-client-params.s3.UploadPart", cut)
    try:
        with store.writing(task.id, 500) as (fh, tmp):
            fh.write(os.urandom(16 * MIB))
        with pytest.raises((bx.BotoCoreError, S3UploadFailedError)):
            store.place(task.id, 500, tmp, "xml")
    finally:
        store.s3.meta.events.unregister("provide-client-params.s3.UploadPart", cut)
    assert len(parts) >= 2  # it was cut half-way, not refused at once
    assert store.stat(task.id, "run-500.xml") is None
    assert store.temporaries(task.id) == []  # aborted, and the scratch file removed
    assert served(app, client, task) == before
    close_s3_stores(app)


def test_gzip_twin_is_announced_and_matches(app, feed_store):
    store = get_store()
    feed = publish(store, 7, 1, b"<x>" + b"abc" * 100_000 + b"</x>", gz=True)
    assert feed.gzip_name == "run-1.xml.gz" and store.current(7).gzip_name == "run-1.xml.gz"
    assert gzip.decompress(read(store, 7, "run-1.xml.gz")) == read(store, 7, "run-1.xml")
    assert store.temporaries(7) == []


def test_reads_stream_and_seek(app, feed_store):
    store = get_store()
    data = os.urandom(3 * MIB)
    publish(store, 3, 1, data)
    with store.open(3, "run-1.xml") as fh:
        assert fh.seek(0, os.SEEK_END) == len(data)
        fh.seek(MIB)
        assert fh.read(10) == data[MIB : MIB + 10]
        fh.seek(5)
        assert fh.read(5) == data[5:10]
    with pytest.raises(FileNotFoundError):
        store.open(3, "run-2.xml")


def test_discarded_and_task_files_are_deleted(app, feed_store):
    store = get_store()
    publish(store, 4, 1, b"<one/>", gz=True)
    with store.writing(4, 2) as (fh, tmp):
        fh.write(b"<two/>")
    store.place(4, 2, tmp, "xml")  # placed, never recorded a success
    assert store.remove_run_files(4, 2) == len(b"<two/>")
    assert store.remove_run_files(4, 1) == 0  # the current one stays
    assert store.names(4) == ["run-1.xml", "run-1.xml.gz"]
    assert store.delete(4, "run-1.xml.gz") > 0 and store.delete(4, "run-1.xml.gz") == -1
    store.remove_task(4)
    assert store.names(4) == [] and store.current(4) is None


def test_the_sweeper_finds_a_placed_file_and_dead_runs_temporaries(app, feed_store):
    store = get_store()
    publish(store, 5, 1, b"<one/>")
    with store.writing(5, 2) as (fh, tmp):
        fh.write(b"<two/>")
    placed = store.place(5, 2, tmp, "xml")
    found = store.placed(5, 2, placed.name)
    assert found.size == placed.size and found.gzip_name is None
    store.point(found)
    assert read(store, 5, store.current(5).name) == b"<two/>"
    assert store.placed(5, 3, "run-3.xml") is None

    with pytest.raises(RuntimeError), store.writing(5, 9) as (fh, _):
        fh.write(b"kept by a dead process")
        # A process killed here leaves its scratch file: copy it aside as if it had died.
        dead = _copy_aside(store, 5, 9)
        raise RuntimeError
    if feed_store == "s3":  # and, on S3, an upload its death left unfinished
        store.s3.create_multipart_upload(Bucket=store.bucket, Key=store._key(5, "run-9.xml"))

    def of_run_9() -> list[str]:
        return [n for n in store.temporaries(5) if "run9-" in n or "run-9." in n]

    assert len(of_run_9()) == (2 if feed_store == "s3" else 1)
    files, _ = store.remove_temporary(lambda run_id: run_id != 9, float("inf"), task_id=5)
    assert files == (2 if feed_store == "s3" else 1)
    assert of_run_9() == [] and not dead.exists()


def _copy_aside(store, task_id: int, run_id: int):
    folder = store.folder(task_id) if hasattr(store, "folder") else store.scratch / str(task_id)
    dead = folder / f".writing-run{run_id}-dead.tmp"
    dead.write_bytes(b"half")
    return dead


def test_a_run_file_downloads_from_the_store(app, feed_store):
    task = exporters.create_exporter("stock", "stock")
    run = jobs.start_run(task, inline=True)
    stored = history.run_file(run)
    assert stored is not None and stored.stored.size == run.bytes
    with stored.open() as fh:
        assert fh.read() == read(get_store(), task.id, run.file_key)


def test_an_upload_taken_by_one_machine_is_imported_by_another(app, app_like, s3_endpoint):
    """A web node keeps the panel's upload in the bucket; a worker elsewhere fetches it (the
    local store is one machine's: its uploads stay in the instance folder)."""
    import io

    use_s3_store(app, s3_endpoint)
    stored = uploads.store(io.BytesIO(b"<advancedimporter/>"), "catalog.xml")
    config = {k: app.config[k] for k in app.config if k.startswith(("FEED_STORE", "S3_"))}
    worker = app_like(**config)  # its own instance folder: another machine
    try:
        with worker.app_context():
            fetched = uploads.fetched(stored.key, "catalog.xml")
            try:
                same = fetched.path.read_bytes() == b"<advancedimporter/>"
                # A worker's own temporary copy, not a shared folder.
                assert fetched.temporary and str(worker.instance_path) in str(fetched.path)
            finally:
                fetched.cleanup()
            uploads.remove(stored.key)
    finally:
        close_s3_stores(worker)
    assert same and not (Path(app.instance_path) / "uploads").exists()
    with pytest.raises(Exception, match="no longer stored"):
        uploads.fetched(stored.key, "catalog.xml")
    close_s3_stores(app)


REQUESTS = [
    {"Accept-Encoding": "identity"},
    {"Accept-Encoding": "gzip"},
    {"Accept-Encoding": "identity", "Range": "bytes=0-99"},
    {"Accept-Encoding": "identity", "Range": "bytes=1000-"},
    {"Accept-Encoding": "identity", "Range": "bytes=-50"},
    {"Accept-Encoding": "gzip", "Range": "bytes=10-20"},
    {"Accept-Encoding": "identity", "Range": "bytes=99999999-"},
]


def test_answers_are_identical_on_both_stores(app, client, s3_endpoint):
    """The same published feed, served from a folder then from a bucket: same answers."""
    task = exporters.create_exporter("stock", "stock")
    data = b"<advancedimporter>" + b"<stock/>" * 5000 + b"</advancedimporter>"
    local = get_store()
    feed = publish(local, task.id, 1, data, gz=True)
    url = feed_url(task).removeprefix(app.config["PUBLIC_URL"])
    answers = {}
    try:
        for backend in ("local", "s3"):
            if backend == "s3":
                use_s3_store(app, s3_endpoint)
                store = get_store()
                for name in ("run-1.xml", "run-1.xml.gz"):
                    store._upload(local.path(task.id, name), store._key(task.id, name))
                store.point(local.current(task.id))  # same etag and date as the local one
            etag = f'"{feed.etag}"'
            seen = []
            for headers in [*REQUESTS, {"If-None-Match": etag, "Accept-Encoding": "identity"}]:
                for method in (client.get, client.head):
                    with method(url, headers=headers) as response:
                        kept = {k: v for k, v in response.headers.items() if k != "Date"}
                        seen.append((response.status_code, kept, response.data))
            answers[backend] = seen
    finally:
        close_s3_stores(app)
    assert answers["local"] == answers["s3"]
    statuses = [status for status, _, _ in answers["s3"]]
    assert statuses == [200] * 4 + [206] * 8 + [416] * 2 + [304] * 2
    assert answers["s3"][2][1]["Content-Encoding"] == "gzip"
    assert answers["s3"][4][2] == data[:100] and answers["s3"][6][2] == data[1000:]


def test_a_range_asks_the_bucket_for_its_bytes_only(app, client, s3_endpoint):
    """A 206 fetches the range from S3 (GetObject with Range), a HEAD or 304 fetches nothing."""
    use_s3_store(app, s3_endpoint)
    task = exporters.create_exporter("stock", "stock")
    store = get_store()
    data = os.urandom(2 * MIB)
    feed = publish(store, task.id, 1, data)
    asked = []

    def record(params, **_):
        asked.append(params.get("Range"))

    store.s3.meta.events.register("provide-client-params.s3.GetObject", record)
    url = feed_url(task).removeprefix(app.config["PUBLIC_URL"])
    try:
        with client.get(url, headers={"Range": "bytes=1000-1099"}) as response:
            assert response.status_code == 206 and response.data == data[1000:1100]
        with client.head(url) as response:
            assert response.status_code == 200
        with client.get(url, headers={"If-None-Match": f'"{feed.etag}"'}) as response:
            assert response.status_code == 304
    finally:
        store.s3.meta.events.unregister("provide-client-params.s3.GetObject", record)
        close_s3_stores(app)
    # current.json three times (no Range), the file once, for the range's 100 bytes only.
    assert asked == [None, "bytes=1000-1099", None, None]


def test_an_unreachable_bucket_is_a_503_without_a_trace(app, client, s3_endpoint):
    use_s3_store(app, s3_endpoint)
    task = exporters.create_exporter("stock", "stock")
    close_s3_stores(app)
    from tests.delivery_servers import free_port

    app.config["S3_ENDPOINT_URL"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    try:
        with client.get(feed_url(task).removeprefix(app.config["PUBLIC_URL"])) as response:
            assert response.status_code == 503
            assert response.text == "Feed temporarily unavailable\n"
    finally:
        close_s3_stores(app)


def test_a_feed_made_on_one_machine_is_served_by_another(app, app_like, client, s3_endpoint):
    """A worker (its own instance folder) exports into the bucket; the web node serves it."""
    from impexmod.extensions import db
    from impexmod.models import Task

    use_s3_store(app, s3_endpoint)
    config = {k: app.config[k] for k in app.config if k.startswith(("FEED_STORE", "S3_"))}
    worker = app_like(**config)
    try:
        with worker.app_context():
            task_id = exporters.create_exporter("stock", "stock").id
            run = jobs.start_run(db.session.get(Task, task_id), inline=True)
            assert run.status == "succeeded", run.error
            made = read(get_store(), task_id, run.file_key)
    finally:
        close_s3_stores(worker)
    db.session.rollback()  # see what the worker committed
    assert served(app, client, db.session.get(Task, task_id)) == made
    for instance in (app.instance_path, worker.instance_path):
        assert not (Path(instance) / "feeds").exists()  # nothing was kept on either machine
    close_s3_stores(app)


def test_a_local_copy_for_a_transport_that_wants_a_file(app, feed_store):
    store = get_store()
    publish(store, 6, 1, b"<one/>")
    with store.local_copy(6, "run-1.xml") as path:
        assert path.read_bytes() == b"<one/>"
    assert path.exists() == (feed_store == "local")  # a copy is removed after the block
    with pytest.raises(FileNotFoundError), store.local_copy(6, "run-2.xml"):
        pass


def test_the_parts_of_a_run_are_stored_read_and_swept(app, feed_store):
    """The key-range parts of a parallel export (impexmod.export.parts): stored apart from the
    run files, read back from a given offset, removed by the run or, once it died, the sweeper."""
    store = get_store()
    for run_id, number in [(21, 0), (21, 1), (22, 0)]:
        with store.writing_part(5, run_id, number) as fh:
            fh.write(f"head|body of run {run_id} part {number}|".encode())
    assert store.names(5) == []  # never taken for a run's file
    with store.open(5, ".writing-run21-part1.tmp") as fh:
        fh.seek(5)
        assert fh.read() == b"body of run 21 part 1|"
    assert store.temporaries(5) == [
        f".writing-run{r}-part{n}.tmp" for r, n in [(21, 0), (21, 1), (22, 0)]
    ]
    assert store.remove_parts(5, 21) == 2 * len(b"head|body of run 21 part 0|")
    assert store.temporaries(5) == [".writing-run22-part0.tmp"]
    # A failed part leaves nothing.
    with pytest.raises(RuntimeError), store.writing_part(5, 23, 0) as fh:
        fh.write(b"half")
        raise RuntimeError("the part failed")
    assert store.temporaries(5) == [".writing-run22-part0.tmp"]
    # The sweeper keeps the parts of an active run and removes those of a dead one.
    store.remove_temporary(lambda run_id: True, float("inf"), task_id=5)
    assert store.temporaries(5) == [".writing-run22-part0.tmp"]
    files, _ = store.remove_temporary(lambda run_id: run_id != 22, float("inf"), task_id=5)
    assert files == 1 and store.temporaries(5) == []
