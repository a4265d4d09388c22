"""The package's layers: a module imports from its own layer or below, never from above.

A layer above is reached only through a registration (a pipeline registers its kinds with
impexmod.runs.lifecycle; a spec names its loader by a dotted string).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "impexmod"

# Lowest first. A module may import its own layer and every layer listed before it.
LAYERS = [
    {"config", "extensions", "messages", "models", "schema", "translations", "migrations", "xslt"},
    {"entities", "catalog", "factories"},
    {"runs"},
    {"export", "importing", "delivery", "orders"},
    {"dispatch"},
    {"feeds", "admin", "cli", "serving", "__init__"},
]

# (importing module, imported package): upward imports allowed. None is left: a layer above
# is reached through a registration (pipelines and the run starter with runs.lifecycle, loaders
# and row builders by dotted names, RQ jobs by the names of the worker's entry points).
CLIMBING: set[tuple[str, str]] = set()


def _layer(package: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if package in names)


def _imports() -> set[tuple[str, str]]:
    """(module, impexmod subpackage) for every import of a module of the package."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        module = ".".join(parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
                if node.module == "impexmod":
                    names = [f"impexmod.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                bits = name.split(".")
                if bits[0] == "impexmod" and len(bits) > 1:
                    target = (
                        bits[1]
                        if (PACKAGE / bits[1]).exists() or (PACKAGE / f"{bits[1]}.py").exists()
                        else "__init__"
                    )
                    found.add((module, target))
    return found


def _own(module: str) -> str:
    bits = module.split(".")
    return bits[1] if len(bits) > 1 else "__init__"


def test_every_package_has_a_layer():
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    packages |= {p.stem for p in PACKAGE.glob("*.py")}
    assert packages <= set().union(*LAYERS), packages - set().union(*LAYERS)


def test_no_module_imports_from_a_layer_above_it():
    climbing = {
        (module, target) for module, target in _imports() if _layer(target) > _layer(_own(module))
    }
    assert climbing - CLIMBING == set(), "new imports from a layer above"
    assert CLIMBING - climbing == set(), "gone: remove them from CLIMBING"
