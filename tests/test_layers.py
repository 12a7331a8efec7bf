"""The package's layers, measured from its imports: each layer imports only from those below it
(core < training < studies, integrations < reproductions < cli), nothing outside the command
line imports it, and no two packages or modules import each other round a circle."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from vaecollapse.core.families import FAMILY_NAMES
from vaecollapse.core.models.factory import FAMILIES

from .conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "vaecollapse"
LAYERS = {"core": 0, "training": 1, "studies": 2, "integrations": 2, "reproductions": 3, "cli": 4}


def _module(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The vaecollapse modules ``path`` imports (relative imports are not used)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: a relative import"
            names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {name for name in names if name.startswith("vaecollapse.")}
    return found


def _graph() -> dict[str, set[str]]:
    return {_module(path): _imports(path) for path in PACKAGE.rglob("*.py")}


def _unit(module: str) -> str:
    """A module's package-level unit: ``vaecollapse.core.models``, ``vaecollapse.core.errors``."""
    return ".".join(module.split(".")[:3])


def _upward(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a higher layer (or of the command line from outside it)."""
    found = []
    for module, imported in graph.items():
        layer = module.split(".")[1] if module.count(".") else None
        if layer not in LAYERS:
            continue  # the package's own __init__ and __main__: the public doors
        for target in imported:
            above = target.split(".")[1]
            if LAYERS[above] > LAYERS[layer] or (above == "cli" and layer != "cli"):
                found.append(f"{module} -> {target}")
    return found


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The circles among package-level units (depth-first, each reported where it closes)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for module, imported in graph.items():
        edges[_unit(module)] |= {_unit(t) for t in imported if _unit(t) != _unit(module)}
    circles, done, path = [], set(), []

    def visit(node: str) -> None:
        if node in path:
            circles.append([*path[path.index(node) :], node])
            return
        if node in done:
            return
        path.append(node)
        for target in sorted(edges.get(node, ())):
            visit(target)
        path.pop()
        done.add(node)

    for node in sorted(edges):
        visit(node)
    return circles


def test_every_module_lives_in_a_layer() -> None:
    loose = sorted(
        m for m in _graph()
        if m.count(".") == 1 and m.split(".")[1] not in (*LAYERS, "__main__")
    )  # fmt: skip
    assert loose == [], f"modules outside a layer: {loose}"


def test_each_layer_imports_only_from_below() -> None:
    assert _upward(_graph()) == []


def test_no_circle_between_packages_or_modules() -> None:
    assert _circles(_graph()) == []


def test_the_measures_catch_an_upward_import_and_a_circle() -> None:
    graph = _graph()
    graph["vaecollapse.core.errors"] = {"vaecollapse.training.trainer"}
    graph["vaecollapse.training.optimizers"] = {"vaecollapse.cli.common"}
    assert sorted(_upward(graph)) == [
        "vaecollapse.core.errors -> vaecollapse.training.trainer",
        "vaecollapse.training.optimizers -> vaecollapse.cli.common",
    ]
    graph["vaecollapse.core.fileio"] = {"vaecollapse.core.errors"}
    graph["vaecollapse.core.errors"] = {"vaecollapse.core.fileio"}
    assert ["vaecollapse.core.errors", "vaecollapse.core.fileio", "vaecollapse.core.errors"] in (
        _circles(graph)
    )


def _family_tests(source: str) -> list[int]:
    """The lines that tell model families apart by name: a comparison with a family's name, or
    a membership test in names."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        for operand in (node.left, *node.comparators):
            values = (
                operand.elts if isinstance(operand, (ast.Tuple, ast.List, ast.Set)) else [operand]
            )
            if any(isinstance(v, ast.Constant) and v.value in FAMILY_NAMES for v in values):
                found.append(node.lineno)
                break
    return found


def test_families_are_told_apart_only_by_the_registry() -> None:
    found = [
        f"{path.relative_to(REPO_ROOT)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "core" / "families.py"
        for line in _family_tests(path.read_text(encoding="utf-8"))
    ]
    assert found == []
    assert _family_tests('if model == "mhvae" or name in ("vae", "x"):\n    pass\n') == [1, 1]
    assert _family_tests('if family.hierarchical and name == "z2":\n    pass\n') == []


def test_the_registry_names_every_buildable_family() -> None:
    assert tuple(FAMILIES) == FAMILY_NAMES
    assert all(config.family == name for name, (_, config) in FAMILIES.items())
