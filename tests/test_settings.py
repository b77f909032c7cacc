"""Settings: the environment and the operator TOML, with errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import load_settings
from pipeline.config import ConfigError, OperatorConfig
from tests.helpers import settings_with

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.toml"


def test_defaults_without_any_config(clean_env: None) -> None:
    settings = load_settings()
    assert settings.config == OperatorConfig()
    assert settings.env.github_api_url == "https://api.github.com"
    assert settings.env.redis_url == "redis://localhost:6379/0"
    assert not settings.app_configured
    assert settings.webhook_secret is None
    assert settings.config.tier1.provider == "openai"
    assert settings.config.review.checks[0] == "audit_verdict"


def test_the_example_config_is_valid(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURE_CREW_CONFIG", str(EXAMPLE))
    settings = load_settings()
    assert settings.config.tier2.cost_budget == 5.0
    assert settings.config.price("claude-sonnet-5-5") is not None


def test_a_local_config_toml_is_read(clean_env: None, tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[github]\ntrigger_label = "crew"\n')
    assert load_settings().config.github.trigger_label == "crew"


def test_a_tier_section_keeps_its_tiers_own_model(clean_env: None, tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[tier1]\nbase_url = "http://gpu:8000/v1"\n[tier3]\ncost_budget = 5.0\n'
    )
    config = load_settings().config
    assert (config.tier3.model, config.tier3.cost_budget) == ("claude-opus-5-5", 5.0)
    assert (config.tier1.provider.value, config.tier1.model) == ("openai", "qwen3-235b")
    (tmp_path / "config.toml").write_text('[tier1]\nprovider = "anthropic"\n')
    assert load_settings().config.tier1.model == "claude-sonnet-5-5"  # not the local model


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ('[tier1]\nmodle = "x"\n', "tier1.modle"),
        ('[github]\nmax_attempts = "three"\n', "github.max_attempts"),
        ('[review]\nchecks = ["audit_verdict", "vibes"]\n', "review.checks.1"),
        ("[nonsense]\nx = 1\n", "nonsense"),
        ('[tier2]\nprovider = "bard"\n', "tier2.provider"),
    ],
)
def test_bad_keys_and_types_name_the_key(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, toml: str, named: str
) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        settings_with(monkeypatch, {}, config=toml, tmp_path=tmp_path)


def test_a_bad_environment_value_names_the_variable(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="GITHUB_APP_ID"):
        settings_with(monkeypatch, {"GITHUB_APP_ID": "not-a-number"})


def test_private_key_from_text_or_path(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = settings_with(monkeypatch, {"GITHUB_APP_ID": "5", "GITHUB_PRIVATE_KEY": "a\\nb"})
    assert settings.private_key is not None
    assert settings.private_key.get_secret_value() == "a\nb"
    assert settings.app_configured
    monkeypatch.delenv("GITHUB_PRIVATE_KEY")
    (tmp_path / "key.pem").write_text("PEM")
    settings = settings_with(monkeypatch, {"GITHUB_PRIVATE_KEY_PATH": str(tmp_path / "key.pem")})
    assert settings.private_key is not None
    assert settings.private_key.get_secret_value() == "PEM"
    monkeypatch.setenv("GITHUB_PRIVATE_KEY_PATH", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match="GITHUB_PRIVATE_KEY_PATH"):
        load_settings()


def test_missing_config_file_is_an_error(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURE_CREW_CONFIG", "/nonexistent/config.toml")
    with pytest.raises(ConfigError, match="not found"):
        load_settings()


def test_config_names_exactly_the_audit_tools_that_exist() -> None:
    from typing import get_args

    from pipeline.audit_tools import AUDIT_TOOLS
    from pipeline.config import AuditToolName

    assert set(get_args(AuditToolName)) == set(AUDIT_TOOLS)
