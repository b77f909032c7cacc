"""The bubblewrap command line for a confinement: exactly what a confined tool can see and reach.

An empty tmpfs as root, then: the system's read-only folders, a few files of /etc, the Python
installations the tools run on (read-only), the given folders, the task's tree at WORKDIR, a
private /proc, /dev and /tmp. Nothing else of the host exists inside: no FEATURE_CREW_HOME, no
mirror, no other worktree, no key file, no $HOME. Paths that must stay hidden but lie inside
something exposed (a key file under /usr/local, say) are covered by an empty mount.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

LAUNCHER_INSIDE = "/run/feature-crew/launcher.py"
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What programs need from /etc (users, name resolution, TLS roots, the dynamic linker), and no
# more: /etc elsewhere may hold the operator's config, keys or git's system config.
ETC_ENTRIES = (
    "passwd", "group", "nsswitch.conf", "hosts", "host.conf", "resolv.conf", "gai.conf",
    "services", "protocols", "localtime", "timezone", "ld.so.cache", "ld.so.conf",
    "ld.so.conf.d", "alternatives", "ssl/certs", "ssl/openssl.cnf", "ca-certificates",
    "ca-certificates.conf", "pki/tls/certs", "mime.types", "os-release", "debian_version",
)  # fmt: skip


@dataclass(frozen=True)
class Confinement:
    """What a confined tool can see: nothing of the host beyond these and the system's files."""

    tree: Path  # host folder shown read-write at WORKDIR
    scratch: Path  # host folder, read-write at its own path (HOME, TMPDIR, JUnit XML...)
    writable: tuple[Path, ...] = ()  # more host folders, read-write at their own paths
    readable: tuple[Path, ...] = ()  # more host folders, read-only at their own paths
    network: bool = False  # only the setup phase (package indexes); the audit and baseline never
    hidden: tuple[Path, ...] = ()  # more host paths to keep out, beyond bwrap.default_hidden()


@functools.cache
def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@functools.cache
def _supports(option: str) -> bool:
    # --disable-userns came with bubblewrap 0.8; older ones still confine, one layer less.
    path = bwrap_path()
    if path is None:
        return False
    usage = subprocess.run([path, "--help"], capture_output=True, check=False, timeout=10)
    return option.encode() in usage.stdout + usage.stderr


def default_hidden() -> tuple[Path, ...]:
    """What the worker holds that no confined tool may see, wherever the operator put it."""
    env = os.environ
    home = Path.home()
    cache = Path(env.get("XDG_CACHE_HOME") or home / ".cache")
    paths = [home, Path.cwd(), Path(env.get("FEATURE_CREW_HOME") or cache / "feature-crew")]
    for name in ("GITHUB_PRIVATE_KEY_PATH", "FEATURE_CREW_CONFIG", "XDG_CONFIG_HOME"):
        if env.get(name):
            paths.append(Path(env[name]))
    return tuple(_real(p) for p in paths)


def _real(path: Path | str) -> Path:
    return Path(os.path.realpath(path))


def _exposes(shown: Path, hidden: Path) -> bool:
    return hidden == shown or shown in hidden.parents


def check_exposable(confinement: Confinement, hidden: Iterable[Path]) -> None:
    """ValueError when a folder given to the confinement is, or holds, something hidden."""
    given = [confinement.tree, confinement.scratch, *confinement.writable, *confinement.readable]
    for path in given:
        if not path.exists():
            raise ValueError(f"cannot confine with {path}: it does not exist")
        for secret in hidden:
            if _exposes(_real(path), secret):
                raise ValueError(f"confining with {path} would expose {secret}")


def _system() -> Iterator[str]:
    for name in SYSTEM_DIRS:
        if os.path.islink(name):  # merged /usr: /bin -> usr/bin
            yield from ("--symlink", os.readlink(name), name)
        elif os.path.isdir(name):
            yield from ("--ro-bind", name, name)
    for entry in ETC_ENTRIES:
        yield from ("--ro-bind-try", f"/etc/{entry}", f"/etc/{entry}")


def _interpreters() -> set[Path]:
    """The installations the launcher and the tools run on; never the worker's whole $HOME."""
    prefixes = {_real(sys.base_prefix), _real(sys.prefix)}
    return {p for p in prefixes if not any(p.is_relative_to(d) for d in SYSTEM_DIRS)}


def _bind(binds: Iterable[tuple[str, Path]]) -> list[str]:
    """Each (option, host path) at its own path; parents first, so children stay on top."""
    args: list[str] = []
    for option, path in sorted(set(binds), key=lambda bind: len(bind[1].parts)):
        args += [option, str(path), str(path)]
    return args


def _cover(path: Path, inside: str) -> list[str]:
    """An empty, read-only stand-in for a folder or file that must not be seen."""
    if path.is_symlink() or not path.exists():
        return []  # a symlink leads to a host path that does not exist inside
    if path.is_dir():
        return ["--tmpfs", inside, "--remount-ro", inside]
    return ["--ro-bind", "/dev/null", inside]


def _covers(shown: Iterable[Path], hidden: Iterable[Path]) -> list[str]:
    """Hidden paths that lie inside a shown folder, covered; before the given folders are bound,
    so a scratch folder under FEATURE_CREW_HOME stays visible."""
    roots = [Path(d) for d in SYSTEM_DIRS if not os.path.islink(d)]
    roots += [Path("/etc", entry) for entry in ETC_ENTRIES]
    roots += shown
    args: list[str] = []
    for secret in sorted(set(hidden)):
        if any(root in secret.parents for root in roots):
            args += _cover(secret, str(secret))
    return args


def _tree(confinement: Confinement, workdir: Path) -> list[str]:
    args = ["--bind", str(_real(confinement.tree)), str(workdir)]
    # A worktree's .git file names the shared mirror; the mirror is not here, and git must not
    # be pointed at anything in its place.
    return args + _cover(confinement.tree / ".git", str(workdir / ".git"))


def command(  # noqa: PLR0913 - the parts of one argv
    confinement: Confinement,
    hidden: Iterable[Path],
    workdir: Path,
    cwd: Path,
    launcher: str,
    info_fd: int,
) -> list[str]:
    """bwrap's argv up to and including `--`; the launcher's own argv follows."""
    path = bwrap_path()
    if path is None:
        raise FileNotFoundError("bubblewrap (bwrap) is not installed")
    args = [path, "--die-with-parent", "--new-session", "--info-fd", str(info_fd)]
    args += ["--unshare-user", "--unshare-pid"]
    args += ["--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    if not confinement.network:
        args.append("--unshare-net")  # loopback only, up
    if _supports("--disable-userns"):
        args.append("--disable-userns")
    args += ["--cap-drop", "ALL", *_system(), "--dev", "/dev", "--proc", "/proc"]
    args += ["--tmpfs", "/tmp"]  # noqa: S108 - a fresh, empty tmpfs of the sandbox's own
    interpreters = _interpreters()
    args += _bind(("--ro-bind", p) for p in interpreters) + _covers(interpreters, hidden)
    given = [("--ro-bind", _real(p)) for p in confinement.readable]
    given += [("--bind", _real(p)) for p in (*confinement.writable, confinement.scratch)]
    args += _bind(given)
    args += _tree(confinement, workdir)
    args += ["--ro-bind", launcher, LAUNCHER_INSIDE, "--chdir", str(cwd), "--"]
    return args
