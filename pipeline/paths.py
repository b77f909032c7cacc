"""Protected paths: one rule for the editor, the commit and the reviewer."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

# Everything GitHub executes or obeys: workflows, composite actions (run inside the existing
# workflows, so no `workflows` permission guards them), CODEOWNERS, dependabot, this App's own
# per-repository config. No list replaces it; the operator's and the repository's add to it.
ALWAYS_PROTECTED = (".github/",)


def is_protected(path: str, protected: Sequence[str]) -> bool:
    """Whether `path` is, lies under, starts with, or glob-matches a protected entry.

    Case is ignored, so `.GitHub/Workflows/x.yml` cannot slip past on a case-insensitive disk.
    """
    folded = path.strip("/").casefold()
    for entry in (*ALWAYS_PROTECTED, *protected):
        raw = entry.casefold()
        folder = raw.strip("/")
        if not folder:
            continue
        if folded == folder or folded.startswith((folder + "/", raw)) or fnmatchcase(folded, raw):
            return True
    return False
