"""Which process holds which Redis connection: sockets read from /proc, clients from Redis."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from redis import Redis

BLOCKING = ("blmove", "brpoplpush", "blpop", "bzpopmin")


def sockets_of(pid: int) -> set[int]:
    """The inodes of the sockets the process holds open."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def socket_of_port(port: int) -> int:
    """The inode of the loopback TCP socket whose local port this is."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port:
            return int(fields[9])
    raise AssertionError(f"no TCP socket on local port {port}")


def blocked_sockets(redis: Redis) -> list[int]:
    """The client sockets of every connection Redis holds in a blocking pop (a waiting worker)."""
    return [
        socket_of_port(int(str(client["addr"]).rsplit(":", 1)[1]))
        for client in redis.client_list()
        if client.get("cmd") in BLOCKING
    ]
