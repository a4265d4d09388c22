"""A test that drives a missing external program is skipped with the package to install, and
named at the end of the run; under IMPEXMOD_REQUIRE_PROGRAMS=1 it fails instead."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run_inner(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            from tests.conftest import PROGRAMS, pytest_runtest_setup, pytest_terminal_summary

            PROGRAMS["nothere"] = ("/nonexistent/bin/nothere", "nothere-tools")

            def pytest_configure(config):
                config.addinivalue_line("markers", "needs(program): an external program")
            """
        )
    )
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.mark.needs("nothere")
            def test_drives_it():
                raise AssertionError("must not run without the program")

            def test_plain():
                pass
            """
        )
    )
    environ = {**os.environ, "PYTHONPATH": str(ROOT)}
    environ.pop("IMPEXMOD_REQUIRE_PROGRAMS", None)  # CI sets it for the suite itself
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", str(tmp_path)],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_missing_program_skips_its_tests_and_says_what_to_install(tmp_path):
    result = _run_inner(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 1 skipped" in result.stdout
    assert "/nonexistent/bin/nothere is not installed (apt-get install nothere-tools)" in (
        result.stdout
    )
    assert "1 skipped: apt-get install nothere-tools" in result.stdout


def test_when_programs_are_required_a_missing_one_fails(tmp_path):
    result = _run_inner(tmp_path, IMPEXMOD_REQUIRE_PROGRAMS="1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed, 1 error" in result.stdout  # failed in setup, before the test ran
    assert "IMPEXMOD_REQUIRE_PROGRAMS=1 requires it" in result.stdout
