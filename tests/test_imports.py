"""The import graph between ``jetatag``'s parts (subpackages and top-level modules) has no cycle.

Imports are read from the sources (every ``import`` statement, function-level ones included), so a
cycle that only closes when some function runs is found too.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from jetatag.pipeline import ROOT, module_imports

PACKAGE = "jetatag"


def part(module: str) -> str:
    """The part ``module`` belongs to: its subpackage (``jetatag.data``) or top-level module (``jetatag.io``)."""
    return ".".join(module.split(".")[:2])


def part_graph(root: Path) -> dict[str, dict[str, tuple[str, str]]]:
    """Part -> {imported part: (one importing module, the module it imports)} for the package under ``root``."""
    graph: dict[str, dict[str, tuple[str, str]]] = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        relative = path.relative_to(root)
        parts = relative.with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        edges = graph.setdefault(part(module), {})
        for imported in sorted(module_imports(module, relative, root)):
            if part(imported) not in (part(module), PACKAGE):  # the root package only holds __version__
                edges[part(imported)] = (module, imported)  # sorted: a submodule wins over its package
    return graph


def find_cycle(graph: dict[str, dict[str, tuple[str, str]]]) -> list[str] | None:
    """One cycle of parts (first part repeated at the end), or None when the graph has none."""
    state: dict[str, str] = {}  # part -> "open" while on the DFS path, "done" once fully explored
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph.get(node, {})):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def describe(cycle: list[str], graph: dict[str, dict[str, tuple[str, str]]]) -> str:
    """The cycle with one import that makes each of its steps."""
    steps = (f"{a} -> {b} ({' imports '.join(graph[a][b])})" for a, b in itertools.pairwise(cycle))
    return "; ".join(steps)


def test_no_cycle_between_subpackages() -> None:
    graph = part_graph(ROOT)
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle between parts of jetatag: {describe(cycle, graph)}"


def test_a_cycle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    sources = {
        "__init__.py": "",
        "io.py": "",
        "data/__init__.py": "",
        "data/download.py": "from jetatag.io import atomic_path\n\ndef run():\n    from jetatag.synth import mirror\n",
        "synth/__init__.py": "",
        "synth/mirror.py": "from ..data.download import run\n",
    }
    for name, text in sources.items():
        (tmp_path / PACKAGE / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / PACKAGE / name).write_text(text)
    graph = part_graph(tmp_path)
    cycle = find_cycle(graph)
    assert cycle == ["jetatag.data", "jetatag.synth", "jetatag.data"]
    assert describe(cycle, graph) == (
        "jetatag.data -> jetatag.synth (jetatag.data.download imports jetatag.synth.mirror); "
        "jetatag.synth -> jetatag.data (jetatag.synth.mirror imports jetatag.data.download)"
    )
