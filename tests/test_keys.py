"""The Redis key layout: the strings are stored data's addresses, so they never change."""

from __future__ import annotations

from bot import keys


def test_the_keys_keep_their_stored_spelling() -> None:
    assert [
        keys.task("t-1"),
        keys.task_events("t-1"),
        keys.task_blob("t-1", "diff"),
        keys.task_spent("t-1"),
        keys.task_local("t-1", "labels"),
        keys.lease("t-1"),
        keys.issue(7, 4),
        keys.pull(7, 5),
        keys.spend(2, "2026-01-02"),
        keys.reserved(2, "2026-01-02"),
        keys.stats("unrouted", "2026-01-02"),
        keys.cache("base-tests", 7, "abc"),
        keys.app(4242),
        keys.token(1, "hello"),
        keys.local_threads(7),
        keys.local_seq(7),
    ] == [
        "fc:task:t-1",
        "fc:task:t-1:events",
        "fc:task:t-1:diff",
        "fc:task:t-1:spent",
        "fc:task:t-1:local:labels",
        "fc:lease:t-1",
        "fc:issue:7:4",
        "fc:pull:7:5",
        "fc:spend:2:2026-01-02",
        "fc:reserved:2:2026-01-02",
        "fc:stats:unrouted:2026-01-02",
        "fc:cache:base-tests:7:abc",
        "fc:app:4242",
        "fc:token:1:hello",
        "fc:local:7:threads",
        "fc:local:7:seq",
    ]
    assert (keys.TASKS, keys.FORGOTTEN_REPOS, keys.LOCAL_IDS) == (
        "fc:tasks",
        "fc:forgotten-repos",
        "fc:local:ids",
    )
    assert keys.task_id_of(keys.task_events("t-1")) == "t-1"
    assert keys.task_events("t-1").startswith(keys.TASK_PREFIX)


def test_the_delivery_keys_keep_their_stored_spelling() -> None:
    assert (keys.delivery_record("d-1"), keys.delivery_payload("d-1")) == (
        "fc:delivery:d-1",
        "fc:delivery:d-1:payload",
    )
