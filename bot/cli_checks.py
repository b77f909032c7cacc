"""`config --check`: can this process reach Redis and GitHub with what it was given?"""

from __future__ import annotations

from bot.github import GitHubApp
from bot.queue import rq_redis
from bot.settings import Settings


def check_setup(settings: Settings) -> None:
    redis = rq_redis(settings.env.redis_url)
    redis.ping()
    print("redis: ok")
    app = GitHubApp.from_settings(settings, redis)
    if app is None:
        print("github: no App credentials (GITHUB_APP_ID, GITHUB_PRIVATE_KEY[_PATH])")
        return
    ident = app.identity()
    print(f"github: ok, App {ident['slug']} ({ident['bot_login']})")
    if settings.webhook_secret is None:
        print("webhooks: GITHUB_WEBHOOK_SECRET is not set; every delivery will be refused")
