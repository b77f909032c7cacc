"""A job that does nothing, in a module that imports nothing: RQ's own pickup is timed with it."""


def noop() -> None:
    """Nothing."""
