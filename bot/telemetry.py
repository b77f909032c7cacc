"""Logging and Sentry, set up by each process at start, never at import."""

from __future__ import annotations

import logging

from bot.settings import Settings


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )


def init_sentry(settings: Settings, *, process: str) -> None:
    if settings.env.sentry_dsn is None:
        return
    import sentry_sdk
    from sentry_sdk.integrations.rq import RqIntegration
    from sentry_sdk.integrations.starlette import StarletteIntegration

    integrations = [StarletteIntegration()] if process == "web" else [RqIntegration()]
    sentry_sdk.init(
        dsn=settings.env.sentry_dsn.get_secret_value(),
        integrations=integrations,
        send_default_pii=False,
        server_name=f"feature-crew-{process}",
    )
