"""What an import did: counts per file and entity, row errors, warnings, a dry run's diffs."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from impexmod.importing.defaults import setting
from impexmod.importing.errors import RowError

ACTIONS = ("created", "updated", "unchanged", "deleted", "disabled", "skipped", "errors")


@dataclass
class Report:
    """The outcome of one import (one file, or every file of a data group)."""

    dry_run: bool = False
    counts: dict[tuple[str, str], Counter] = field(default_factory=lambda: defaultdict(Counter))
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    warning_count: int = 0
    diffs: list[dict] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    window_to: int | None = None
    not_modified: bool = False
    file: str = ""
    # Read once: an import may report tens of thousands of warnings.
    kept: int = field(
        default_factory=lambda: int(setting("IMPORT_MAX_ERRORS_KEPT")), repr=False, compare=False
    )

    def add_error(self, error: RowError, kind: str | None = None) -> None:
        """Record an error or a warning (kept up to a limit, always counted)."""
        if error.severity == "warning":
            self.warning_count += 1
        else:
            self.error_count += 1
            if kind:
                self.counts[(error.file, kind)]["errors"] += 1
        if len(self.errors) < self.kept:
            self.errors.append(error)

    def refuse(self, message: str) -> None:
        """Record that a whole input was refused (nothing of it was written)."""
        self.refused.append(message)
        self.add_error(RowError(self.file or message.split(":")[0], None, "", "", message))

    def add_counts(self, counts: dict[tuple[str, str], int]) -> None:
        """Merge a chunk's (kind, action) counts under the current file."""
        for (kind, action), n in counts.items():
            self.counts[(self.file, kind)][action] += n

    def add_diffs(self, diffs: list[dict]) -> None:
        """Keep a chunk's diffs, up to a limit."""
        room = setting("IMPORT_MAX_DIFFS") - len(self.diffs)
        if room > 0:
            self.diffs.extend(dict(d, file=self.file) for d in diffs[:room])

    def written_nothing(self, file: str) -> None:
        """Forget one file's counts and diffs: its writes were rolled back (its errors stay)."""
        for key in [k for k in self.counts if k[0] == file]:
            errors = self.counts.pop(key)["errors"]
            if errors:
                self.counts[key]["errors"] = errors
        self.diffs = [d for d in self.diffs if d.get("file") != file]

    def totals(self) -> dict[str, int]:
        """Counts summed over files and entities."""
        out = dict.fromkeys(ACTIONS, 0)
        for counter in self.counts.values():
            for action in ACTIONS:
                out[action] += counter[action]
        out["errors"] = self.error_count
        return out

    def per_entity(self) -> list[dict]:
        """One row per (file, entity) with its counts."""
        return [
            {"file": file, "entity": kind, **{a: counter[a] for a in ACTIONS}}
            for (file, kind), counter in sorted(self.counts.items())
        ]

    @property
    def ok(self) -> bool:
        """No refusal and no row error."""
        return not self.refused and not self.error_count

    def to_dict(self) -> dict:
        """Plain data for ``--json`` and the panel."""
        totals = self.totals()
        return {
            **totals,
            "warnings": self.warning_count,
            "dry_run": self.dry_run,
            "not_modified": self.not_modified,
            "refused": self.refused,
            "files": self.files,
            "entities": self.per_entity(),
            "error_list": [
                {k: getattr(e, k) for k in ("severity", "file", "line", "path", "field", "reason")}
                for e in self.errors[:1000]
            ],
            "diffs": self.diffs if self.dry_run else [],
        }
