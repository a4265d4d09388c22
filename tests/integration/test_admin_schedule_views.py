"""Admin panel: run history by date, the notifications list, the schedule preview endpoint."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from impexmod.dispatch import notify
from impexmod.export import definition as exporters
from impexmod.extensions import db
from impexmod.models import Notification, Run
from tests.integration.test_admin_auth import Panel, signed_in

RUN_ROW = re.compile(r'data-run-id="(\d+)"')
NOTIFICATION_ROW = re.compile(r'data-notification-id="(\d+)" data-read="([01])"')


@pytest.fixture
def panel(app):
    """A client signed in as a merchant."""
    return signed_in(app)


@pytest.fixture
def dated_runs(app) -> dict[str, int]:
    """Three ended runs of one exporter, queued on known days (naive UTC, as stored)."""
    task = exporters.create_exporter("Dated products", "products")
    queued = {
        "march_10": datetime(2026, 3, 10, 10, 0),
        # 23:30 UTC is 00:30 on 15 March in Europe/Paris, the panel's timezone.
        "march_15_paris": datetime(2026, 3, 14, 23, 30),
        "march_20": datetime(2026, 3, 20, 10, 0),
    }
    ids = {}
    for name, moment in queued.items():
        run = Run(task_id=task.id, status="succeeded", queued_at=moment, ended_at=moment)
        db.session.add(run)
        db.session.flush()
        ids[name] = run.id
    db.session.commit()
    return ids


def shown_runs(panel, query: str) -> set[int]:
    """The ids of the runs listed on the runs page for this query string."""
    page = panel.get(f"/admin/runs/?{query}").get_data(as_text=True)
    return {int(i) for i in RUN_ROW.findall(page)}


def test_run_history_filters_by_date_in_the_shop_timezone(panel, dated_runs):
    assert shown_runs(panel, "") == set(dated_runs.values())
    assert shown_runs(panel, "from=2026-03-15") == {
        dated_runs["march_15_paris"],
        dated_runs["march_20"],
    }
    assert shown_runs(panel, "to=2026-03-14") == {dated_runs["march_10"]}
    assert shown_runs(panel, "from=2026-03-15&to=2026-03-15") == {dated_runs["march_15_paris"]}
    assert shown_runs(panel, "from=2026-03-21") == set()
    page = panel.text("/admin/runs/?from=2026-03-15&to=2026-03-20")
    assert 'value="2026-03-15"' in page and 'value="2026-03-20"' in page  # kept in the form


def test_a_bad_date_is_ignored_with_a_message(panel, dated_runs):
    response = panel.get("/admin/runs/?from=15/03/2026&to=2026-02-30")
    assert response.status_code == 200
    page = panel.text("/admin/runs/?from=15/03/2026&to=2026-02-30")
    assert "From date '15/03/2026' ignored: write it as YYYY-MM-DD" in page
    assert "To date '2026-02-30' ignored" in page
    assert "Traceback" not in page
    assert {int(i) for i in RUN_ROW.findall(page)} == set(dated_runs.values())
    page = panel.text("/admin/runs/?from=2026-03-20&to=2026-03-10")
    assert "The From date is after the To date" in page
    assert RUN_ROW.findall(page) == []


def test_notifications_list_a_failed_run_and_mark_all_read(panel, app):
    task = exporters.create_exporter("Broken feed", "products")
    run = Run(task_id=task.id, status="failed", error="disk full", ended_at=datetime(2026, 3, 1))
    db.session.add(run)
    db.session.commit()
    notification = notify.run_ended(run)
    assert notification is not None
    page = panel.text("/admin/notifications/")
    assert f'Exporter "Broken feed" failed (run {run.id})' in page
    assert 'badge-danger">error<' in page and 'badge-warning">unread<' in page
    assert "<td>Broken feed</td>" in page
    assert f'href="/admin/runs/{run.id}/"' in page
    assert NOTIFICATION_ROW.findall(page) == [(str(notification.id), "0")]
    assert 'id="mark-all-read"' in page
    # Without its CSRF token the button is refused and nothing changes.
    refused = panel.post("/admin/notifications/read-all/", token=False)
    assert refused.status_code == 400
    db.session.expire_all()
    assert db.session.get(Notification, notification.id).read_at is None
    response = panel.post("/admin/notifications/read-all/", follow_redirects=True)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "1 notification marked as read." in page
    assert NOTIFICATION_ROW.findall(page) == [(str(notification.id), "1")]
    assert 'id="mark-all-read"' not in page  # nothing left unread
    db.session.expire_all()
    assert db.session.get(Notification, notification.id).read_at is not None
    assert notify.unread() == []


def test_notifications_and_upcoming_need_a_signed_in_merchant(app):
    anonymous = Panel(app)
    response = anonymous.get("/admin/notifications/")
    assert response.status_code == 302
    assert "/admin/login/" in response.headers["Location"]
    response = anonymous.get("/admin/tasks/upcoming?schedule=daily@02:30")
    assert response.status_code == 302


def test_upcoming_gives_the_next_three_run_times(panel):
    response = panel.get("/admin/tasks/upcoming?schedule=daily@02:30&timezone=Europe/Paris")
    assert response.status_code == 200
    data = response.get_json()
    assert data["schedule"] == "daily@02:30"
    assert len(data["times"]) == 3 and len(data["labels"]) == 3
    times = [datetime.fromisoformat(t) for t in data["times"]]
    assert all(t.strftime("%H:%M") == "02:30" for t in times)
    assert all(t.utcoffset() is not None for t in times)
    assert times == sorted(times) and len({t.date() for t in times}) == 3
    assert all(t > datetime.now(times[0].tzinfo) for t in times)
    # No timezone given: the default one (IMPEXMOD_TIMEZONE, Europe/Paris in tests).
    data = panel.get("/admin/tasks/upcoming?schedule=daily@02:30").get_json()
    assert data["timezone"] == "Europe/Paris" and len(data["times"]) == 3


def test_upcoming_explains_a_bad_schedule_or_timezone(panel):
    response = panel.get("/admin/tasks/upcoming?schedule=bogus&timezone=Europe/Paris")
    assert response.status_code == 400
    assert "a cron expression has five fields" in response.get_json()["error"]
    assert "'bogus'" in response.get_json()["error"]
    response = panel.get("/admin/tasks/upcoming?schedule=daily@02:30&timezone=Mars/Olympus")
    assert response.status_code == 400
    assert "unknown timezone 'Mars/Olympus'" in response.get_json()["error"]
    data = panel.get("/admin/tasks/upcoming?schedule=none").get_json()
    assert data["times"] == []


def test_exporter_form_has_the_schedule_preview(panel):
    page = panel.text("/admin/tasks/new/")
    assert 'id="upcoming-runs" data-upcoming-url="/admin/tasks/upcoming"' in page


def test_older_runs_link_keeps_the_date_filter(panel):
    task = exporters.create_exporter("Busy products", "products")
    moment = datetime(2026, 4, 2, 8, 0)
    db.session.add_all(
        Run(task_id=task.id, status="succeeded", queued_at=moment) for _ in range(51)
    )
    db.session.commit()
    page = panel.text("/admin/runs/?from=2026-04-01&to=2026-04-03")
    link = re.search(r'href="([^"]*before=\d+[^"]*)">Older runs', page)
    assert link, "no Older runs link"
    assert "from=2026-04-01" in link.group(1) and "to=2026-04-03" in link.group(1)
    assert len(shown_runs(panel, link.group(1).split("?", 1)[1])) == 1
