"""Factories shared by the tests and the demo seed.

- ``orm``: SQLAlchemy model factories on ``db.session`` for tests (``ProductFactory()``);
- ``rows``: factories of plain dicts for Core bulk inserts (``ProductRow.build(id=7)``), which
  ``maker.RowMaker`` evaluates ten times faster for the seed;
- ``fields``: the declarations both share;
- ``reference``, ``catalog``, ``sales``: whole batches of rows for :mod:`impexmod.factories.seed`,
  built from what ``context`` loads; ``values`` and ``words``: the generators and vocabulary.

The ORM factories import the models, so they load on first use, not with this package.
"""

from __future__ import annotations

from impexmod.factories.values import EPOCH, ean13_check_digit, is_valid_ean13

__all__ = ["EPOCH", "ean13_check_digit", "is_valid_ean13"]
