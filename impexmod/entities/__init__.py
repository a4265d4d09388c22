"""Entity specs (descriptors), by the name used on the CLI and in exporter definitions.

``REGISTRY`` is the one per-entity table: every other one is derived from it
(:mod:`impexmod.entities.derived`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from impexmod.entities import derived
from impexmod.entities.base import Descriptor, ExportContext
from impexmod.entities.categories import CategoryDescriptor
from impexmod.entities.combinations import CombinationDescriptor
from impexmod.entities.customers import CustomerDescriptor
from impexmod.entities.orders import OrderDescriptor
from impexmod.entities.products import ProductDescriptor
from impexmod.entities.specific_prices import SpecificPriceDescriptor
from impexmod.entities.stock import StockDescriptor
from impexmod.entities.tags import TagDescriptor

REGISTRY: dict[str, Descriptor] = {
    d.name: d
    for d in (
        ProductDescriptor(),
        CombinationDescriptor(),
        CategoryDescriptor(),
        TagDescriptor(),
        SpecificPriceDescriptor(),
        StockDescriptor(),
        OrderDescriptor(),
        CustomerDescriptor(),
    )
}

ENTITY_NAMES = tuple(REGISTRY)
derived.refresh(REGISTRY)


class UnknownEntity(ValueError):
    """An entity name that no descriptor answers to."""


def resolve(name: str) -> Descriptor:
    """The descriptor of an entity name such as ``products``."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownEntity(
            f"unknown entity {name!r}; choose one of: {', '.join(ENTITY_NAMES)}"
        ) from None


@contextmanager
def registered(descriptor: Descriptor) -> Iterator[Descriptor]:
    """Add an entity spec to REGISTRY (and the derived tables) for the time of a block."""
    if descriptor.name in REGISTRY:
        raise ValueError(f"entity {descriptor.name!r} is registered already")
    REGISTRY[descriptor.name] = descriptor
    derived.refresh(REGISTRY)
    try:
        yield descriptor
    finally:
        del REGISTRY[descriptor.name]
        derived.refresh(REGISTRY)


__all__ = [
    "Descriptor",
    "ExportContext",
    "REGISTRY",
    "ENTITY_NAMES",
    "resolve",
    "UnknownEntity",
    "registered",
]
