"""The `feature-crew` command line: processes, task inspection, config checks, replays."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from redis.exceptions import RedisError

from bot import cli_tasks
from bot.cli_errors import CliError, UsageError
from bot.settings import Settings, load_settings
from bot.telemetry import Scrubber, setup_logging
from pipeline.config import ConfigError
from pipeline.errors import FeatureCrewError

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


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


def _config(settings: Settings, args: argparse.Namespace) -> int:
    print(json.dumps(settings.config.model_dump(mode="json"), indent=2))
    if args.check:
        from bot.cli_checks import check_setup

        return check_setup(settings)
    return 0


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "web": _web,
    "worker": _worker,
    "enqueue": cli_tasks.enqueue,
    "status": cli_tasks.status,
    "history": cli_tasks.history,
    "metrics": cli_tasks.metrics,
    "config": _config,
    "replay": cli_tasks.replay,
    "redeliver": cli_tasks.redeliver,
}
