"""A loopback relay for libgit2's HTTPS connections: no stall of a round trip per POST.

libgit2 never sets TCP_NODELAY and writes a POST's headers and its body (each chunk of a
push) in separate sends, so Nagle's algorithm holds the body until the server ACKs the
headers: a round trip, plus up to ~40 ms where the server delays its ACKs (Linux does, once
a connection has seen a few exchanges). That is one stall per fetch and one per push on every
task (bench/README.md, "Workspace"). pygit2 exposes no socket option, but it takes a proxy,
and libgit2 tunnels HTTPS through one with CONNECT: this relay is that proxy, on 127.0.0.1,
in the process that fetches. It ACKs what libgit2 sends at once (TCP_QUICKACK after every
read), so the body follows the headers at once, and forwards each read to the git host at
once on a TCP_NODELAY socket.

TLS runs end to end through the tunnel: the relay sees neither the token nor the data, and
libgit2 checks the git host's certificate as without it. It reads one line, `CONNECT
host:port`, and connects only to the host and port it was started for; anything else gets a
403 and nothing leaves the machine. (libgit2 sends plain-HTTP remotes past any proxy, so they
keep the stall; GitHub and GitHub Enterprise serve git over HTTPS.)
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import threading
from urllib.parse import urlsplit

_MAX_HEAD = 64 * 1024
_HEAD_TIMEOUT_S = 30
_CHUNK = 256 * 1024
_CONNECTED = b"HTTP/1.1 200 Connection established\r\n\r\n"
_REFUSED = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_UNREACHABLE = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return (parts.hostname or "").lower(), parts.port or default


class GitRelay:
    """Relays libgit2's connections to one git host; `proxy` is the URL to hand pygit2."""

    def __init__(self, clone_url: str) -> None:
        self.target = _host_port(clone_url)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.proxy = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._closed = False
        self.tunnels = 0  # opened so far
        threading.Thread(target=self._accept, name="git-relay", daemon=True).start()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            try:
                self._tunnel(client)
            except OSError:  # either side went away or timed out: libgit2 reports its own error
                return

    def _tunnel(self, client: socket.socket) -> None:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.settimeout(_HEAD_TIMEOUT_S)  # a client that never finishes its request
        head = _read_head(client)
        if _route(head) != self.target:
            client.sendall(_REFUSED)
            return
        try:
            upstream = socket.create_connection(self.target, timeout=30)
        except OSError:
            client.sendall(_UNREACHABLE)
            return
        with upstream:
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            upstream.settimeout(None)
            client.settimeout(None)  # as without the relay: as long as libgit2 keeps it open
            self.tunnels += 1
            client.sendall(_CONNECTED)
            early = head.split(b"\r\n\r\n", 1)[1]  # libgit2 waits for the 200; just in case
            if early:
                upstream.sendall(early)
            _splice(client, upstream)


def _read_head(client: socket.socket) -> bytes:
    """What the client sent up to the end of its first request's headers (and maybe more)."""
    head = b""
    while b"\r\n\r\n" not in head and len(head) < _MAX_HEAD:
        data = client.recv(_CHUNK)
        _quickack(client)
        if not data:
            break
        head += data
    return head


def _route(head: bytes) -> tuple[str, int] | None:
    """The host and port a complete `CONNECT host:port` head asks for; None for anything else."""
    if b"\r\n\r\n" not in head or not head.startswith(b"CONNECT "):
        return None
    target = head[8:].partition(b" ")[0].decode("latin-1")
    host, _, port = target.rpartition(":")
    return (host.strip("[]").lower(), int(port)) if port.isdigit() else None


def _quickack(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


def _splice(client: socket.socket, upstream: socket.socket) -> None:
    """Bytes both ways until both sides are done; each read goes on at once. A socket error
    on either side ends the tunnel (the caller closes both)."""
    with selectors.DefaultSelector() as sel:
        sel.register(client, selectors.EVENT_READ, (client, upstream))
        sel.register(upstream, selectors.EVENT_READ, (upstream, client))
        while sel.get_map():
            for key, _ in sel.select():
                source, dest = key.data
                data = source.recv(_CHUNK)
                if source is client:
                    _quickack(client)
                if data:
                    dest.sendall(data)
                else:  # this side is done sending: pass that on, keep the other way open
                    sel.unregister(source)
                    dest.shutdown(socket.SHUT_WR)


class _Relays:
    """This process's relays, one per git host and port."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_target: dict[tuple[str, int], GitRelay] = {}

    def forget_inherited(self) -> None:
        """In a forked child (an RQ job horse) the parent's relay threads do not exist: close
        the inherited listening sockets (without shutting them down, which would stop the
        parent's) and start anew on first use."""
        self.lock = threading.Lock()  # the parent's may have been held at the fork
        for relay in self.by_target.values():
            relay._listener.close()
        self.by_target.clear()


_relays = _Relays()
os.register_at_fork(after_in_child=_relays.forget_inherited)


def relay_for(clone_url: str) -> str | None:
    """The proxy to hand pygit2 for this clone URL: this process's relay to its host (started
    on first use) for HTTPS, None (no proxy) for anything else."""
    if urlsplit(clone_url).scheme != "https":
        return None
    target = _host_port(clone_url)
    with _relays.lock:
        relay = _relays.by_target.get(target)
        if relay is None:
            relay = _relays.by_target[target] = GitRelay(clone_url)
        return relay.proxy
