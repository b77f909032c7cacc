"""The CLI's two kinds of failure, each a one-line reason."""

from __future__ import annotations


class CliError(Exception):
    """A one-line reason for exit status 1."""


class UsageError(CliError):
    """A one-line reason for exit status 2."""
