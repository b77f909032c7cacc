"""The `feature-crew` command line: processes, task inspection, config checks, replays."""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from bot.settings import Settings, load_settings
from bot.telemetry import Scrubber, setup_logging
from pipeline.config import ConfigError
from pipeline.errors import FeatureCrewError

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class CliError(Exception):
    """A one-line reason for exit status 1."""


class UsageError(CliError):
    """A one-line reason for exit status 2."""


def parse_duration(text: str) -> float:
    unit = text[-1:]
    if unit not in _DURATION_UNITS or not text[:-1].isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 12h or 7d")
    return int(text[:-1]) * _DURATION_UNITS[unit]


def parse_tiers(text: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or any(p not in ("1", "2", "3") for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r}: give tiers like 1 or 1,2,3")
    return tuple(sorted({int(p) for p in parts}))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="feature-crew", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    w = sub.add_parser("web", help="serve webhooks, health, metrics and the dashboard")
    w.add_argument("--workers", type=int, default=1, help="web processes on the one port")
    wk = sub.add_parser("worker", help="run one RQ worker with its scheduler")
    wk.add_argument(
        "--tiers",
        type=parse_tiers,
        default=(1, 2, 3),
        help="take only these tiers' tasks, e.g. 1 or 2,3 (default: all)",
    )
    wk.add_argument(
        "--no-events",
        dest="events",
        action="store_false",
        help="leave the events queue (deliveries, acknowledgements) to other workers",
    )
    wk.add_argument(
        "--no-reviews",
        dest="reviews",
        action="store_false",
        help="leave the reviews queue (the reviewer model's calls) to other workers",
    )
    e = sub.add_parser("enqueue", help="queue a task without a label")
    e.add_argument(
        "--repo",
        required=True,
        help="OWNER/NAME of a repository the App is installed on, or the PATH of a local one",
    )
    e.add_argument("--spec", required=True)
    e.add_argument("--spec-slug")
    e.add_argument("--tier", type=int, choices=(1, 2, 3))
    e.add_argument("--detach", action="store_true", help="print the task id and return")
    e.add_argument("--answer", help="local mode: the answer to the model's question")
    s = sub.add_parser("status", help="one task, or the queues and the latest tasks")
    s.add_argument("task", nargs="?")
    s.add_argument("--json", action="store_true")
    h = sub.add_parser("history", help="the latest tasks")
    h.add_argument("--limit", type=int, default=20)
    h.add_argument("--json", action="store_true")
    m = sub.add_parser("metrics", help="success rate, cost and latency per tier")
    m.add_argument("--duration", type=parse_duration, default=parse_duration("7d"))
    m.add_argument("--tier", type=int, choices=(1, 2, 3))
    m.add_argument("--metric", choices=("success_rate", "cost", "latency"))
    m.add_argument("--json", action="store_true")
    c = sub.add_parser("config", help="show the effective config")
    c.add_argument(
        "--check", action="store_true", help="also check Redis, the GitHub App and the models"
    )
    r = sub.add_parser("replay", help="handle a saved webhook payload as if just delivered")
    r.add_argument("event")
    r.add_argument("payload", type=Path)
    d = sub.add_parser("redeliver", help="ask GitHub to redeliver failed deliveries")
    d.add_argument("--since", type=parse_duration, default=parse_duration("1h"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging()
    secrets: tuple[str, ...] = ()

    def say(line: str) -> None:  # the CLI's edge: scrubbed, never a traceback
        print(Scrubber(secrets).text(f"feature-crew: {line}"), file=sys.stderr)

    try:
        settings = load_settings()
        secrets = settings.secrets
        setup_logging(secrets=secrets)
        if args.command == "config" and not args.check:  # the one command without Redis
            return int(COMMANDS[args.command](settings, args) or 0)
        from bot.embedded_redis import redis_for

        with redis_for(settings) as settings:
            return int(COMMANDS[args.command](settings, args) or 0)
    except UsageError as err:
        say(str(err))
        return 2
    except (ConfigError, CliError) as err:
        say(str(err))
    except RedisError as err:
        say(f"Redis unavailable: {err}")
    except FeatureCrewError as err:
        say(err.public)
    except KeyboardInterrupt:
        return 130
    except Exception as err:
        say(f"unexpected {type(err).__name__}: {err}")
    return 1


def _web(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from bot.app import create_app
    from bot.hardening import make_non_dumpable
    from bot.telemetry import init_sentry

    make_non_dumpable()  # the web process holds the webhook secret and the App's key too
    app: object = "bot.app:create_app_from_environment"
    if args.workers == 1:
        init_sentry(settings, process="web")
        app = create_app(settings)
    # With --workers, each process builds its own app (settings, clients) from the environment,
    # so it must name the Redis this process chose (a private one, when none was configured).
    if args.workers > 1:
        os.environ["REDIS_URL"] = settings.env.redis_url
    uvicorn.run(
        app,  # type: ignore[arg-type]
        factory=args.workers > 1,
        workers=args.workers,
        host="0.0.0.0",  # noqa: S104 - the contract: listen on all interfaces
        port=settings.env.port,
        proxy_headers=True,
        log_level="info",
        # The route logs one line per delivery; an access line more per request cost ~5%.
        access_log=False,
    )
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from bot.worker import run_worker

    run_worker(settings, tiers=args.tiers, events=args.events, reviews=args.reviews)
    return 0


def _emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> int:
    print(json.dumps(data, indent=2, default=str) if as_json else text(data))
    return 0


def _store(settings: Settings) -> Any:
    from bot.backends import Backends

    backends = Backends.connect(settings)
    return backends.store, backends.queue


def _status(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli_views import queue_view, task_view

    store, queue = _store(settings)
    if args.task:
        record = store.get(args.task)
        if record is None:
            raise CliError(f"no task {args.task!r}")
        return _emit(json.loads(record.model_dump_json()), args.json, task_view)
    data = {"queues": queue.depths(), "tasks": [_brief(r) for r in store.recent(10)]}
    return _emit(data, args.json, queue_view)


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


def _history(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli_views import history_view

    if args.limit < 1:
        raise CliError("--limit must be at least 1")
    store, _ = _store(settings)
    return _emit([_brief(r) for r in store.recent(args.limit)], args.json, history_view)


def _metrics(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli_views import metrics_view
    from bot.metrics import read_window

    store, _ = _store(settings)
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
    return _emit(data, args.json, metrics_view)


def _config(settings: Settings, args: argparse.Namespace) -> int:
    print(json.dumps(settings.config.model_dump(mode="json"), indent=2))
    if args.check:
        from bot.cli_checks import check_setup

        return check_setup(settings)
    return 0


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    from bot.deliveries import record_and_queue

    try:
        body = args.payload.read_bytes()
        payload = json.loads(body)
    except (OSError, ValueError) as err:
        raise CliError(f"cannot read {args.payload}: {err}") from None
    if not isinstance(payload, dict):
        raise CliError(f"{args.payload} is not a webhook payload (a JSON object)")
    store, queue = _store(settings)
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


def _enqueue(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli_actions import ActionError, enqueue_spec

    if Path(args.repo).exists():
        return _enqueue_local(settings, args)
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


def _enqueue_local(settings: Settings, args: argparse.Namespace) -> int:
    from bot.follow import Follower, summary
    from bot.local import LocalBusy, LocalUsageError, local_spec, queue_local_task
    from pipeline.router import route_spec

    store, queue = _store(settings)
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


def _redeliver(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli_actions import ActionError, redeliver_failed

    try:
        guids = redeliver_failed(settings, since_s=args.since)
    except ActionError as err:
        raise CliError(str(err)) from None
    print(f"redelivered {len(guids)} failed deliveries" + "".join(f"\n{g}" for g in guids))
    return 0


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "web": _web,
    "worker": _worker,
    "enqueue": _enqueue,
    "status": _status,
    "history": _history,
    "metrics": _metrics,
    "config": _config,
    "replay": _replay,
    "redeliver": _redeliver,
}
