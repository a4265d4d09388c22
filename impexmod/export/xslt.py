"""XSLT stylesheets applied to the native XML, sandboxed.

(Foundation stub: the XSLT writer lands with the stylesheet work.)
"""

from __future__ import annotations


def resolve_stylesheet(name: str):
    """The stylesheet of that name (shipped in xslt/ or uploaded), or LookupError."""
    raise LookupError(f"no stylesheet named {name!r}")


class XsltWriter:
    """Applies a stylesheet to the native XML of the feed."""
