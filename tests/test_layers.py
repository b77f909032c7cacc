"""The layers: pipeline/ and handlers/ never import bot/, not even for types; no import circles."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "pipeline", "guardrails")


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """Every module named by an import that runs, skipping `if TYPE_CHECKING:` bodies."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _modules(package: str) -> dict[str, Path]:
    return {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _all_modules() -> dict[str, Path]:
    return {name: path for package in PACKAGES for name, path in _modules(package).items()}


def _own_module(name: str, known: dict[str, Path]) -> str | None:
    """The project module an imported name lives in (`a.b.c` may be `a.b`'s attribute c)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _every_import(tree: ast.AST) -> list[tuple[int, str]]:
    """Every module named by an import, `if TYPE_CHECKING:` bodies included."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def test_pipeline_and_handlers_never_import_bot() -> None:
    """Not even for a type annotation: they name what they need as pipeline/ports.py's
    Protocols, which bot/'s adapters fit (mypy checks it where bot/ builds the Context)."""
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for package in ("pipeline", "handlers")
        for path in _modules(package).values()
        for line, name in _every_import(ast.parse(path.read_text(encoding="utf-8")))
        if name == "bot" or name.startswith("bot.")
    ]
    assert offending == []


def _import_graph(*, with_type_checking: bool) -> dict[str, set[str]]:
    known = _all_modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if with_type_checking:
            names = [
                f"{node.module}.{alias.name}" if isinstance(node, ast.ImportFrom) else alias.name
                for node in ast.walk(tree)
                if isinstance(node, ast.Import | ast.ImportFrom)
                and not (isinstance(node, ast.ImportFrom) and (node.level or not node.module))
                for alias in node.names
            ]
        else:
            names = [imported for _, imported in _runtime_imports(tree)]
        targets = {_own_module(imported, known) for imported in names}
        graph[name] = {target for target in targets if target not in (None, name)}  # type: ignore[misc]
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles() -> None:
    for with_type_checking in (False, True):
        assert _cycles(_import_graph(with_type_checking=with_type_checking)) == []


def test_the_broken_circles_stay_broken() -> None:
    circles = _cycles(_import_graph(with_type_checking=True))
    assert ["bot.github", "bot.github_repo"] not in circles
    assert ["pipeline.publish", "pipeline.status"] not in circles
    assert ["pipeline.budget", "pipeline.run"] not in circles
