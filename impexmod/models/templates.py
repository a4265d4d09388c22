"""Field-mapping templates and export selections."""

from __future__ import annotations
