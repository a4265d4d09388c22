"""Predefined templates: writers that produce exactly the file a platform imports.

Each template names the entities it can export and the file it writes; choosing one on an
exporter implies its format. See docs/platforms.md and ../shared/reference/formats/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PlatformTemplate:
    """One predefined template."""

    name: str  # as given to --template: "shopify"
    title: str  # for merchants: "Shopify product CSV"
    entities: tuple[str, ...]  # the entities it can export
    ext: str  # the file it writes: csv, tsv, txt, xml
    load: Callable[[], type]  # the writer class, imported on first use


TEMPLATES: dict[str, PlatformTemplate] = {}


def register(template: PlatformTemplate) -> PlatformTemplate:
    """Add a predefined template to the table (called by each template module)."""
    TEMPLATES[template.name] = template
    return template


def resolve_template(name: str) -> PlatformTemplate | None:
    """The predefined template of that name, or None."""
    return TEMPLATES.get(name)


# The template modules register themselves: importing them here fills TEMPLATES whenever the
# export package (output, tasks, CLI, panel) is imported. They import this module's names
# above, hence last.
from impexmod.export.platforms import (  # noqa: E402, F401
    amazon,
    google,
    prestashop,
    shopify,
    woocommerce,
)
