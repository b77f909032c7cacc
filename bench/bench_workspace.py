"""Workspace: a task's git overhead against the plain git CLI doing the same steps.

Both sides work against the same repository behind the real `git http-backend` (the tests'
smart-HTTP remote), with token auth. Per task: fetch what changed, a fresh worktree on a new
branch at the base, one commit, one push. The floor is git: `git fetch`, `git worktree add
-b`, `git commit -a`, `git push`. Prints medians and the ratio against its target:
`python bench/bench_workspace.py [TASKS] [FILES]`.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.workspace import Workspace
from tests.doubles.git_http import commit_files, create_bare_repo, git_http_app
from tests.doubles.server import ServerThread

TOKEN = "ghs_bench"
TARGET_RATIO = 1.5  # our steps may cost at most this much of the git CLI's


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def ours(ws: Workspace, url: str, n: int) -> float:
    start = time.perf_counter()
    ws.sync_mirror(1, url, TOKEN)
    tree = ws.prepare_worktree(1, f"ours-{n}", f"ours/{n}", "main")
    (tree.path / "module_0.py").write_text(f"VALUE = {n}\n")
    tree.commit_all("bench", "bench", "bench@example.com", paths=["module_0.py"])
    tree.push(url, TOKEN)
    elapsed = time.perf_counter() - start
    ws.remove_worktree(1, f"ours-{n}")
    return elapsed


def floor(clone: Path, authed_url: str, n: int) -> float:
    start = time.perf_counter()
    _git("fetch", "-q", "origin", cwd=clone)
    tree = clone.parent / f"floor-{n}"
    _git("worktree", "add", "-q", "-b", f"floor/{n}", str(tree), "origin/main", cwd=clone)
    (tree / "module_0.py").write_text(f"VALUE = {n}\n")
    _git("-c", "user.name=b", "-c", "user.email=b@e", "commit", "-qam", "bench", cwd=tree)
    _git("push", "-q", authed_url, f"floor/{n}", cwd=tree)
    elapsed = time.perf_counter() - start
    _git("worktree", "remove", "--force", str(tree), cwd=clone)
    return elapsed


def main(tasks: int, files: int) -> None:
    root = Path(tempfile.mkdtemp())
    bare = root / "git" / "octo" / "bench.git"
    create_bare_repo(bare, {f"module_{i}.py": f"VALUE = {i}\n" * 20 for i in range(files)})
    server = ServerThread(git_http_app(root / "git", lambda t, r: t == TOKEN)).start()
    url = f"{server.url}/octo/bench.git"
    authed = url.replace("http://", f"http://x-access-token:{TOKEN}@")
    try:
        ws = Workspace(root / "home")
        start = time.perf_counter()
        ws.sync_mirror(1, url, TOKEN)
        first_ours = time.perf_counter() - start
        start = time.perf_counter()
        _git("clone", "-q", authed, str(root / "clone"), cwd=root)
        first_git = time.perf_counter() - start
        ours_t, floor_t = [], []
        for n in range(tasks):
            commit_files(bare, {"CHANGES.md": f"change {n}\n"}, message=f"upstream {n}")
            ours_t.append(ours(ws, url, n))
            floor_t.append(floor(root / "clone", authed, n))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(f"first sync     ours {first_ours * 1e3:7.1f} ms   git clone {first_git * 1e3:7.1f} ms")
    med_o, med_f = statistics.median(ours_t), statistics.median(floor_t)
    print(f"per task       ours {med_o * 1e3:7.1f} ms   git CLI   {med_f * 1e3:7.1f} ms")
    ratio = med_o / med_f
    verdict = "within" if ratio <= TARGET_RATIO else "OVER"
    print(f"ratio {ratio:.2f}x the git CLI floor (target <= {TARGET_RATIO:.1f}x): {verdict}")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*(args + [15, 200][len(args) :]))
