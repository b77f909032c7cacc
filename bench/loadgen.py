"""A small asyncio HTTP/1.1 load generator: keep-alive connections, one request in flight each.

Raw streams rather than an HTTP client library, so the generator's own cost per request stays
far below the servers' (it shares the machine with them).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    elapsed: float = 0.0

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


def _request(host: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _connection(
    port: int, requests: list[bytes], next_index: list[int], result: LoadResult
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while next_index[0] < len(requests):
            raw = requests[next_index[0]]
            next_index[0] += 1
            start = time.perf_counter()
            writer.write(raw)
            status = await _read_response(reader)
            result.latencies.append(time.perf_counter() - start)
            result.statuses[status] += 1
    finally:
        writer.close()


async def _run(port: int, connections: int, requests: list[bytes]) -> LoadResult:
    result = LoadResult()
    next_index = [0]
    start = time.perf_counter()
    await asyncio.gather(
        *(_connection(port, requests, next_index, result) for _ in range(connections))
    )
    result.elapsed = time.perf_counter() - start
    return result


def post_all(
    port: int, path: str, connections: int, bodies: list[tuple[dict[str, str], bytes]]
) -> LoadResult:
    """POST every (headers, body) once over `connections` keep-alive connections."""
    requests = [_request(f"127.0.0.1:{port}", path, h, b) for h, b in bodies]
    return asyncio.run(_run(port, connections, requests))
