"""Settings: the environment (pydantic-settings) plus the operator's TOML, read once at start."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.config import ConfigError, OperatorConfig, load_config
from pipeline.endpoints import ModelEndpoints
from pipeline.invalid import describe_invalid


def _default_home() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "feature-crew"


class EnvSettings(BaseSettings):
    """The process environment, as named in CONTRACT.md."""

    # `.env` in the working directory: where the setup page writes the App's credentials.
    # Variables set in the environment win over it.
    model_config = SettingsConfigDict(
        extra="ignore", frozen=True, env_file=".env", env_file_encoding="utf-8"
    )

    github_app_id: int | None = Field(default=None, validation_alias="GITHUB_APP_ID")
    github_private_key: SecretStr | None = Field(
        default=None, validation_alias="GITHUB_PRIVATE_KEY"
    )
    github_private_key_path: Path | None = Field(
        default=None, validation_alias="GITHUB_PRIVATE_KEY_PATH"
    )
    github_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias="GITHUB_WEBHOOK_SECRET"
    )
    github_api_url: str = Field(default="https://api.github.com", validation_alias="GITHUB_API_URL")
    redis_url: str = Field(default="redis://localhost:6379/0", validation_alias="REDIS_URL")
    # Without REDIS_URL: this one if it answers, else a private Redis (bot/embedded_redis.py).
    default_redis_url: str = Field(
        default="redis://localhost:6379/0", validation_alias="FEATURE_CREW_DEFAULT_REDIS_URL"
    )
    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    # The anthropic SDK reads its key itself; known here so error reports can scrub it.
    anthropic_api_key: SecretStr | None = Field(default=None, validation_alias="ANTHROPIC_API_KEY")
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    anthropic_base_url: str | None = Field(default=None, validation_alias="ANTHROPIC_BASE_URL")
    config_path: Path | None = Field(default=None, validation_alias="FEATURE_CREW_CONFIG")
    home: Path = Field(default_factory=_default_home, validation_alias="FEATURE_CREW_HOME")
    sentry_dsn: SecretStr | None = Field(default=None, validation_alias="SENTRY_DSN")
    dashboard_token: SecretStr | None = Field(
        default=None, validation_alias="FEATURE_CREW_DASHBOARD_TOKEN"
    )
    port: int = Field(default=8000, ge=1, le=65535, validation_alias="PORT")

    @field_validator(
        "github_private_key",
        "github_webhook_secret",
        "openai_api_key",
        "anthropic_api_key",
        "sentry_dsn",
        "dashboard_token",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("github_app_id", "github_private_key_path", "config_path", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def endpoints(self) -> ModelEndpoints:
        """What the pipeline's model calls need of the environment, and nothing else."""
        return ModelEndpoints(
            openai_api_key=self.openai_api_key,
            openai_base_url=self.openai_base_url,
            anthropic_base_url=self.anthropic_base_url,
        )


@dataclass(frozen=True)
class Settings:
    """Everything a process needs, built once at start and passed down.

    Every secret is a SecretStr, so no repr or str of this (or of anything holding it) shows one.
    """

    env: EnvSettings
    config: OperatorConfig
    private_key: SecretStr | None

    @property
    def app_configured(self) -> bool:
        return self.env.github_app_id is not None and self.private_key is not None

    @property
    def endpoints(self) -> ModelEndpoints:
        return self.env.endpoints

    @property
    def home(self) -> Path:
        """Where workspaces and caches live (FEATURE_CREW_HOME)."""
        return self.env.home

    @property
    def webhook_secret(self) -> bytes | None:
        secret = self.env.github_webhook_secret
        return secret.get_secret_value().encode() if secret else None

    @property
    def api_url(self) -> str:
        return self.env.github_api_url.rstrip("/")

    @property
    def web_url(self) -> str:
        """GitHub's web host for the API in use: github.com, or an Enterprise host."""
        url = urlsplit(self.api_url)
        path = url.path.rstrip("/")
        if path.endswith("/api/v3"):  # GitHub Enterprise Server
            return urlunsplit((url.scheme, url.netloc, path[: -len("/api/v3")], "", ""))
        return f"{url.scheme}://{url.netloc.removeprefix('api.')}"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value this process holds, for scrubbing error reports."""
        env = self.env
        held = (
            self.private_key,
            env.github_webhook_secret,
            env.openai_api_key,
            env.anthropic_api_key,
            env.dashboard_token,
        )
        passwords = (urlsplit(u).password for u in (env.redis_url, env.default_redis_url))
        return (
            *(s.get_secret_value() for s in held if s is not None),
            *(p for p in passwords if p),
        )


def _config_path(env: EnvSettings) -> Path | None:
    if env.config_path is not None:
        return env.config_path
    local = Path("config.toml")
    return local if local.is_file() else None


def _private_key(env: EnvSettings) -> SecretStr | None:
    if env.github_private_key is not None:
        # Keys pasted into env files often carry literal "\n" instead of newlines.
        return SecretStr(env.github_private_key.get_secret_value().replace("\\n", "\n"))
    if env.github_private_key_path is not None:
        try:
            return SecretStr(env.github_private_key_path.read_text(encoding="utf-8"))
        except OSError as err:
            raise ConfigError(
                f"GITHUB_PRIVATE_KEY_PATH: cannot read {env.github_private_key_path}: "
                f"{err.strerror}"
            ) from None
    return None


def load_settings() -> Settings:
    """Read the environment and the operator config; raise ConfigError naming the bad key."""
    try:
        env = EnvSettings()
    except ValidationError as err:
        raise ConfigError(describe_invalid(err, limit=1)) from None
    config = load_config(_config_path(env))
    return Settings(env=env, config=config, private_key=_private_key(env))
