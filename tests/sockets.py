"""Which process holds which Redis connection: sockets read from /proc, clients from Redis."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from redis import Redis

BLOCKING = ("blmove", "brpoplpush", "blpop", "bzpopmin")


def sockets_of(pid: int) -> set[int]:
    """The inodes of the sockets the process holds open (none once it is gone)."""
    inodes: set[int] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def _tcp_sockets() -> dict[int, int]:
    """Local port to socket inode, for this host's IPv4 TCP sockets."""
    ports = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        ports[int(fields[1].rsplit(":", 1)[1], 16)] = int(fields[9])
    return ports


def blocked_sockets(redis: Redis, holders: list[int]) -> list[int]:
    """The client sockets, held by any of these processes, of connections Redis holds in a
    blocking pop (a worker waiting for a job). Another test's client that is gone by now, or
    still closing, is not among them."""
    ports = _tcp_sockets()
    held = set().union(*(sockets_of(pid) for pid in holders))
    found = []
    for client in redis.client_list():
        if client.get("cmd") in BLOCKING:
            inode = ports.get(int(str(client["addr"]).rsplit(":", 1)[1]))
            if inode in held:
                found.append(inode)
    return found
