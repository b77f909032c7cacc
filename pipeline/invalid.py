"""What a pydantic ValidationError says, in one line naming each key: the one wording the
operator (settings, config), a repository owner (its config file) and a model (its verdict) get."""

from __future__ import annotations

from pydantic import ValidationError


def describe_invalid(
    err: ValidationError, *, where: str = "", limit: int | None = None, show_input: bool = True
) -> str:
    """`config.toml: 'tier2.cost_budget': Input should be a valid number (got 'x')`, or
    `config.toml: unknown key 'foo'`, for the first `limit` problems, joined by "; ".

    where: the file each problem is in; show_input=False leaves out what was given.
    """
    prefix = f"{where}: " if where else ""
    lines = []
    for e in err.errors()[:limit]:
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"{prefix}unknown key '{key}'")
        else:
            got = f" (got {e.get('input')!r})" if show_input else ""
            lines.append(f"{prefix}'{key}': {e['msg']}{got}")
    return "; ".join(lines)
