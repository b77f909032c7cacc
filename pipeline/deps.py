"""What every job is given: the settings and the adapters, and the config narrowed for a task."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic as time_now
from typing import TYPE_CHECKING

from pipeline.errors import PermanentError
from pipeline.models import TaskRecord
from pipeline.repo_config import PATH as REPO_CONFIG_PATH
from pipeline.repo_config import narrow, parse_repo_config
from pipeline.status import Reporter

if TYPE_CHECKING:
    from bot.github import GitHubApp
    from bot.github_repo import RepoClient
    from bot.queue import TaskQueue
    from bot.settings import Settings
    from bot.store import TaskStore
    from pipeline.config import OperatorConfig
    from pipeline.workspace import Workspace


@dataclass(frozen=True)
class Deps:
    settings: Settings
    store: TaskStore
    queue: TaskQueue
    github: GitHubApp | None  # None when no App is configured: local tasks need none
    workspace: Workspace
    repos: Callable[[TaskRecord], RepoClient]  # GitHub's client, or local mode's recorder
    deadline: float | None = None  # time.monotonic() by which generation must have ended

    def check_deadline(self) -> None:
        """The model SDKs swallow RQ's timeout signal, so each attempt checks the clock too."""
        if self.deadline is not None and time_now() > self.deadline:
            limit = self.settings.config.worker.task_timeout_s
            raise PermanentError(
                f"task passed its deadline ({limit} s job timeout)",
                public=f"the task took longer than its {limit} s limit",
            )

    def repo(self, record: TaskRecord) -> RepoClient:
        """The client every side effect of the task goes through (the one local-mode seam)."""
        return self.repos(record)

    def reporter(self, gh: RepoClient) -> Reporter:
        login = gh.identity().bot_login
        return Reporter(self.store, gh, login, self.settings.config.github.max_attempts)


def repository_config(record: TaskRecord, deps: Deps) -> OperatorConfig:
    """The operator's config narrowed by the repository's own file on its default branch."""
    spec = record.spec
    text = deps.workspace.read_base_file(spec.repo_id, spec.default_branch, REPO_CONFIG_PATH)
    repo = parse_repo_config(text)
    deps.store.save_blob(spec.id, "repo-config", repo.model_dump_json())
    return narrow(deps.settings.config, repo)
