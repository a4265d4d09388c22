"""What the import engine needs from a loader: the contract every ``loaders/<x>.py`` keeps.

An entity spec names its loader (``loader`` in :mod:`impexmod.entities.base`); the engine
plans, then applies, the entries of each kind in dependency order, one chunk at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from impexmod.importing.context import Chunk
    from impexmod.importing.entry import Entry


@runtime_checkable
class Loader(Protocol):
    """Writes one entity kind. A module with these two functions is one."""

    def plan(self, chunk: Chunk, entries: list[Entry]) -> None:
        """Check the entries and decide what each will do (resolve, match, fail): no writes."""

    def apply(self, chunk: Chunk, entries: list[Entry]) -> None:
        """Write the entries still alive, with bulk statements, in the chunk's transaction.
        Called for each kind of a chunk that has entries (combinations: also when it has
        products, for ``remove-missing-combinations``)."""
