"""Real projects from PyPI sdists as git repositories, for audits and benchmarks.

Each sdist is downloaded once into a cache folder outside the repository
(`FEATURE_CREW_TEST_CACHE`, default `~/.cache/feature-crew-tests`), checked against the index's
sha256, and never committed. Without the package index the caller gets `Unreachable`, which
tests turn into a skip with the reason.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

INDEX = os.environ.get("FEATURE_CREW_TEST_INDEX", "https://pypi.org/simple")
_SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Upstream",
    "GIT_AUTHOR_EMAIL": "upstream@example.com",
    "GIT_COMMITTER_NAME": "Upstream",
    "GIT_COMMITTER_EMAIL": "upstream@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


class Unreachable(Exception):
    """The package index could not be reached or did not have the sdist."""


@dataclass(frozen=True)
class Sdist:
    name: str
    version: str

    @property
    def filename(self) -> str:
        return f"{self.name.replace('-', '_')}-{self.version}.tar.gz"


INFLECT = Sdist("inflect", "7.5.0")  # deps more_itertools + typeguard; ruff.toml, mypy.ini


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "feature-crew-tests"
    path = Path(os.environ.get("FEATURE_CREW_TEST_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _index_entry(sdist: Sdist) -> tuple[str, str]:
    url = f"{INDEX.rstrip('/')}/{sdist.name}/"
    request = urllib.request.Request(url, headers={"Accept": _SIMPLE_JSON})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - fixed https
            files = json.load(response)["files"]
    except (urllib.error.URLError, OSError, ValueError, KeyError) as err:
        raise Unreachable(f"package index {url} unreachable: {err}") from err
    wanted = {sdist.filename, sdist.filename.replace("_", "-")}
    for entry in files:
        if entry["filename"] in wanted:
            return entry["url"], entry["hashes"]["sha256"]
    raise Unreachable(f"{url} has no {sdist.filename}")


def download(sdist: Sdist) -> Path:
    """The sdist's tarball in the cache, downloaded (and hash-checked) the first time."""
    folder = cache_dir() / "sdists"
    folder.mkdir(exist_ok=True)
    target = folder / sdist.filename
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        url, sha256 = _index_entry(sdist)
        try:
            with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310
                data = response.read()
        except (urllib.error.URLError, OSError) as err:
            raise Unreachable(f"cannot download {url}: {err}") from err
        if hashlib.sha256(data).hexdigest() != sha256:
            raise Unreachable(f"{url}: sha256 mismatch")
        partial = target.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(target)
        return target


def _git(cwd: Path, *args: str) -> None:
    env = {**os.environ, **_GIT_ENV}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def unpack_as_repo(sdist: Sdist, dest: Path, *, branch: str = "main") -> Path:
    """The sdist's files as a fresh git repository at dest, one commit on `branch`."""
    tarball = download(sdist)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(dest, filter="data")
    (top,) = [p for p in dest.iterdir() if p.is_dir()]
    for item in list(top.iterdir()):
        shutil.move(str(item), dest / item.name)
    top.rmdir()
    _git(dest, "init", "-q", "-b", branch)
    _git(dest, "add", "-A")
    _git(dest, "commit", "-q", "-m", f"{sdist.name} {sdist.version} from its sdist")
    return dest


def commit_all(repo: Path, message: str) -> None:
    """Commit every change in repo as the upstream author (a test's edit to a real project)."""
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)
