"""`impexmod demo` opens a working panel: demo exporters that ran, and printed credentials."""

from __future__ import annotations

import re

from tests.integration.test_admin_auth import Panel


def test_demo_prints_credentials_that_open_the_panel_with_runs(app, runner):
    result = runner.invoke(args=["demo", "--products", "20", "--no-serve"])
    assert result.exit_code == 0, result.output
    email = re.search(r"e-mail:\s+(\S+)", result.output).group(1)
    password = re.search(r"password:\s+(\S+)", result.output).group(1)
    assert "/admin/" in result.output
    panel = Panel(app)
    assert panel.login(email, password).status_code == 302
    tasks_page = panel.text("/admin/tasks/")
    assert "Demo products" in tasks_page and "succeeded" in tasks_page
    assert "Demo stock (incremental)" in tasks_page
    dashboard = panel.text("/admin/")
    assert re.search(r'id="count-products">20<', dashboard)

    again = runner.invoke(args=["demo", "--products", "20", "--no-serve"])
    new_password = re.search(r"password:\s+(\S+)", again.output).group(1)
    assert new_password != password  # the demo account gets a fresh password each time
    assert Panel(app).login(email, password).status_code == 200
    assert Panel(app).login(email, new_password).status_code == 302


def test_the_demo_sets_up_the_orders_chain_and_an_inbound_feed_that_work(app, runner, client):
    import json
    import shlex
    from urllib.parse import urlsplit

    from impexmod.models import FlagStatus
    from impexmod.orders import flags, inbound, states

    result = runner.invoke(args=["demo", "--products", "20", "--no-serve"])
    assert result.exit_code == 0, result.output
    assert "Demo ERP" in result.output and "serves flag erp, then sets warehouse" in result.output
    order = re.search(r'impexmod orders move (\S+) "Payment accepted"', result.output).group(1)
    moved = runner.invoke(args=["orders", "move", order, "Payment accepted"])
    assert moved.exit_code == 0, moved.output
    found = states.find_order(order)
    by_flag = {f.flag: f.status for f in flags.of_order(found.id)}
    assert by_flag == {"erp": FlagStatus.SENT, "warehouse": FlagStatus.HELD}
    assert runner.invoke(args=["orders", "approve", "--all"]).exit_code == 0
    db_flags = {f.flag: f.status for f in flags.of_order(found.id)}
    assert db_flags == {"erp": FlagStatus.SENT, "warehouse": FlagStatus.SENT}
    # The printed curl command, sent through the test client: 202, one event queued.
    curl = next(line for line in result.output.splitlines() if "curl -X POST" in line)
    words = shlex.split(curl)
    body, url = words[words.index("-d") + 1], words[-1]
    assert json.loads(body)["type"] == "shipped"
    answer = client.post(urlsplit(url).path, data=body, content_type="application/json")
    assert answer.status_code == 202, answer.get_data(as_text=True)
    assert answer.get_json()["accepted"] == 1
    [feed] = inbound.list_inbound()
    assert sum(inbound.counts(feed).values()) == 1
