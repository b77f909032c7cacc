"""The two exception families: transient (retry later) and permanent (stop and report)."""


class FeatureCrewError(Exception):
    """Base of every error the pipeline raises on purpose."""

    def __init__(self, message: str, *, public: str | None = None) -> None:
        super().__init__(message)
        # What may be shown on GitHub: never a traceback, token or internal path.
        self.public = public or message


class TransientError(FeatureCrewError):
    """A dependency is briefly unavailable; the same step may succeed if retried."""


class PermanentError(FeatureCrewError):
    """Retrying the same step cannot help; the task stops and says why."""


SANDBOX_REQUIRED = (
    "the self-audit refused to run: this worker cannot confine generated code (it needs"
    " bubblewrap and user namespaces; see the README's Docker section). An operator who accepts"
    ' running it unconfined can set `[self_audit] sandbox = "off"`.'
)


class SandboxUnavailable(PermanentError):
    """The confinement cannot be built: the audit refuses rather than run unconfined."""

    def __init__(self, internal: str) -> None:
        super().__init__(internal, public=SANDBOX_REQUIRED)


class TaskCancelled(PermanentError):
    """The task was cancelled while this job ran; it stops without touching GitHub again."""


class GitHubError(FeatureCrewError):
    """A GitHub API call failed with a status the caller did not expect."""

    def __init__(self, status: int, message: str, *, method: str = "", path: str = "") -> None:
        super().__init__(f"GitHub {method} {path} -> {status}: {message}", public=message)
        self.status = status
        self.method = method
        self.path = path


class TransientGitHubError(GitHubError, TransientError):
    """5xx, a network failure, or a rate limit: retry after a delay."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        method: str = "",
        path: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, message, method=method, path=path)
        self.retry_after = retry_after


class PermanentGitHubError(GitHubError, PermanentError):
    """4xx other than rate limits: the request itself is wrong or not allowed."""


class WorkspaceError(PermanentError):
    """A git operation failed in a way that retrying will not fix (rejected push, bad ref)."""


class ModelError(TransientError):
    """A model API call failed after the SDK's own retries."""


class Superseded(PermanentError):
    """Another job or handler moved the task on; this job's write no longer applies."""
