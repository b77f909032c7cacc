"""The tier router: size from the spec, risk from keywords, labels that override."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from handlers.issues import spec_from_event
from pipeline.config import TriageConfig
from pipeline.router import Route, Size, estimate_lines, route_spec, route_task, size_for

TRIAGE = TriageConfig()


def route(title: str, body: str = "", labels: tuple[str, ...] = ()) -> Route:
    return route_task(title=title, body=body, labels=labels, triage=TRIAGE)


BIG_BODY = "\n".join(
    [
        "Refactor the storage layer and add a database migration for the new schema.",
        *(f"- requirement {i}: add endpoint `handler_{i}` in `api/v{i}.py`" for i in range(12)),
    ]
)


def test_a_small_change_goes_to_tier_1() -> None:
    r = route("Add a `greet()` helper")
    assert (r.size, r.risk, r.tier) == (Size.XS, "normal", 1)
    assert r.reasons[0].startswith("size XS: about ")
    assert r.reasons[-1].startswith("tier 1")


def test_a_larger_spec_grows_in_size_and_tier() -> None:
    medium = "\n".join(f"- the form must validate field {i} and show an error" for i in range(5))
    r = route("Validate the signup form", medium)
    assert r.size in (Size.S, Size.M)
    assert r.tier == 2

    big = route("Reorganise storage", BIG_BODY)
    assert big.size in (Size.L, Size.XL)
    assert big.tier == 3
    assert "'migration'" in big.reasons[0]
    assert "12 requirements" in big.reasons[0]


def test_the_estimate_counts_what_it_says() -> None:
    plain, _ = estimate_lines("Fix it", "")
    more, how = estimate_lines("Fix it", "- one\n- two\n\nEdit `src/app.py` and `parse()`.")
    assert more > plain
    assert "2 requirements +30" in how
    assert "1 file +20" in how
    assert "1 identifier +8" in how


def test_sizes_follow_the_thresholds() -> None:
    triage = TriageConfig(xs_threshold=10, s_threshold=20, m_threshold=30, l_threshold=40)
    assert [size_for(n, triage) for n in (10, 11, 21, 31, 41)] == list(Size)


def test_high_risk_keywords_win_and_force_tier_3() -> None:
    r = route("Fix a typo in the auth docs")
    assert (r.risk, r.tier) == ("high", 3)
    assert "'auth'" in r.reasons[1]


def test_keywords_match_whole_words_case_insensitively() -> None:
    assert route("Handle DELETE requests").risk == "high"
    assert route("Store secrets safely").risk == "high"
    # "author" contains "auth" and "logger" contains "log": neither is the word.
    assert route("Show the author name via the logger").risk == "normal"
    assert route("Update the Docs").risk == "low"


def test_low_risk_small_change_is_tier_1_and_normal_risk_small_is_tier_2() -> None:
    body = " ".join(["word"] * 150)  # about 70 lines: size S
    assert route("Fix a typo", body).size is Size.S
    assert route("Fix a typo", body).tier == 1
    assert route("Fix the widget", body).tier == 2


def test_risk_labels_count() -> None:
    assert route("Tidy up", labels=("security",)).risk == "high"


def _labelled_issue(*labels: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(
        (Path(__file__).parent / "payloads/issues/labeled.payload.json").read_text()
    )
    issue = {**event["issue"], "title": "Add a `greet()` helper", "body": ""}
    labelled = {**issue, "labels": [{"name": name} for name in labels]}
    return {**event, "installation": {"id": 1}, "issue": labelled}


def test_an_issue_labelled_security_is_routed_as_high_risk() -> None:
    """The issue's labels reach the router through its task's spec, not only a tier label."""
    plain = route_spec(spec_from_event(_labelled_issue("feature-crew"), "d-1"), TRIAGE)
    assert (plain.risk, plain.tier) == ("normal", 1)
    spec = spec_from_event(_labelled_issue("feature-crew", "security"), "d-2")
    risky = route_spec(spec, TRIAGE)
    assert (risky.risk, risky.tier) == ("high", 3)
    assert "'security'" in risky.reasons[1]
    assert spec.labels == ("feature-crew", "security")


def test_a_tier_label_on_the_issue_reaches_the_route_whatever_its_case() -> None:
    spec = spec_from_event(_labelled_issue("feature-crew", "Feature-Crew:Tier-2"), "d-3")
    assert spec.tier_override == 2
    assert route_spec(spec, TRIAGE).tier == 2


def test_tier_labels_override_the_router_and_say_so() -> None:
    r = route("Reorganise storage", BIG_BODY, labels=("feature-crew", "feature-crew:tier-1"))
    assert r.tier == 1
    assert r.size in (Size.L, Size.XL)
    assert "label feature-crew:tier-1 overrides the router (tier 3" in r.reasons[-1]
    assert route("Add `greet()`", labels=("Feature-Crew:Tier-3",)).tier == 3


def test_custom_keywords_come_from_the_config() -> None:
    triage = TriageConfig(high_risk_keywords=("billing",), low_risk_keywords=())
    r = route_task(title="Change billing text", body="", labels=(), triage=triage)
    assert (r.risk, r.tier) == ("high", 3)
    r = route_task(title="Fix the auth typo", body="", labels=(), triage=triage)
    assert r.risk == "normal"
