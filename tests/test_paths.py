"""One protected-path rule serves the editor, the commit and the reviewer."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import ReviewConfig
from pipeline.editor import EditorTool
from pipeline.errors import WorkspaceError
from pipeline.paths import is_protected
from pipeline.workspace import Worktree
from tests.doubles.git_http import create_bare_repo

PROTECTED = (".github/workflows/", "secrets/*.pem", "migrations")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".github/workflows/ci.yml", True),
        (".GitHub/Workflows/ci.yml", True),  # case-insensitive disks
        (".github/workflows", True),
        ("secrets/prod.pem", True),  # a glob entry
        ("migrations/0001.py", True),
        ("migrations_old/0001.py", True),  # entries are prefixes too
        (".github/dependabot.yml", True),  # all of .github/, whatever the list says
        ("docs/.github.md", False),
        ("src/secrets.py", False),
    ],
)
def test_the_rule(path: str, expected: bool) -> None:
    assert is_protected(path, PROTECTED) is expected


def test_the_editor_refuses_a_glob_protected_path(tmp_path: Path) -> None:
    editor = EditorTool(tmp_path, PROTECTED)
    result = editor.run({"command": "create", "path": "secrets/prod.pem", "file_text": "k"})
    assert result.is_error and "protected" in result.text
    assert not (tmp_path / "secrets").exists()


def test_a_commit_refuses_a_glob_protected_path(tmp_path: Path) -> None:
    import pygit2

    bare = tmp_path / "origin.git"
    head = create_bare_repo(bare, {"a.py": "x = 1\n"})
    pygit2.clone_repository(str(bare), str(tmp_path / "wt"))
    tree = Worktree(tmp_path / "wt", "main", head)
    (tmp_path / "wt" / "secrets").mkdir()
    (tmp_path / "wt" / "secrets" / "prod.pem").write_text("key")
    with pytest.raises(WorkspaceError, match=r"secrets/prod\.pem"):
        tree.commit_all("m", "a", "a@b", PROTECTED)


@pytest.mark.parametrize(
    "path",
    [
        ".github/actions/x/action.yml",  # composite actions run inside the existing workflows
        ".github/CODEOWNERS",
        ".github/dependabot.yml",
        ".github/workflows/ci.yml",
        ".GitHub/Actions/x/action.yml",
    ],
)
def test_the_editor_refuses_all_of_dot_github_by_default(tmp_path: Path, path: str) -> None:
    editor = EditorTool(tmp_path, ReviewConfig().protected_paths)
    result = editor.run({"command": "create", "path": path, "file_text": "runs: {using: node20}"})
    assert result.is_error and "protected" in result.text
    assert not (tmp_path / path).exists()


def test_dot_github_stays_protected_under_an_operators_own_list(tmp_path: Path) -> None:
    # The operator's and the repository's lists add to .github/, never replace it.
    editor = EditorTool(tmp_path, ("migrations/",))
    result = editor.run(
        {"command": "create", "path": ".github/actions/x/action.yml", "file_text": "x"}
    )
    assert result.is_error and "protected" in result.text
    assert is_protected(".github/dependabot.yml", ())
    assert not is_protected("docs/github.md", ())
