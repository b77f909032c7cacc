"""Doubles of the outside world (GitHub, git remote, model APIs) as real local HTTP servers."""
