"""The house has floors: no module imports one that imports it back, and no room reaches up.

Read from the source with ``ast`` (every import counts: top-level, inside functions and under
``TYPE_CHECKING``), so a circle fails here before anyone has to untangle it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parent.parent
PACKAGES = ("schemas", "recorder", "replay")

# room -> rooms it must never import (the lower floors know nothing of the upper ones)
READING_CORE = ("replay.replay", "replay.merge", "replay.archive", "replay.storage", "replay.meta")
FORBIDDEN = {
    "schemas": ("recorder", "replay"),
    **{core: ("replay.serving", "replay.simulator", "replay.paper", "replay.analysis", "replay.cli", "recorder") for core in READING_CORE},
    "replay.simulator": ("replay.serving", "replay.paper", "replay.analysis", "replay.cli", *READING_CORE, "recorder"),
    "replay.paper": ("replay.serving", "replay.analysis", "replay.cli", "recorder"),
    # the matching engine is pure: frames and actions in, responses and events out (no reading, no sockets)
    "replay.paper.engine": ("replay.paper.session", "replay.paper.client", "replay.paper.feeds", "replay.paper.signing", "replay.paper.streams", "replay.serving", "replay.simulator", "replay.l4", *READING_CORE, "replay.analysis", "recorder"),
    "replay.analysis": ("replay.serving", "replay.simulator", "replay.paper", "replay.cli"),
    "replay.exports": ("replay.serving", "replay.simulator", "replay.analysis", "replay.cli", "recorder"),
    "recorder": ("replay",),
}


def modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for package in PACKAGES:
        for path in (TOP / package).rglob("*.py"):
            parts = list(path.relative_to(TOP).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of ours it imports (a name imported from a package counts as its module)."""
    known = modules()

    def ours(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, (path, is_package) in known.items():
        package = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module for alias in node.names]
            for target in targets:
                resolved = ours(target)
                if resolved is not None and resolved != name:
                    graph[name].add(resolved)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each a circle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_has_no_cycle():
    assert cycles(import_graph()) == []


def _in_room(module: str, room: str) -> bool:
    return module == room or module.startswith(room + ".")


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_no_room_imports_the_rooms_above_it(room):
    graph = import_graph()
    reaching_up = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if _in_room(module, room)
        for target in targets
        for above in FORBIDDEN[room]
        if _in_room(target, above) and not _in_room(target, room)
    )
    assert reaching_up == []


def test_every_package_says_what_it_owns():
    for name, (path, is_package) in modules().items():
        if is_package:
            docstring = ast.get_docstring(ast.parse(path.read_text()))
            assert docstring and len(docstring.split()) >= 12, f"{name}/__init__.py should open with what it owns and must not do"
