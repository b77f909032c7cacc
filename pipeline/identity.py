"""The App's identity: who our comments, reviews and commits are by."""

from __future__ import annotations

from pipeline.frozen import Frozen


class AppIdentity(Frozen):
    id: int
    slug: str
    bot_login: str

    @classmethod
    def of_app(cls, app_id: int, slug: str) -> AppIdentity:
        return cls(id=app_id, slug=slug, bot_login=f"{slug}[bot]")

    @property
    def commit_email(self) -> str:
        """GitHub's noreply address, which links a commit to the App's bot account."""
        return f"{self.id}+{self.bot_login}@users.noreply.github.com"
