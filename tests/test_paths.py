"""One protected-path rule serves the editor, the commit and the reviewer."""

from __future__ import annotations

from pathlib import Path

import pytest

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
        (".github/dependabot.yml", False),
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
