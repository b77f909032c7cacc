"""A stateful GitHub double (REST under /api/v3, a git remote, signed webhooks) for e2e tests."""

from tests.doubles.github.double import GitHubDouble
from tests.doubles.github.errors import ApiError

__all__ = ["ApiError", "GitHubDouble"]
