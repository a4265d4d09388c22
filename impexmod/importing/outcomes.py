"""What an import run did, as the CLI and the panel show it: counts per file and entity, the
first row errors and warnings with their totals, and a dry run's diffs grouped by entity."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func

from impexmod.extensions import db
from impexmod.importing.defaults import setting
from impexmod.importing.report import ACTIONS
from impexmod.models import ImportDiff, ImportResult, ImportRowError, Run
from impexmod.runs.history import describe_run

SHOWN_ERRORS = 200
# Run.strategy of an import run that wrote nothing (its Options had dry_run).
DRY_RUN = "dry run"
RESULT_COLUMNS = ("file", "entity", *ACTIONS)


def describe_import_run(run: Run) -> dict[str, Any]:
    """A run of an importer, with its results per file and entity."""
    out = describe_run(run) or {}
    results = db.session.query(ImportResult).filter_by(run_id=run.id).order_by(ImportResult.id)
    out["results"] = [{c: getattr(r, c) for c in RESULT_COLUMNS} for r in results]
    out["error_rows"] = db.session.query(ImportRowError).filter_by(run_id=run.id).count()
    return out


def run_errors(run_id: int, limit: int | None = None) -> list[ImportRowError]:
    """The row errors (and warnings) of an import run, in order; the first ``limit`` if given."""
    query = db.session.query(ImportRowError).filter_by(run_id=run_id).order_by(ImportRowError.id)
    return query.limit(limit).all() if limit is not None else query.all()


@dataclass
class Outcome:
    """One import run's results, errors and diffs."""

    run: Run
    results: list[dict]
    errors: list[ImportRowError]
    error_count: int
    warning_count: int
    refusals: list[ImportRowError] = field(default_factory=list)
    diffs: dict[str, list[ImportDiff]] = field(default_factory=dict)
    diff_count: int = 0
    diff_limit: int = 0  # a dry run keeps at most this many diffs (IMPORT_MAX_DIFFS)

    @property
    def dry_run(self) -> bool:
        """Whether the run only told what it would do."""
        return self.run.strategy == DRY_RUN

    @property
    def totals(self) -> dict[str, int]:
        """The counts summed over files and entities."""
        keys = ("created", "updated", "unchanged", "deleted", "disabled", "skipped", "errors")
        return {k: sum(r[k] for r in self.results) for k in keys}


def count_errors(run_id: int) -> dict[str, int]:
    """How many errors and warnings an import run recorded: ``{"error": n, "warning": m}``."""
    rows = (
        db.session.query(ImportRowError.severity, func.count(ImportRowError.id))
        .filter(ImportRowError.run_id == run_id)
        .group_by(ImportRowError.severity)
    )
    return {"error": 0, "warning": 0, **dict(rows.all())}


def run_diffs(run_id: int, limit: int | None = None) -> list[ImportDiff]:
    """What a dry run would have changed, in the order it found the entities."""
    query = db.session.query(ImportDiff).filter_by(run_id=run_id).order_by(ImportDiff.id)
    return query.limit(limit).all() if limit is not None else query.all()


def results(run_id: int) -> list[dict]:
    """The counts of an import run per file and entity."""
    rows = db.session.query(ImportResult).filter_by(run_id=run_id).order_by(ImportResult.id)
    return [{c: getattr(r, c) for c in RESULT_COLUMNS} for r in rows]


def refusals(run_id: int) -> list[ImportRowError]:
    """The warnings saying a mode was refused (delete-absent on a partial input, ...)."""
    return (
        db.session.query(ImportRowError)
        .filter_by(run_id=run_id, severity="warning", field="mode")
        .order_by(ImportRowError.id)
        .all()
    )


def outcome(run: Run, shown_errors: int = SHOWN_ERRORS) -> Outcome:
    """The results of an import run, its first ``shown_errors`` errors and its diffs."""
    counts = count_errors(run.id)
    grouped: dict[str, list[ImportDiff]] = defaultdict(list)
    limit = int(setting("IMPORT_MAX_DIFFS"))
    diffs = run_diffs(run.id, limit)
    for diff in diffs:
        grouped[diff.entity].append(diff)
    return Outcome(
        run=run,
        results=results(run.id),
        errors=run_errors(run.id, shown_errors),
        error_count=counts["error"],
        warning_count=counts["warning"],
        refusals=refusals(run.id),
        diffs=dict(grouped),
        diff_count=len(diffs),
        diff_limit=limit,
    )
