"""The text editor tool: commands, confinement to the worktree, and size bounds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.editor import MAX_VIEW_BYTES, MAX_WRITE_BYTES, EditorTool


@pytest.fixture
def root(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "mod.py").write_text("a = 1\nb = 2\nc = 3\n")
    (repo / ".git").mkdir()
    (repo / ".git" / "config").write_text("[core]\n")
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "ci.yml").write_text("on: push\n")
    return repo


@pytest.fixture
def editor(root: Path) -> EditorTool:
    return EditorTool(root)


def test_view_file_numbers_lines(editor: EditorTool) -> None:
    result = editor.run({"command": "view", "path": "pkg/mod.py"})
    assert not result.is_error
    assert "     1\ta = 1" in result.text
    assert "     3\tc = 3" in result.text


def test_view_range_with_minus_one_runs_to_the_end(editor: EditorTool) -> None:
    result = editor.run({"command": "view", "path": "pkg/mod.py", "view_range": [2, -1]})
    assert not result.is_error
    assert "a = 1" not in result.text
    assert "     2\tb = 2" in result.text
    assert "     3\tc = 3" in result.text


def test_view_range_out_of_bounds_is_a_tool_error(editor: EditorTool) -> None:
    result = editor.run({"command": "view", "path": "pkg/mod.py", "view_range": [9, 10]})
    assert result.is_error
    assert "between 1 and 3" in result.text


def test_view_directory_lists_two_levels_without_git(editor: EditorTool, root: Path) -> None:
    (root / "pkg" / "deep" / "deeper").mkdir(parents=True)
    (root / "pkg" / "deep" / "deeper" / "x.py").write_text("")
    result = editor.run({"command": "view", "path": "."})
    assert not result.is_error
    lines = result.text.splitlines()
    assert "pkg/" in lines
    assert "pkg/mod.py" in lines
    assert "pkg/deep/" in lines
    assert not any("deeper" in line for line in lines)
    assert not any(line.startswith(".git/") or line == ".git" for line in lines)


def test_view_of_a_large_file_needs_a_range(editor: EditorTool, root: Path) -> None:
    (root / "big.txt").write_text("x" * 99 + "\n" * 1 + ("y" * 99 + "\n") * (MAX_VIEW_BYTES // 100))
    refused = editor.run({"command": "view", "path": "big.txt"})
    assert refused.is_error
    assert "view_range" in refused.text
    ranged = editor.run({"command": "view", "path": "big.txt", "view_range": [1, 2]})
    assert not ranged.is_error


def test_create_makes_parents_and_records_the_change(editor: EditorTool, root: Path) -> None:
    result = editor.run({"command": "create", "path": "new/dir/f.py", "file_text": "x = 1\n"})
    assert not result.is_error
    assert (root / "new" / "dir" / "f.py").read_text() == "x = 1\n"
    assert editor.files_changed == ("new/dir/f.py",)


def test_create_larger_than_the_bound_is_refused(editor: EditorTool, root: Path) -> None:
    result = editor.run(
        {"command": "create", "path": "huge.txt", "file_text": "x" * (MAX_WRITE_BYTES + 1)}
    )
    assert result.is_error
    assert not (root / "huge.txt").exists()
    assert editor.files_changed == ()


def test_str_replace_exactly_once(editor: EditorTool, root: Path) -> None:
    result = editor.run(
        {"command": "str_replace", "path": "pkg/mod.py", "old_str": "b = 2", "new_str": "b = 20"}
    )
    assert not result.is_error
    assert (root / "pkg" / "mod.py").read_text() == "a = 1\nb = 20\nc = 3\n"
    assert editor.files_changed == ("pkg/mod.py",)


def test_str_replace_without_new_str_deletes(editor: EditorTool, root: Path) -> None:
    result = editor.run({"command": "str_replace", "path": "pkg/mod.py", "old_str": "b = 2\n"})
    assert not result.is_error
    assert (root / "pkg" / "mod.py").read_text() == "a = 1\nc = 3\n"


def test_str_replace_with_no_match_changes_nothing(editor: EditorTool, root: Path) -> None:
    result = editor.run(
        {"command": "str_replace", "path": "pkg/mod.py", "old_str": "zzz", "new_str": "y"}
    )
    assert result.is_error
    assert "did not appear" in result.text
    assert (root / "pkg" / "mod.py").read_text() == "a = 1\nb = 2\nc = 3\n"
    assert editor.files_changed == ()


def test_str_replace_with_two_matches_says_how_many(editor: EditorTool, root: Path) -> None:
    result = editor.run(
        {"command": "str_replace", "path": "pkg/mod.py", "old_str": " = ", "new_str": "="}
    )
    assert result.is_error
    assert "matched 3 times" in result.text
    (root / "pkg" / "mod.py").write_text("x\nx\n")
    result = editor.run({"command": "str_replace", "path": "pkg/mod.py", "old_str": "x"})
    assert "matched 2 times" in result.text
    assert (root / "pkg" / "mod.py").read_text() == "x\nx\n"


@pytest.mark.parametrize("key", ["insert_text", "new_str"])
def test_insert_accepts_insert_text_and_new_str(editor: EditorTool, root: Path, key: str) -> None:
    result = editor.run(
        {"command": "insert", "path": "pkg/mod.py", "insert_line": 1, key: "inserted = True"}
    )
    assert not result.is_error, result.text
    assert (root / "pkg" / "mod.py").read_text() == "a = 1\ninserted = True\nb = 2\nc = 3\n"


def test_insert_at_top_and_end(editor: EditorTool, root: Path) -> None:
    assert not editor.run(
        {"command": "insert", "path": "pkg/mod.py", "insert_line": 0, "insert_text": "# top\n"}
    ).is_error
    assert not editor.run(
        {"command": "insert", "path": "pkg/mod.py", "insert_line": 4, "insert_text": "# end"}
    ).is_error
    assert (root / "pkg" / "mod.py").read_text() == "# top\na = 1\nb = 2\nc = 3\n# end\n"


def test_insert_line_out_of_range_is_a_tool_error(editor: EditorTool) -> None:
    result = editor.run(
        {"command": "insert", "path": "pkg/mod.py", "insert_line": 7, "insert_text": "x"}
    )
    assert result.is_error
    assert "between 0 and 3" in result.text


def test_absolute_path_inside_root_is_made_relative(editor: EditorTool, root: Path) -> None:
    result = editor.run({"command": "view", "path": str(root / "pkg/mod.py")})
    assert not result.is_error
    assert "a = 1" in result.text
    created = editor.run({"command": "create", "path": str(root / "new.py"), "file_text": "x\n"})
    assert not created.is_error
    assert editor.files_changed == ("new.py",)


def test_a_leading_slash_is_refused_not_mapped_into_the_repo(
    editor: EditorTool, root: Path
) -> None:
    view = editor.run({"command": "view", "path": "/pkg/mod.py"})
    assert view.is_error
    assert "a = 1" not in view.text
    assert "relative to the repository root" in view.text
    assert "src/app.py" in view.text


def test_an_absolute_path_naming_the_repo_folder_creates_nothing(
    editor: EditorTool, root: Path
) -> None:
    result = editor.run({"command": "create", "path": "/repo/app.py", "file_text": "x = 1\n"})
    assert result.is_error
    assert "relative to the repository root" in result.text
    assert not (root / "repo").exists()
    assert not (root / "app.py").exists()
    assert editor.files_changed == ()


@pytest.mark.parametrize(
    "path", ["../outside.txt", "pkg/../../outside.txt", ".git/config", "pkg/../.git/config"]
)
def test_escapes_and_git_are_refused_for_reads_and_writes(
    editor: EditorTool, root: Path, path: str
) -> None:
    (root.parent / "outside.txt").write_text("secret outside\n")
    view = editor.run({"command": "view", "path": path})
    assert view.is_error
    assert "secret outside" not in view.text
    assert "[core]" not in view.text
    write = editor.run({"command": "create", "path": path, "file_text": "pwned\n"})
    assert write.is_error
    assert (root.parent / "outside.txt").read_text() == "secret outside\n"
    assert (root / ".git" / "config").read_text() == "[core]\n"
    assert editor.files_changed == ()


def test_etc_passwd_never_reaches_the_host_file(editor: EditorTool, root: Path) -> None:
    view = editor.run({"command": "view", "path": "/etc/passwd"})
    assert view.is_error
    assert "root:" not in view.text
    assert "relative to the repository root" in view.text
    replace = editor.run(
        {"command": "str_replace", "path": "/etc/passwd", "old_str": "root", "new_str": "x"}
    )
    assert replace.is_error
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("in repo\n")
    # Not even a same-named file inside the repository answers to an absolute path.
    inside = editor.run({"command": "view", "path": "/etc/passwd"})
    assert inside.is_error
    assert "in repo" not in inside.text
    assert editor.run({"command": "create", "path": "/etc/passwd", "file_text": "x"}).is_error
    assert (root / "etc" / "passwd").read_text() == "in repo\n"
    assert editor.files_changed == ()


def test_symlink_out_of_the_root_is_refused(editor: EditorTool, root: Path) -> None:
    outside = root.parent / "elsewhere"
    outside.mkdir()
    (outside / "target.txt").write_text("outside\n")
    os.symlink(outside / "target.txt", root / "link.txt")
    os.symlink(outside, root / "linkdir")
    assert editor.run({"command": "view", "path": "link.txt"}).is_error
    assert editor.run({"command": "create", "path": "linkdir/new.py", "file_text": "x"}).is_error
    assert editor.run(
        {"command": "str_replace", "path": "link.txt", "old_str": "outside", "new_str": "in"}
    ).is_error
    assert (outside / "target.txt").read_text() == "outside\n"
    assert not (outside / "new.py").exists()


def test_symlink_into_git_is_refused(editor: EditorTool, root: Path) -> None:
    os.symlink(root / ".git" / "config", root / "cfg")
    result = editor.run({"command": "create", "path": "cfg", "file_text": "x"})
    assert result.is_error
    assert (root / ".git" / "config").read_text() == "[core]\n"


@pytest.mark.parametrize("path", [".github/workflows/ci.yml", ".GitHub/Workflows/new.yml"])
def test_protected_paths_are_refused(editor: EditorTool, root: Path, path: str) -> None:
    result = editor.run({"command": "create", "path": path, "file_text": "on: pull_request\n"})
    assert result.is_error
    assert "protected" in result.text
    assert (root / ".github" / "workflows" / "ci.yml").read_text() == "on: push\n"


def test_refused_protected_edits_are_remembered_and_views_are_not(
    editor: EditorTool,
) -> None:
    editor.run({"command": "view", "path": ".github/workflows/ci.yml"})
    editor.run({"command": "str_replace", "path": ".github/workflows/ci.yml", "old_str": "push",
                "new_str": "pull_request"})  # fmt: skip
    editor.run({"command": "create", "path": "README.md", "file_text": "# x\n"})
    assert editor.protected_refused == (".github/workflows/ci.yml",)
    assert editor.files_changed == ("README.md",)


def test_custom_protected_paths(root: Path) -> None:
    editor = EditorTool(root, protected_paths=("pkg/",))
    assert editor.run({"command": "create", "path": "pkg/x.py", "file_text": ""}).is_error
    assert not editor.run({"command": "create", "path": "pkgs.py", "file_text": ""}).is_error


@pytest.mark.parametrize(
    "tool_input",
    [
        {},
        {"command": "delete", "path": "pkg/mod.py"},
        {"command": "view"},
        {"command": "view", "path": 3},
        {"command": "create", "path": "a.py"},
        {"command": "create", "path": "a.py", "file_text": ["x"]},
        {"command": "str_replace", "path": "pkg/mod.py", "old_str": ""},
        {"command": "str_replace", "path": "missing.py", "old_str": "a"},
        {"command": "insert", "path": "pkg/mod.py", "insert_line": "two", "insert_text": "x"},
        {"command": "insert", "path": "pkg/mod.py", "insert_line": 1},
        {"command": "view", "path": "pkg/mod.py", "view_range": "1-2"},
        {"command": "view", "path": "pkg/mod.py", "view_range": [True, "x"]},
        {"command": "create", "path": ".", "file_text": "x"},
        {"command": "view", "path": "bad\x00name"},
    ],
)
def test_bad_input_is_a_tool_error_never_an_exception(
    editor: EditorTool, tool_input: dict[str, object]
) -> None:
    result = editor.run(tool_input)
    assert result.is_error
    assert result.text
    assert editor.files_changed == ()


def test_binary_file_is_a_tool_error(editor: EditorTool, root: Path) -> None:
    (root / "blob.bin").write_bytes(b"\xff\xfe\x00binary")
    result = editor.run({"command": "view", "path": "blob.bin"})
    assert result.is_error
    assert "UTF-8" in result.text


def test_rewriting_identical_content_is_not_a_change(editor: EditorTool) -> None:
    editor.run({"command": "create", "path": "pkg/mod.py", "file_text": "a = 1\nb = 2\nc = 3\n"})
    assert editor.files_changed == ()
