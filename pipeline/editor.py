"""The text editor tool the code-generation model drives, confined to one worktree."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pipeline.paths import is_protected

MAX_VIEW_BYTES = 256 * 1024
MAX_WRITE_BYTES = 1024 * 1024
MAX_LISTING_ENTRIES = 1000
SNIPPET_CONTEXT = 3
COMMANDS = ("view", "create", "str_replace", "insert")


@dataclass(frozen=True)
class EditorResult:
    text: str
    is_error: bool = False


class _Refused(Exception):
    """Bad input from the model: reported back to it as a tool error, never raised further."""


class _Protected(_Refused):
    def __init__(self, raw: str, rel: str) -> None:
        super().__init__(f"{raw} is a protected path; changes there are not allowed")
        self.rel = rel


def _numbered(lines: Sequence[str], first: int) -> str:
    return "\n".join(f"{n:6}\t{line}" for n, line in enumerate(lines, start=first))


def _as_int(value: object, name: str) -> int:
    # Models on OpenAI-compatible servers sometimes send numbers as strings.
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    elif isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _Refused(f"`{name}` must be an integer, got {value!r}")


def _as_text(tool_input: Mapping[str, object], name: str, default: str | None = None) -> str:
    value = tool_input.get(name, default)
    if value is None:
        raise _Refused(f"`{name}` is required for this command")
    if not isinstance(value, str):
        raise _Refused(f"`{name}` must be a string")
    return value


class EditorTool:
    """Executes view/create/str_replace/insert inside `root`, refusing paths outside it."""

    def __init__(self, root: Path, protected_paths: Sequence[str] = ()) -> None:
        self.root = root.resolve()
        self._roots = {str(root.absolute()), str(self.root)}
        self._protected = tuple(protected_paths)
        self._changed: set[str] = set()
        self._refused: set[str] = set()
        self._commands: dict[str, Callable[[Mapping[str, object], Path, str], str]] = {
            "view": self._view,
            "create": self._create,
            "str_replace": self._str_replace,
            "insert": self._insert,
        }

    @property
    def files_changed(self) -> tuple[str, ...]:
        return tuple(sorted(self._changed))

    @property
    def protected_refused(self) -> tuple[str, ...]:
        """Protected paths the model tried to change: the humans must hear it was not done."""
        return tuple(sorted(self._refused))

    def run(self, tool_input: Mapping[str, object]) -> EditorResult:
        command = tool_input.get("command")
        handler = self._commands.get(command) if isinstance(command, str) else None
        if handler is None:
            return EditorResult(
                f"Unknown command {command!r}; use one of: {', '.join(COMMANDS)}.", True
            )
        try:
            target, rel = self._resolve(tool_input.get("path"))
            return EditorResult(handler(tool_input, target, rel))
        except _Protected as refusal:
            if command != "view":
                self._refused.add(refusal.rel)
            return EditorResult(f"Error: {refusal}", True)
        except _Refused as refusal:
            return EditorResult(f"Error: {refusal}", True)
        except UnicodeDecodeError:
            return EditorResult("Error: the file is not UTF-8 text; it cannot be edited.", True)
        except OSError as err:
            return EditorResult(f"Error: {command} failed: {err.strerror or err}", True)

    def _resolve(self, raw: object) -> tuple[Path, str]:
        if not isinstance(raw, str) or not raw.strip():
            raise _Refused("`path` is required and must be a non-empty string")
        if "\x00" in raw:
            raise _Refused("`path` contains a NUL byte")
        path = Path(raw.strip())
        if path.is_absolute():
            # Only an absolute path into the worktree is accepted; "/pkg/a.py" is refused, not
            # guessed at: "/repo/a.py" would otherwise land in a stray root/repo/ folder.
            path = self._strip_root(path, raw)
        self._check_allowed(PurePosixPath(path.as_posix()), raw)
        target = (self.root / path).resolve()
        if not target.is_relative_to(self.root):
            raise _Refused(f"{raw} is outside the repository; paths are relative to its root")
        rel = target.relative_to(self.root).as_posix()
        self._check_allowed(PurePosixPath(rel), raw)
        return target, "." if rel == "." else rel

    def _strip_root(self, path: Path, raw: str) -> Path:
        text = str(path)
        for root in self._roots:
            if text == root or text.startswith(root + "/"):
                return Path(text[len(root) :].lstrip("/") or ".")
        raise _Refused(
            f"{raw} is an absolute path outside the repository; use a path relative to the "
            "repository root, such as `src/app.py`"
        )

    def _check_allowed(self, rel: PurePosixPath, raw: str) -> None:
        parts = [p.casefold() for p in rel.parts]
        if ".git" in parts:
            raise _Refused(f"{raw} is inside .git, which the editor may not touch")
        if is_protected("/".join(rel.parts), self._protected):
            raise _Protected(raw, "/".join(rel.parts))

    def _view(self, tool_input: Mapping[str, object], target: Path, rel: str) -> str:
        if target.is_dir():
            return self._listing(target, rel)
        if not target.is_file():
            raise _Refused(f"{rel} does not exist in the repository")
        view_range = tool_input.get("view_range")
        if view_range is None and target.stat().st_size > MAX_VIEW_BYTES:
            raise _Refused(
                f"{rel} is larger than {MAX_VIEW_BYTES // 1024} KiB; view it with a view_range"
            )
        lines = target.read_bytes().decode("utf-8").splitlines()
        if not lines:
            return f"{rel} is empty."
        if view_range is None:
            return f"Contents of {rel}:\n{_numbered(lines, 1)}"
        start, end = self._view_bounds(view_range, len(lines))
        shown = _numbered(lines[start - 1 : end], start)
        if len(shown.encode()) > MAX_VIEW_BYTES:
            raise _Refused("that range is too large to show; ask for fewer lines")
        return f"Lines {start}-{end} of {rel} ({len(lines)} lines):\n{shown}"

    @staticmethod
    def _view_bounds(view_range: object, count: int) -> tuple[int, int]:
        if not isinstance(view_range, list | tuple) or len(view_range) != 2:
            raise _Refused("`view_range` must be two integers [start, end]; end -1 means the end")
        start = _as_int(view_range[0], "view_range[0]")
        end = _as_int(view_range[1], "view_range[1]")
        end = count if end == -1 else min(end, count)
        if not 1 <= start <= count:
            raise _Refused(f"view_range start {start} is not between 1 and {count}")
        if end < start:
            raise _Refused(f"view_range end {end} is before its start {start}")
        return start, end

    def _listing(self, target: Path, rel: str) -> str:
        entries: list[str] = []
        for child in sorted(target.iterdir()):
            if child.name == ".git":
                continue
            entries.append(child.relative_to(target).as_posix() + ("/" if child.is_dir() else ""))
            if child.is_dir() and not child.is_symlink():
                entries.extend(
                    grand.relative_to(target).as_posix() + ("/" if grand.is_dir() else "")
                    for grand in sorted(child.iterdir())
                    if grand.name != ".git"
                )
        more = len(entries) - MAX_LISTING_ENTRIES
        shown = "\n".join(entries[:MAX_LISTING_ENTRIES])
        tail = f"\n... and {more} more entries" if more > 0 else ""
        return f"Files and directories in {rel}, two levels deep:\n{shown}{tail}"

    def _create(self, tool_input: Mapping[str, object], target: Path, rel: str) -> str:
        text = _as_text(tool_input, "file_text")
        if target.is_dir():
            raise _Refused(f"{rel} is a directory")
        existed = target.exists()
        target.parent.mkdir(parents=True, exist_ok=True)
        self._write(target, rel, text)
        return f"{'Overwrote' if existed else 'Created'} {rel} ({len(text.splitlines())} lines)."

    def _str_replace(self, tool_input: Mapping[str, object], target: Path, rel: str) -> str:
        old = _as_text(tool_input, "old_str")
        new = _as_text(tool_input, "new_str", default="")
        if not old:
            raise _Refused("`old_str` must not be empty")
        content = self._read_for_edit(target, rel)
        count = content.count(old)
        if count == 0:
            raise _Refused(
                f"no replacement was performed: old_str did not appear verbatim in {rel}. "
                "Check whitespace and indentation, or view the file first."
            )
        if count > 1:
            raise _Refused(
                f"no replacement was performed: old_str matched {count} times in {rel}. "
                "Include more surrounding lines so it matches exactly once."
            )
        at = content.index(old)
        updated = content[:at] + new + content[at + len(old) :]
        self._write(target, rel, updated)
        first = content[:at].count("\n") + 1
        snippet = self._snippet(updated, first, new.count("\n") + 1)
        return f"Edited {rel}.\n{snippet}"

    def _insert(self, tool_input: Mapping[str, object], target: Path, rel: str) -> str:
        # Models send `insert_text`; the tool's docs say `new_str` (anthropic-sdk-python#1155).
        name = "insert_text" if tool_input.get("insert_text") is not None else "new_str"
        text = _as_text(tool_input, name)
        line = _as_int(tool_input.get("insert_line"), "insert_line")
        content = self._read_for_edit(target, rel)
        lines = content.splitlines(keepends=True)
        if not 0 <= line <= len(lines):
            raise _Refused(f"insert_line {line} is not between 0 and {len(lines)} for {rel}")
        if line == len(lines) and lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.insert(line, text if text.endswith("\n") else text + "\n")
        updated = "".join(lines)
        self._write(target, rel, updated)
        snippet = self._snippet(updated, line + 1, max(text.count("\n"), 1))
        return f"Inserted after line {line} of {rel}.\n{snippet}"

    def _read_for_edit(self, target: Path, rel: str) -> str:
        if not target.is_file():
            raise _Refused(f"{rel} does not exist; use `create` to make a new file")
        if target.stat().st_size > MAX_WRITE_BYTES:
            raise _Refused(
                f"{rel} is larger than {MAX_WRITE_BYTES // 1024} KiB; it cannot be edited"
            )
        return target.read_bytes().decode("utf-8")

    def _write(self, target: Path, rel: str, text: str) -> None:
        data = text.encode("utf-8")
        if len(data) > MAX_WRITE_BYTES:
            raise _Refused(
                f"the result would exceed {MAX_WRITE_BYTES // 1024} KiB; nothing written"
            )
        if target.is_file() and target.read_bytes() == data:
            return
        target.write_bytes(data)
        self._changed.add(rel)

    @staticmethod
    def _snippet(content: str, first: int, count: int) -> str:
        lines = content.splitlines()
        start = max(first - SNIPPET_CONTEXT, 1)
        end = min(first + count - 1 + SNIPPET_CONTEXT, len(lines))
        return f"Lines {start}-{end} now read:\n{_numbered(lines[start - 1 : end], start)}"
