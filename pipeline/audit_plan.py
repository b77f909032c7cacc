"""Before generation: the target's environment and the base commit's tests, or why not."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.audit import run_audit
from pipeline.baseline import TTL_S, Baseline, Cache, CouldNotAudit, judge_base_tests, tests_key
from pipeline.basetree import is_env_file, sweep
from pipeline.config import SelfAuditConfig
from pipeline.findings import Finding
from pipeline.models import AuditReport
from pipeline.setup_phase import build_env
from pipeline.target_env import EnvBuild, SetupFailed, TargetEnv, ensure_target_env

log = logging.getLogger(__name__)

# Files whose change the base environment or the project's rules do not follow: flagged.
RULE_FILES = ("ruff.toml", ".ruff.toml", "mypy.ini", ".mypy.ini", "pytest.ini", "tox.ini")


@dataclass(frozen=True)
class Unjudgeable:
    """The audit cannot judge this task: our side or the base commit, never the change."""

    reason: str  # one line, for the status comment
    detail: str = ""  # a tool's output tail, for the neutral check run


@dataclass
class AuditPlan:
    target: TargetEnv | None
    baseline: Baseline
    cache_dir: Path
    env: EnvBuild

    def audit(self, root: Path, changed: Sequence[str], config: SelfAuditConfig) -> AuditReport:
        """The change's audit: only what it introduced counts; what it cannot judge is noted."""
        return run_audit(
            root,
            changed,
            config,
            cache_dir=self.baseline.tool_cache,
            target=self.target,
            base=self.baseline,
            notes=change_notes(changed),
        )

    def close(self) -> None:
        self.baseline.close()


def change_notes(changed: Sequence[str]) -> tuple[str, ...]:
    deps = sorted(f for f in changed if is_env_file(f))
    rules = sorted(f for f in changed if f.rsplit("/", 1)[-1] in (*RULE_FILES, "conftest.py"))
    notes = []
    if deps:
        notes.append(
            f"The change edits {', '.join(deps)}: it was audited in the base commit's "
            "environment (nothing it adds was installed), and its effect is unverified."
        )
    if rules:
        notes.append(f"The change edits {', '.join(rules)}, which set the rules it was audited by.")
    return tuple(notes)


def prepare_audit(  # noqa: PLR0913 - keyword-only, each named at the call
    *,
    cache: Cache,
    home: Path,
    repo_id: int,
    repo_path: Path,
    base_sha: str,
    config: SelfAuditConfig,
    sandbox_supported: bool | None = None,
) -> AuditPlan | Unjudgeable:
    """Build (or reuse) the environment and measure the base's tests, before any model spend."""
    cache_dir = home / "cache" / str(repo_id)
    sweep(home / "scratch")
    try:
        env = ensure_target_env(
            home=home,
            repo_id=repo_id,
            repo_path=repo_path,
            base_sha=base_sha,
            config=config,
            cache_dir=cache_dir,
            build=build_env,
            sandbox_supported=sandbox_supported,
        )
    except SetupFailed as err:
        log.warning("setup failed for repository %s: %s", repo_id, err.reason)
        reason = (
            "could not audit: the repository's environment could not be built from the base"
            f" commit's declarations ({err.reason}); this is not the change's fault"
        )
        return Unjudgeable(reason, err.output)
    log.info("target env for %s: reused=%s in %.2f s", repo_id, env.reused, env.duration_s)
    baseline = Baseline(
        cache=cache,
        repo_id=repo_id,
        repo_path=repo_path,
        base_sha=base_sha,
        config=config,
        target=env.env,
        cache_dir=cache_dir,
        scratch=home / "scratch",
        sandbox_supported=sandbox_supported,
    )
    tests = _base_tests(baseline, cache, config)
    if isinstance(tests, CouldNotAudit):
        baseline.close()
        return Unjudgeable(f"could not audit: {tests.reason}", tests.output)
    baseline.tests = list(tests)
    return AuditPlan(env.env, baseline, cache_dir, env)


def _base_tests(
    baseline: Baseline, cache: Cache, config: SelfAuditConfig
) -> Sequence[Finding] | CouldNotAudit:
    if "pytest" not in config.tools:
        return []
    key = ("base-tests", baseline.repo_id, baseline.base_sha, tests_key(config, baseline.target))
    cached = cache.cache_get(*key)
    if cached is not None:
        return [Finding.model_validate(item) for item in cached]
    judged = judge_base_tests(
        baseline.tree(),
        config,
        target=baseline.target,
        cache_dir=baseline.cache_dir,
        sandbox_supported=baseline.sandbox_supported,
    )
    if not isinstance(judged, CouldNotAudit):  # an unjudgeable base is measured again next time
        cache.cache_set([f.model_dump() for f in judged], TTL_S, *key)
    return judged
