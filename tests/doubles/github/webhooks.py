"""Signed webhook deliveries, sent in order from a background thread like GitHub's Hookshot."""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import time
import uuid
from typing import Any

import httpx

from tests.doubles.github.shapes import Shapes
from tests.doubles.github.state import Delivery, State

HOOK_ID = 123456


def sign(secret: str, body: bytes) -> dict[str, str]:
    key = secret.encode()
    return {
        "X-Hub-Signature": "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest(),
        "X-Hub-Signature-256": "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest(),
    }


def payload(
    shapes: Shapes,
    action: str | None,
    repo: str,
    sender: str,
    installation_id: int | None,
    **objects: Any,
) -> dict[str, Any]:
    """An event payload: action, objects, repository, organization, sender, installation."""
    state = shapes.state
    data: dict[str, Any] = {} if action is None else {"action": action}
    data.update(objects)
    record = state.repos[repo]
    data["repository"] = shapes.repo(record)
    owner = state.user(record.owner)
    if owner.type == "Organization":
        org = shapes.user(record.owner)
        data["organization"] = {
            key: org[key] for key in ("login", "id", "node_id", "url", "avatar_url")
        } | {"repos_url": f"{org['url']}/repos", "description": None}
    data["sender"] = shapes.user(sender)
    if installation_id is not None:
        data["installation"] = {
            "id": installation_id,
            "node_id": f"MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u{installation_id}",
        }
    return data


class Hookshot:
    """Queue deliveries (state lock held), send them from one worker thread, record statuses."""

    def __init__(self, state: State, app_id: int) -> None:
        self.state, self.app_id = state, app_id
        self.url: str | None = None
        self.secret: str | None = None
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, daemon=True, name="hookshot")
        self._started = False

    def configure(self, url: str | None, secret: str | None) -> None:
        with self.state.lock:
            self.url, self.secret = url, secret

    def build(self, event: str, data: dict[str, Any], guid: str | None = None) -> Delivery:
        body = json.dumps(data).encode()
        guid = guid or str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/abc123",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": guid,
            "X-GitHub-Hook-ID": str(HOOK_ID),
            "X-GitHub-Hook-Installation-Target-ID": str(self.app_id),
            "X-GitHub-Hook-Installation-Target-Type": "integration",
        }
        if self.secret:
            headers |= sign(self.secret, body)
        installation = data.get("installation") or {}
        return Delivery(
            guid=guid,
            id=self.state.next_id(),
            event=event,
            action=data.get("action"),
            installation_id=installation.get("id"),
            body=body,
            headers=headers,
        )

    def emit(self, event: str, data: dict[str, Any]) -> Delivery:
        """Record a delivery and queue it for sending (nothing is sent without a URL)."""
        delivery = self.build(event, data)
        self.state.deliveries_sent.append(delivery)
        if self.url:
            self._queue.put(delivery)
        return delivery

    def redeliver(self, original: Delivery) -> Delivery:
        data = json.loads(original.body)
        delivery = self.build(original.event, data, guid=original.guid)
        delivery.redelivery = True
        self.state.deliveries_sent.append(delivery)
        if self.url:
            self._queue.put(delivery)
        return delivery

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def stop(self) -> None:
        if self._started:
            self._queue.put(None)
            self._thread.join(timeout=10)

    def wait(self, timeout: float = 10) -> bool:
        """True once every queued delivery has been answered (or failed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.01)
        return False

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while True:
                delivery = self._queue.get()
                try:
                    if delivery is None:
                        return
                    self._send(client, delivery)
                finally:
                    self._queue.task_done()

    def _send(self, client: httpx.Client, delivery: Delivery) -> None:
        with self.state.lock:
            url = self.url
        status = 0
        if url:
            try:
                status = client.post(
                    url, content=delivery.body, headers=delivery.headers
                ).status_code
            except httpx.HTTPError:
                status = 0
        with self.state.lock:
            delivery.status = status
