"""The documents package's shape: imports flow one way, no import hides inside a function.

Read from the source (no import runs), so a cycle shows here before it shows at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import docqa.documents

PACKAGE = Path(docqa.documents.__file__).parent
NAME = "docqa.documents"


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join((NAME, *parts)).removesuffix(".__init__")
        found[name] = ast.parse(path.read_text(), filename=str(path))
    return found


def _targets(node: ast.Import | ast.ImportFrom, known: set[str]) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in known}
    base = node.module or ""
    targets = set()
    for alias in node.names:
        if f"{base}.{alias.name}" in known:  # `from docqa.documents import ingest`
            targets.add(f"{base}.{alias.name}")
        elif base in known:
            targets.add(base)
    return targets


def _module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module loads (top level, and under if/try at top level)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
    inside = {id(n) for n in _function_imports(tree)}
    return [node for node in found if id(node) not in inside]


def _function_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    found = []
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            found += [n for n in ast.walk(func) if isinstance(n, ast.Import | ast.ImportFrom)]
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph = {}
    for name, tree in modules.items():
        edges = set()
        for node in _module_level_imports(tree):
            edges |= _targets(node, known)
        # Importing a submodule runs its package's __init__ first.
        graph[name] = {t for t in edges if t != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_among_the_documents_modules():
    graph = _graph()
    assert len(graph) > 15  # the walk found the package
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_only_imports_inside_functions_are_task_bodies_importing_their_module():
    tasks = f"{NAME}.tasks"
    for name, tree in _modules().items():
        for node in _function_imports(tree):
            assert name == tasks, f"{name} imports inside a function (line {node.lineno})"
            assert isinstance(node, ast.ImportFrom) and (node.module or "").startswith(NAME)


def test_pipeline_and_retention_never_call_back_upwards():
    graph = _graph()
    for lower, upper in [
        (f"{NAME}.housekeeping.retention", f"{NAME}.ingest"),
        (f"{NAME}.tasks", f"{NAME}.services"),
        (f"{NAME}.tasks", f"{NAME}.ingest"),
        (f"{NAME}.ingest", f"{NAME}.services"),
        (f"{NAME}.housekeeping.reconcile", f"{NAME}.services"),
        (f"{NAME}.housekeeping.retention", f"{NAME}.services"),
    ]:
        assert upper not in graph[lower], f"{lower} imports {upper}"


def test_the_admin_calls_services_never_tasks_or_private_functions():
    tree = _modules()[f"{NAME}.admin"]
    imported = {t for node in _module_level_imports(tree) for t in _targets(node, set(_modules()))}
    assert f"{NAME}.tasks" not in imported
    imports = [n for n in _module_level_imports(tree) if isinstance(n, ast.ImportFrom)]
    ours = [n for n in imports if (n.module or "").startswith("docqa")]
    assert not [a.name for n in ours for a in n.names if a.name.startswith("_")]
    modules = {a.asname or a.name for n in ours for a in n.names}
    private = [
        f"{node.value.id}.{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in modules
        and node.attr.startswith("_")
    ]
    assert private == []
