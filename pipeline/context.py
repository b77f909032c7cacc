"""What every job and handler is given: the operator config, the model endpoints, the adapters.

bot/backends.py builds it, once per job. Once a task's repository config is read, the stages get
a copy narrowed by it (`narrowed`), so the operator's wider config is out of their reach.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from time import monotonic as time_now
from typing import TYPE_CHECKING

from pipeline.errors import PermanentError
from pipeline.repo_config import PATH as REPO_CONFIG_PATH
from pipeline.repo_config import RepoConfig, narrow, parse_repo_config
from pipeline.status import Reporter

if TYPE_CHECKING:
    from pipeline.config import OperatorConfig
    from pipeline.endpoints import ModelEndpoints
    from pipeline.models import TaskRecord
    from pipeline.ports import App, Queue, Repo, Store
    from pipeline.workspace import Workspace

REPO_CONFIG_BLOB = "repo-config"


@dataclass(frozen=True)
class Context:
    config: OperatorConfig  # the operator's; a task's stages see it narrowed by the repository
    endpoints: ModelEndpoints
    store: Store
    queue: Queue
    workspace: Workspace  # its home is FEATURE_CREW_HOME
    repos: Callable[[TaskRecord], Repo]  # GitHub's client, or local mode's recorder
    github: App | None = None  # None when no App is configured: local tasks need none
    deadline: float | None = None  # time.monotonic() by which generation must have ended
    delivery_id: str = ""  # the webhook delivery a handler is deciding on

    def app(self) -> App:
        """The GitHub App; a delivery cannot be handled without one."""
        if self.github is None:
            raise PermanentError("GitHub App credentials missing", public="App not configured")
        return self.github

    def check_deadline(self) -> None:
        """The model SDKs swallow RQ's timeout signal, so each attempt checks the clock too."""
        if self.deadline is not None and time_now() > self.deadline:
            limit = self.config.worker.task_timeout_s
            raise PermanentError(
                f"task passed its deadline ({limit} s job timeout)",
                public=f"the task took longer than its {limit} s limit",
            )

    def repo(self, record: TaskRecord) -> Repo:
        """The client every side effect of the task goes through (the one local-mode seam)."""
        return self.repos(record)

    def reporter(self, gh: Repo) -> Reporter:
        login = gh.identity().bot_login
        return Reporter(self.store, gh, login, self.config.github.max_attempts)


@dataclass(frozen=True)
class TaskRun:
    """A task's stages once its repository's config is read: the context narrowed by it (the
    operator's wider config is out of their reach) and the reporter its state moves through."""

    ctx: Context
    reporter: Reporter

    @property
    def gh(self) -> Repo:
        return self.reporter.gh

    @property
    def config(self) -> OperatorConfig:
        return self.ctx.config


def narrowed(record: TaskRecord, ctx: Context, reporter: Reporter) -> TaskRun:
    """The task's run with the operator's config narrowed by the repository's own file on its
    default branch (kept beside the task, for the review)."""
    spec = record.spec
    text = ctx.workspace.read_base_file(spec.repo_id, spec.default_branch, REPO_CONFIG_PATH)
    repo = parse_repo_config(text)
    ctx.store.save_blob(spec.id, REPO_CONFIG_BLOB, repo.model_dump_json())
    return TaskRun(replace(ctx, config=narrow(ctx.config, repo)), reporter)


def narrowed_as_kept(task_id: str, ctx: Context) -> Context:
    """The same narrowing, from the repository config the task's run kept (none: as is)."""
    raw = ctx.store.load_blob(task_id, REPO_CONFIG_BLOB)
    repo = RepoConfig.model_validate_json(raw) if raw else RepoConfig()
    return replace(ctx, config=narrow(ctx.config, repo))
