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
