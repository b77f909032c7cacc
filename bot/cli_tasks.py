"""The CLI's task commands: status, history and metrics read; replay, enqueue and redeliver act."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.cli_errors import CliError, UsageError
from bot.settings import Settings


def emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> int:
    print(json.dumps(data, indent=2, default=str) if as_json else text(data))
    return 0


def open_store(settings: Settings) -> Any:
    from bot.backends import Backends

    backends = Backends.connect(settings)
    return backends.store, backends.queue


def status(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli_views import queue_view, task_view

    store, queue = open_store(settings)
    if args.task:
        record = store.get(args.task)
        if record is None:
            raise CliError(f"no task {args.task!r}")
        return emit(json.loads(record.model_dump_json()), args.json, task_view)
    data = {"queues": queue.depths(), "tasks": [_brief(r) for r in store.recent(10)]}
    return emit(data, args.json, queue_view)


def _brief(record: Any) -> dict[str, Any]:
    p = record.progress
    return {
        "id": record.id,
        "repo": record.spec.repo_full_name,
        "issue": record.spec.issue_number,
        "state": p.state.value,
        "tier": p.tier,
        "cost_usd": round(p.cost_usd, 6),
        "duration_s": round(record.duration_s, 1),
        "pr": p.pr_url,
    }


def history(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli_views import history_view

    if args.limit < 1:
        raise CliError("--limit must be at least 1")
    store, _ = open_store(settings)
    return emit([_brief(r) for r in store.recent(args.limit)], args.json, history_view)


def metrics(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli_views import metrics_view
    from bot.metrics import read_window

    store, _ = open_store(settings)
    window = read_window(store, args.duration, None if args.tier is None else str(args.tier))
    data: dict[str, Any] = {
        "duration_s": args.duration,
        "days": window.days,
        "tiers": {t: s.as_dict() for t, s in window.by_tier.items()},
    }
    if args.metric:
        keys = {
            "success_rate": ("success_rate",),
            "cost": ("cost_usd", "cost_by_day"),
            "latency": ("latency_p50_s", "latency_p90_s", "latency_p99_s"),
        }[args.metric]
        data["tiers"] = {t: {k: v[k] for k in keys} for t, v in data["tiers"].items()}
    return emit(data, args.json, metrics_view)


def replay(settings: Settings, args: argparse.Namespace) -> int:
    from bot.deliveries import record_and_queue

    try:
        body = args.payload.read_bytes()
        payload = json.loads(body)
    except (OSError, ValueError) as err:
        raise CliError(f"cannot read {args.payload}: {err}") from None
    if not isinstance(payload, dict):
        raise CliError(f"{args.payload} is not a webhook payload (a JSON object)")
    store, queue = open_store(settings)
    delivery_id = f"replay-{uuid.uuid4()}"
    outcome = record_and_queue(
        store.redis,
        queue,
        delivery_id=delivery_id,
        event=args.event,
        action=str(payload.get("action") or ""),
        body=body,
    )
    print(f"{delivery_id} {outcome.value}")
    return 0


def enqueue(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli_actions import ActionError, enqueue_spec

    if Path(args.repo).exists():
        return enqueue_local(settings, args)
    if args.repo.count("/") != 1:
        raise UsageError(f"--repo {args.repo!r}: give OWNER/NAME, or the path of a git repository")
    if args.answer is not None:
        raise UsageError("--answer is for local tasks; on GitHub, answer on the issue")
    try:
        print(
            enqueue_spec(
                settings, repo=args.repo, spec=args.spec, slug=args.spec_slug, tier=args.tier
            )
        )
    except ActionError as err:
        raise CliError(str(err)) from None
    return 0


def enqueue_local(settings: Settings, args: argparse.Namespace) -> int:
    from bot.follow import Follower, summary
    from bot.local import LocalBusy, LocalUsageError, local_spec, queue_local_task
    from pipeline.router import route_spec

    store, queue = open_store(settings)
    try:
        spec = local_spec(store.redis, Path(args.repo), args.spec, args.spec_slug, args.tier)
        tier = route_spec(spec, settings.config.triage).tier
        record = queue_local_task(store, queue, spec, tier)
    except LocalUsageError as err:
        raise UsageError(str(err)) from None
    except LocalBusy as err:
        raise CliError(str(err)) from None
    if args.detach:
        print(record.id)
        return 0
    follower = Follower(settings, store.redis, record.id, args.answer, sys.stdin, sys.stderr)
    text, status = summary(follower.follow())
    print(text)
    return status


def redeliver(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli_actions import ActionError, redeliver_failed

    try:
        guids = redeliver_failed(settings, since_s=args.since)
    except ActionError as err:
        raise CliError(str(err)) from None
    print(f"redelivered {len(guids)} failed deliveries" + "".join(f"\n{g}" for g in guids))
    return 0
