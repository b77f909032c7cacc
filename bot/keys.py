"""The Redis key layout: every key the App stores under `fc:`, built here and nowhere else.

The strings are the stored data's addresses: changing one orphans what is stored under it.
"""

from __future__ import annotations

PREFIX = "fc"
TASK_TTL_S = 90 * 24 * 3600  # every key of a task lives this long after its last write


def redis_key(*parts: object) -> str:
    return ":".join((PREFIX, *(str(p) for p in parts)))


# Tasks: the record hash (spec, progress, state, tally), its transitions, its blobs.
TASKS = redis_key("tasks")  # sorted set: task id by creation time
TASK_PREFIX = redis_key("task", "")  # every key of a task starts so: "fc:task:<id>..."
TASK_KEYS = redis_key("task", "*")  # the pattern matching all of them


def task(task_id: str) -> str:
    return redis_key("task", task_id)


def task_id_of(key: str) -> str:
    """The task a key under TASK_PREFIX belongs to."""
    return key.split(":")[2]


def task_events(task_id: str) -> str:
    return redis_key("task", task_id, "events")


def task_blob(task_id: str, name: str) -> str:
    return redis_key("task", task_id, name)


def task_spent(task_id: str) -> str:
    return redis_key("task", task_id, "spent")


def lease(task_id: str) -> str:
    return redis_key("lease", task_id)


def issue(repo_id: int, issue_number: int) -> str:
    """The live task of an issue."""
    return redis_key("issue", repo_id, issue_number)


def pull(repo_id: int, pr_number: int) -> str:
    """The task of a pull request."""
    return redis_key("pull", repo_id, pr_number)


# Spend and counters, per tier and UTC day.
def spend(tier: int, day: str) -> str:
    return redis_key("spend", tier, day)


def reserved(tier: int, day: str) -> str:
    return redis_key("reserved", tier, day)


def stats(tier: str, day: str) -> str:
    return redis_key("stats", tier, day)


def cache(*parts: object) -> str:
    return redis_key("cache", *parts)


# The GitHub App: its identity and its installation tokens (sealed).
def app(app_id: object) -> str:
    return redis_key("app", app_id)


def token(installation_id: int, repo_name: str) -> str:
    return redis_key("token", installation_id, repo_name)


# Webhook deliveries: what arrived (event, state) and its raw payload, kept for a few days.
def delivery_record(delivery_id: str) -> str:
    return redis_key("delivery", delivery_id)


def delivery_payload(delivery_id: str) -> str:
    return redis_key("delivery", delivery_id, "payload")


FORGOTTEN_REPOS = redis_key("forgotten-repos")  # hash: repository id -> time of the uninstall

# Local mode: the thread numbers of a repository's branches, and a task's local "GitHub".
LOCAL_IDS = redis_key("local", "ids")


def local_threads(repo_id: int) -> str:
    return redis_key("local", repo_id, "threads")


def local_seq(repo_id: int) -> str:
    return redis_key("local", repo_id, "seq")


def task_local(task_id: str, kind: str) -> str:
    return redis_key("task", task_id, "local", kind)
