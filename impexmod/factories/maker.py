"""``RowMaker``: a dict factory's declarations, evaluated without factory-boy's resolver.

factory-boy resolves each declaration lazily through a resolver, at about 5 µs a field: a
product row costs ~100 µs, and 100,000 products would spend 10 s there, a third of the seed's
budget. A maker evaluates the same declarations in their declared order, ten times faster. It
gives the rows ``build()`` gives for the same random state (tests/unit/test_seed.py checks it),
provided a LazyAttribute only reads fields declared above it. Declarations it cannot evaluate
that way (Faker, SubFactory, post-generation...) are refused when the maker is made: use
``build()`` for those factories.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any

import factory
from factory import declarations as d

_CONSTANT, _FUNCTION, _ATTRIBUTE, _SEQUENCE, _ATTRIBUTE_SEQUENCE = range(5)


class _Row:
    """The object LazyAttribute functions read (``o.price``): the fields evaluated so far."""

    def __init__(self, maker: RowMaker, sequence: int, overrides: dict[str, Any]):
        self.__dict__.update(overrides)
        self._maker = maker
        self._sequence = sequence

    def __getattr__(self, name: str) -> Any:
        # Only called for a field not evaluated yet: evaluate it now, as factory-boy's resolver
        # does, so that the random draws happen in the same order as in build().
        step = self._maker._steps.get(name)
        if step is None:
            raise AttributeError(name)
        value = self.__dict__[name] = self._maker._evaluate(step, self)
        return value


class RowMaker:
    """Call with overrides, as ``build()``: ``make = RowMaker(ProductRow); make(id=7)``."""

    def __init__(self, factory_class: type[factory.Factory]):
        meta = factory_class._meta
        if meta.model is not dict:
            raise TypeError(f"{factory_class.__name__} does not build dicts")
        if meta.post_declarations.declarations:
            raise TypeError(f"{factory_class.__name__} has post-generation declarations")
        self._next_sequence: Callable[[], int] = meta.next_sequence
        self._hidden = (
            frozenset(meta.parameters) | frozenset(meta.exclude) | {"_maker", "_sequence"}
        )
        self._rename = dict(meta.rename)
        # In the declaration set's order, which is the order build() resolves fields in.
        self._steps: dict[str, tuple[int, Any]] = {
            name: self._compile(factory_class, meta.pre_declarations[name])
            for name in meta.pre_declarations
        }

    @staticmethod
    def _compile(factory_class: type, entry) -> tuple[int, Any]:
        declaration = entry.declaration
        if entry.context:
            raise TypeError(f"{factory_class.__name__}.{entry.name}: deep context is not supported")
        # Subclasses first: LazyAttributeSequence is a Sequence.
        if isinstance(declaration, d.LazyAttributeSequence):
            return _ATTRIBUTE_SEQUENCE, declaration.function
        if isinstance(declaration, d.Sequence):
            return _SEQUENCE, declaration.function
        if isinstance(declaration, d.LazyFunction):
            return _FUNCTION, declaration.function
        if isinstance(declaration, d.LazyAttribute):
            return _ATTRIBUTE, declaration.function
        if isinstance(declaration, d.SelfAttribute) and declaration.depth <= 1:  # on this row
            return _ATTRIBUTE, attrgetter(declaration.attribute_name)
        if isinstance(declaration, d.BaseDeclaration):
            raise TypeError(
                f"{factory_class.__name__}.{entry.name}: {type(declaration).__name__} needs "
                "factory-boy's resolver; build these rows with build()"
            )
        return _CONSTANT, declaration

    @staticmethod
    def _evaluate(step: tuple[int, Any], row: _Row) -> Any:
        kind, payload = step
        if kind == _FUNCTION:
            return payload()
        if kind == _ATTRIBUTE:
            return payload(row)
        if kind == _CONSTANT:
            return payload
        if kind == _SEQUENCE:
            return payload(row._sequence)
        return payload(row, row._sequence)

    def __call__(self, **overrides: Any) -> dict:
        """One row: the overrides, and every other declaration evaluated."""
        # Draw a sequence number as build() does, so that sequences stay in step with it.
        row = _Row(self, self._next_sequence(), overrides)
        values = row.__dict__
        evaluate = self._evaluate
        for name, step in self._steps.items():
            if name not in values:
                values[name] = evaluate(step, row)
        rename, hidden = self._rename, self._hidden
        return {rename.get(k, k): v for k, v in values.items() if k not in hidden}
