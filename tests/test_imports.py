"""Every module imports on its own, data flows one way, and no import hides in a function.

The house rule (README, "How it works"): imports sit at the top of a module; an
import inside a function is how a cycle gets dodged instead of removed. The one exception is
a Celery task body in a `tasks.py` importing its own package's modules.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "docqa"

# Imports inside functions that are there for a reason, not to dodge a cycle:
# (path relative to the repository, function, imported module).
ALLOWED_FUNCTION_IMPORTS = {
    # The emulator's format readers load their (heavy) parsing library only when a file of
    # that format arrives, so starting the emulator, or importing it in a test, stays cheap.
    ("docqa/emulator/extraction.py", "_pdf", "pypdf"),
    ("docqa/emulator/extraction.py", "_docx", "docx"),
    ("docqa/emulator/extraction.py", "_xlsx", "openpyxl"),
    ("docqa/emulator/extraction.py", "_pptx", "pptx"),
    ("docqa/emulator/extraction.py", "_image", "PIL"),
}


def _sources() -> list[Path]:
    return sorted(
        path
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.relative_to(PACKAGE).parts and "__pycache__" not in path.parts
    )


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(path): path for path in _sources()}


def _resolve(name: str) -> str | None:
    """The docqa module that `name` (a module, or a name inside one) lives in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imported(node: ast.Import | ast.ImportFrom, module: str, path: Path) -> list[str]:
    """What an import statement imports: module names, with `from a import b` as `a.b`
    when `b` is a module of docqa, and relative imports made absolute."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    names = []
    for alias in node.names:
        target = _resolve(f"{base}.{alias.name}") if base.startswith("docqa") else None
        names.append(target if target and target != _resolve(base) else base)
    return names


def _is_task(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Decorated with `@shared_task`, `@app.task` or the like (called or not)."""
    for decorator in function.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name in {"task", "shared_task"}:
            return True
    return False


def _function_imports() -> set[tuple[str, str, str]]:
    """(path, function, module) for every import inside a function body, bar the exception."""
    found = set()
    for module, path in MODULES.items():
        relative = path.relative_to(ROOT).as_posix()
        package = module.rpartition(".")[0]
        for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            task_body = path.name == "tasks.py" and _is_task(function)
            for node in ast.walk(function):
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                for name in _imported(node, module, path):
                    if task_body and (name == package or name.startswith(package + ".")):
                        continue  # the allowed exception: a task body importing its service
                    found.add((relative, function.name, name))
    return found


def _is_type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports run when the module is imported: not in functions, not under TYPE_CHECKING."""
    found = []
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) or _is_type_checking(node):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        pending.extend(ast.iter_child_nodes(node))
    return found


def _import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        edges = set()
        for node in _module_level_imports(ast.parse(path.read_text(encoding="utf-8"))):
            for name in _imported(node, module, path):
                target = _resolve(name) if name.startswith("docqa") else None
                if target and target != module:
                    edges.add(target)
        graph[module] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _packages() -> set[str]:
    return {_module_name(path) for path in MODULES.values() if path.name == "__init__.py"}


def _top_level_packages() -> list[str]:
    """`docqa` (for its own modules) and each of its subpackages."""
    packages = _packages()
    return sorted(
        {top if (top := ".".join(name.split(".")[:2])) in packages else "docqa" for name in MODULES}
    )


def _modules_of(package: str) -> list[str]:
    if package == "docqa":
        return sorted(name for name in MODULES if name.count(".") == 1 and name not in _packages())
    return sorted(name for name in MODULES if name == package or name.startswith(package + "."))


def test_the_checks_see_the_tree():
    """A walker that found nothing would pass everything."""
    assert {"docqa.moonshot.client", "docqa.chat.services", "docqa.settings"} <= set(MODULES)
    graph = _import_graph()
    assert "docqa.moonshot.transport" in graph["docqa.moonshot.client"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]
    tree = ast.parse("def f():\n    from docqa.moonshot import client\n")
    function = tree.body[0]
    assert _imported(function.body[0], "docqa.x", PACKAGE / "x.py") == ["docqa.moonshot.client"]


def test_no_import_inside_a_function():
    found = _function_imports()
    unexpected = sorted(found - ALLOWED_FUNCTION_IMPORTS)
    assert not unexpected, (
        "imports inside function bodies (move them to the top of the module; if that makes "
        f"a cycle, remove the cycle): {unexpected}"
    )


def test_allowlist_is_not_stale():
    """An exception that is no longer needed leaves the list."""
    found = _function_imports()
    stale = sorted(ALLOWED_FUNCTION_IMPORTS - found)
    assert not stale, f"no longer found, remove from the allowlist: {stale}"


def test_no_import_cycle_between_modules():
    cycles = [sorted(c) for c in _cycles(_import_graph())]
    assert not cycles, f"module-level import cycles: {cycles}"


@pytest.mark.parametrize("package", _top_level_packages())
def test_every_module_imports_in_a_fresh_interpreter(package):
    """Each package's modules, imported first thing after Django starts: a cycle that only
    works in one import order fails here rather than in production."""
    modules = _modules_of(package)
    assert modules
    script = (
        "import importlib, sys\n"
        "import django\n"
        "django.setup()\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
    )
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "docqa.settings"}
    result = subprocess.run(
        [sys.executable, "-c", script, *modules],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
