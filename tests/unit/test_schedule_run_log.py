"""A run's log: timestamped lines, bounded to fit a TEXT column on every database."""

from __future__ import annotations

import re

from impexmod.models import Run


def test_lines_are_timestamped_in_utc():
    run = Run()
    run.log_line("Started")
    run.log_line("Succeeded in 0.10 s")
    lines = run.log.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ Started", lines[0])


def test_a_long_log_keeps_its_beginning_and_its_latest_lines():
    run = Run()
    for i in range(5000):
        run.log_line(f"line {i} " + "x" * 40)
    assert len(run.log.encode()) <= Run.LOG_LIMIT
    lines = run.log.splitlines()
    assert lines[0].endswith("line 0 " + "x" * 40)
    assert "[...]" in lines
    assert lines[-1].split(" ")[2] == "4999"


def test_a_message_on_several_lines_is_one_entry():
    run = Run()
    run.log_line("Failed: boom\nTraceback: here")
    assert run.log.count("\n") == 1 and run.log.endswith("Failed: boom Traceback: here\n")
