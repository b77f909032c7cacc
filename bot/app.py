"""The Starlette app of the `web` process: webhooks, health, metrics, dashboard."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.dashboard import log_in, show_dashboard, show_task
from bot.deliveries import DeliveryRecorder
from bot.pages import Pages
from bot.runtime import WebRuntime
from bot.settings import Settings
from bot.setup import finish_setup
from bot.webhooks import WebhookRoute


async def health(request: Request) -> JSONResponse:
    rt: WebRuntime = request.app.state.runtime
    body: dict[str, object] = {
        "status": "ok",
        "github_app": "configured" if rt.settings.app_configured else "missing credentials",
        "webhook_secret": "set" if rt.settings.webhook_secret else "missing",
        "redis_server": rt.redis_in_use,
    }
    try:
        depths = await asyncio.wait_for(run_in_threadpool(rt.queue.depths), timeout=3)
    except (RedisError, TimeoutError) as err:
        body.update(status="error", redis=f"unreachable: {type(err).__name__}")
        return JSONResponse(body, status_code=503)
    body.update(redis="ok", queues=depths)
    return JSONResponse(body)


async def metrics(request: Request) -> Response:
    rt: WebRuntime = request.app.state.runtime
    data = await run_in_threadpool(generate_latest, rt.metrics.registry)
    return Response(data, media_type=CONTENT_TYPE_LATEST)


def create_app(settings: Settings) -> Starlette:
    runtime = WebRuntime.build(settings)
    recorder = DeliveryRecorder(runtime.aredis, runtime.queue)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # What is loaded by now lives as long as the process: out of the collector with it.
        # Unfrozen, each full collection walked it all, 180-400 ms during which no request
        # was answered (the p99 at 64 connections); frozen, ~1 ms. Once per process (a
        # test process starts many apps).
        if gc.get_freeze_count() == 0:
            gc.collect()
            gc.freeze()
        yield
        runtime.redis.close()
        await runtime.aredis.aclose()

    app = Starlette(
        routes=[
            Route("/webhooks", WebhookRoute(runtime, recorder), methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/", show_dashboard, methods=["GET"]),
            Route("/tasks/{task_id}", show_task, methods=["GET"]),
            Route("/login", log_in, methods=["POST"]),
            Route("/setup/callback", finish_setup, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.pages = Pages()  # its session key lives as long as this process
    return app


def create_app_from_environment() -> Starlette:
    """The app of one of several `web --workers N` processes, each reading the settings."""
    from bot.settings import load_settings
    from bot.telemetry import init_sentry, setup_logging

    setup_logging()
    settings = load_settings()
    setup_logging(secrets=settings.secrets)
    init_sentry(settings, process="web")
    return create_app(settings)
