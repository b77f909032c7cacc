"""The layers: pipeline/ and handlers/ never import bot/ at run time; no import circles."""

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


def test_pipeline_and_handlers_never_import_bot_at_run_time() -> None:
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for package in ("pipeline", "handlers")
        for path in _modules(package).values()
        for line, name in _runtime_imports(ast.parse(path.read_text(encoding="utf-8")))
        if name == "bot" or name.startswith("bot.")
    ]
    assert offending == []
