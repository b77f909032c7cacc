"""JSON shapes of GitHub's REST API (2022-11-28) and webhooks, built from the double's state."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from tests.doubles.github import gitops
from tests.doubles.github.state import (
    REACTIONS,
    CheckRun,
    Comment,
    Installation,
    Issue,
    Label,
    Pull,
    Reaction,
    Repo,
    Review,
    State,
    User,
)

_USER_LINKS = {
    "followers_url": "/followers",
    "following_url": "/following{/other_user}",
    "gists_url": "/gists{/gist_id}",
    "starred_url": "/starred{/owner}{/repo}",
    "subscriptions_url": "/subscriptions",
    "organizations_url": "/orgs",
    "repos_url": "/repos",
    "events_url": "/events{/privacy}",
    "received_events_url": "/received_events",
}
_REPO_LINKS = {
    "forks_url": "forks",
    "keys_url": "keys{/key_id}",
    "collaborators_url": "collaborators{/collaborator}",
    "teams_url": "teams",
    "hooks_url": "hooks",
    "issue_events_url": "issues/events{/number}",
    "events_url": "events",
    "assignees_url": "assignees{/user}",
    "branches_url": "branches{/branch}",
    "tags_url": "tags",
    "blobs_url": "git/blobs{/sha}",
    "git_tags_url": "git/tags{/sha}",
    "git_refs_url": "git/refs{/sha}",
    "trees_url": "git/trees{/sha}",
    "statuses_url": "statuses/{sha}",
    "languages_url": "languages",
    "stargazers_url": "stargazers",
    "contributors_url": "contributors",
    "subscribers_url": "subscribers",
    "subscription_url": "subscription",
    "commits_url": "commits{/sha}",
    "git_commits_url": "git/commits{/sha}",
    "comments_url": "comments{/number}",
    "issue_comment_url": "issues/comments{/number}",
    "contents_url": "contents/{+path}",
    "compare_url": "compare/{base}...{head}",
    "merges_url": "merges",
    "archive_url": "{archive_format}{/ref}",
    "downloads_url": "downloads",
    "issues_url": "issues{/number}",
    "pulls_url": "pulls{/number}",
    "milestones_url": "milestones{/number}",
    "labels_url": "labels{/name}",
    "releases_url": "releases{/id}",
    "deployments_url": "deployments",
    "notifications_url": "notifications{?since,all,participating}",
}


def iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def node_id(kind: str, ident: int) -> str:
    return base64.b64encode(f"0{kind}{ident}".encode()).decode()


def user_shape(web: str, api: str, login: str, ident: int, kind: str) -> dict[str, Any]:
    url = f"{api}/users/{login}"
    shape: dict[str, Any] = {
        "login": login,
        "id": ident,
        "node_id": node_id(kind, ident),
        "avatar_url": f"{web}/avatars/u/{ident}",
        "gravatar_id": "",
        "url": url,
        "html_url": f"{web}/{login}",
        "type": kind,
        "site_admin": False,
    }
    shape.update({key: url + suffix for key, suffix in _USER_LINKS.items()})
    return shape


class Shapes:
    """Render state objects as the JSON GitHub returns; call with the state lock held."""

    def __init__(self, state: State, web_url: str, api_url: str, app: dict[str, Any]) -> None:
        self.state, self.web, self.api, self.app = state, web_url, api_url, app

    def user(self, login: str) -> dict[str, Any]:
        user: User = self.state.user(login)
        return user_shape(self.web, self.api, login, user.id, user.type)

    def repo(self, repo: Repo) -> dict[str, Any]:
        url = f"{self.api}/repos/{repo.full_name}"
        web = f"{self.web}/{repo.full_name}"
        sizes = {"forks_count": 0, "stargazers_count": 0, "watchers_count": 0, "size": 1}
        open_issues = sum(
            1
            for (r, _), i in self.state.issues.items()
            if r == repo.full_name and i.state == "open"
        )
        shape: dict[str, Any] = {
            "id": repo.id,
            "node_id": node_id("Repository", repo.id),
            "name": repo.name,
            "full_name": repo.full_name,
            "private": repo.private,
            "visibility": "private" if repo.private else "public",
            "owner": self.user(repo.owner),
            "html_url": web,
            "description": None,
            "fork": False,
            "url": url,
            "git_url": f"{self.web.replace('http', 'git', 1)}/{repo.full_name}.git",
            "ssh_url": f"git@{self.web.split('://', 1)[1]}:{repo.full_name}.git",
            "clone_url": f"{self.web}/{repo.full_name}.git",
            "svn_url": web,
            "mirror_url": None,
            "homepage": None,
            "language": "Python",
            **sizes,
            "default_branch": repo.default_branch,
            "open_issues_count": open_issues,
            "open_issues": open_issues,
            "forks": 0,
            "watchers": 0,
            "subscribers_count": 0,
            "network_count": 0,
            "license": None,
            "topics": [],
            "is_template": False,
            "has_issues": True,
            "has_projects": False,
            "has_wiki": False,
            "has_pages": False,
            "has_downloads": True,
            "has_discussions": False,
            "archived": False,
            "disabled": False,
            "web_commit_signoff_required": False,
            "allow_squash_merge": True,
            "allow_merge_commit": True,
            "allow_rebase_merge": True,
            "pushed_at": iso(repo.created_at),
            "created_at": iso(repo.created_at),
            "updated_at": iso(repo.created_at),
        }
        shape.update({key: f"{url}/{suffix}" for key, suffix in _REPO_LINKS.items()})
        return shape

    def label(self, repo: Repo, label: Label) -> dict[str, Any]:
        return {
            "id": label.id,
            "node_id": node_id("Label", label.id),
            "url": f"{self.api}/repos/{repo.full_name}/labels/{label.name}",
            "name": label.name,
            "color": label.color,
            "default": False,
            "description": label.description,
            "archived_at": None,
            "archived_by": None,
        }

    def rollup(self, url: str, reactions: list[Reaction]) -> dict[str, Any]:
        counts = {name: sum(1 for r in reactions if r.content == name) for name in REACTIONS}
        return {"url": url, "total_count": len(reactions), **counts}

    def issue(self, issue: Issue) -> dict[str, Any]:
        repo = self.state.repos[issue.repo]
        url = f"{self.api}/repos/{issue.repo}/issues/{issue.number}"
        kind = "pull" if issue.is_pull else "issues"
        shape: dict[str, Any] = {
            "id": issue.id,
            "node_id": node_id("Issue", issue.id),
            "url": url,
            "repository_url": f"{self.api}/repos/{issue.repo}",
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "events_url": f"{url}/events",
            "html_url": f"{self.web}/{issue.repo}/{kind}/{issue.number}",
            "number": issue.number,
            "title": issue.title,
            "body": issue.body,
            "user": self.user(issue.user),
            "labels": [self.label(repo, repo.labels[name]) for name in issue.labels],
            "state": issue.state,
            "state_reason": issue.state_reason,
            "locked": False,
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "comments": len(self.state.comments_on(issue.repo, issue.number)),
            "created_at": iso(issue.created_at),
            "updated_at": iso(issue.updated_at),
            "closed_at": iso(issue.closed_at),
            "author_association": self.association(repo, issue.user),
            "active_lock_reason": None,
            "reactions": self.rollup(f"{url}/reactions", issue.reactions),
            "performed_via_github_app": None,
        }
        if issue.is_pull:
            pulls = f"{self.api}/repos/{issue.repo}/pulls/{issue.number}"
            web = f"{self.web}/{issue.repo}/pull/{issue.number}"
            pull = self.state.pulls[(issue.repo, issue.number)]
            shape["draft"] = pull.draft
            shape["pull_request"] = {
                "url": pulls,
                "html_url": web,
                "diff_url": f"{web}.diff",
                "patch_url": f"{web}.patch",
                "merged_at": iso(pull.merged_at),
            }
        return shape

    def association(self, repo: Repo, login: str) -> str:
        if login == repo.owner:
            return "OWNER"
        if repo.permissions.get(login, "none") in ("admin", "maintain", "write"):
            return "COLLABORATOR"
        return "NONE"

    def comment(self, comment: Comment) -> dict[str, Any]:
        repo = self.state.repos[comment.repo]
        url = f"{self.api}/repos/{comment.repo}/issues/comments/{comment.id}"
        issue = self.state.issues[(comment.repo, comment.issue_number)]
        kind = "pull" if issue.is_pull else "issues"
        user = self.state.user(comment.user)
        return {
            "id": comment.id,
            "node_id": node_id("IssueComment", comment.id),
            "url": url,
            "html_url": f"{self.web}/{comment.repo}/{kind}/{comment.issue_number}"
            f"#issuecomment-{comment.id}",
            "issue_url": f"{self.api}/repos/{comment.repo}/issues/{comment.issue_number}",
            "body": comment.body,
            "user": self.user(comment.user),
            "created_at": iso(comment.created_at),
            "updated_at": iso(comment.updated_at),
            "author_association": self.association(repo, comment.user),
            "performed_via_github_app": self.app if user.type == "Bot" else None,
            "reactions": self.rollup(f"{url}/reactions", []),
        }

    def reaction(self, reaction: Reaction) -> dict[str, Any]:
        return {
            "id": reaction.id,
            "node_id": node_id("Reaction", reaction.id),
            "user": self.user(reaction.user),
            "content": reaction.content,
            "created_at": iso(reaction.created_at),
        }

    def shas(self, pull: Pull) -> tuple[str, str]:
        """Head and base sha: live from the bare repo while open, frozen once closed."""
        if pull.head_sha_at_close and pull.base_sha_at_close:
            return pull.head_sha_at_close, pull.base_sha_at_close
        git_dir = self.state.repos[pull.repo].git_dir
        head = gitops.branch_sha(git_dir, pull.head_ref) or pull.head_sha_at_close or ""
        base = gitops.branch_sha(git_dir, pull.base_ref) or ""
        return head, base

    def pull(self, pull: Pull) -> dict[str, Any]:
        repo = self.state.repos[pull.repo]
        issue = self.state.issues[(pull.repo, pull.number)]
        head_sha, base_sha = self.shas(pull)
        files = gitops.diff(repo.git_dir, base_sha, head_sha) if head_sha and base_sha else {}
        url = f"{self.api}/repos/{pull.repo}/pulls/{pull.number}"
        web = f"{self.web}/{pull.repo}/pull/{pull.number}"
        issue_url = f"{self.api}/repos/{pull.repo}/issues/{pull.number}"
        repo_shape = self.repo(repo)
        owner = self.user(repo.owner)

        def side(ref: str, sha: str) -> dict[str, Any]:
            label = f"{repo.owner}:{ref}"
            return {"label": label, "ref": ref, "sha": sha, "user": owner, "repo": repo_shape}

        links = {
            "self": url,
            "html": web,
            "issue": issue_url,
            "comments": f"{issue_url}/comments",
            "review_comments": f"{url}/comments",
            "review_comment": f"{self.api}/repos/{pull.repo}/pulls/comments{{/number}}",
            "commits": f"{url}/commits",
            "statuses": f"{self.api}/repos/{pull.repo}/statuses/{head_sha}",
        }
        return {
            "url": url,
            "id": pull.id,
            "node_id": node_id("PullRequest", pull.id),
            "html_url": web,
            "diff_url": f"{web}.diff",
            "patch_url": f"{web}.patch",
            "issue_url": issue_url,
            "commits_url": links["commits"],
            "review_comments_url": links["review_comments"],
            "review_comment_url": links["review_comment"],
            "comments_url": links["comments"],
            "statuses_url": links["statuses"],
            "number": pull.number,
            "state": issue.state,
            "locked": False,
            "title": issue.title,
            "user": self.user(pull.user),
            "body": issue.body,
            "labels": [self.label(repo, repo.labels[name]) for name in issue.labels],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": iso(issue.created_at),
            "updated_at": iso(issue.updated_at),
            "closed_at": iso(issue.closed_at),
            "merged_at": iso(pull.merged_at),
            "merge_commit_sha": pull.merge_commit_sha,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": side(pull.head_ref, head_sha),
            "base": side(pull.base_ref, base_sha),
            "_links": {key: {"href": value} for key, value in links.items()},
            "author_association": self.association(repo, pull.user),
            "auto_merge": None,
            "draft": pull.draft,
            "merged": pull.merged,
            "mergeable": None if pull.merged else True,
            "rebaseable": None if pull.merged else True,
            "mergeable_state": "clean" if issue.state == "open" else "unknown",
            "merged_by": self.user(pull.merged_by) if pull.merged_by else None,
            "comments": len(self.state.comments_on(pull.repo, pull.number)),
            "review_comments": 0,
            "maintainer_can_modify": False,
            "commits": gitops.commit_count(repo.git_dir, base_sha, head_sha) if head_sha else 0,
            "additions": sum(f.additions for f in files.values()),
            "deletions": sum(f.deletions for f in files.values()),
            "changed_files": len(files),
        }

    def review(self, review: Review) -> dict[str, Any]:
        repo = self.state.repos[review.repo]
        pull_url = f"{self.api}/repos/{review.repo}/pulls/{review.pull_number}"
        html = f"{self.web}/{review.repo}/pull/{review.pull_number}#pullrequestreview-{review.id}"
        return {
            "id": review.id,
            "node_id": node_id("PullRequestReview", review.id),
            "user": self.user(review.user),
            "body": review.body,
            "state": review.state,
            "html_url": html,
            "pull_request_url": pull_url,
            "_links": {"html": {"href": html}, "pull_request": {"href": pull_url}},
            "submitted_at": iso(review.submitted_at) if review.state != "PENDING" else None,
            "commit_id": review.commit_id,
            "author_association": self.association(repo, review.user),
        }

    def check_run(self, run: CheckRun) -> dict[str, Any]:
        url = f"{self.api}/repos/{run.repo}/check-runs/{run.id}"
        output = {
            "title": run.output.get("title"),
            "summary": run.output.get("summary"),
            "text": run.output.get("text"),
            "annotations_count": len(run.annotations),
            "annotations_url": f"{url}/annotations",
        }
        return {
            "id": run.id,
            "node_id": node_id("CheckRun", run.id),
            "head_sha": run.head_sha,
            "external_id": run.external_id,
            "url": url,
            "html_url": f"{self.web}/{run.repo}/runs/{run.id}",
            "details_url": run.details_url,
            "status": run.status,
            "conclusion": run.conclusion,
            "started_at": iso(run.started_at),
            "completed_at": iso(run.completed_at),
            "output": output,
            "name": run.name,
            "check_suite": {"id": run.check_suite_id},
            "app": self.app,
            "pull_requests": self._pulls_at(run.repo, run.head_sha),
        }

    def _pulls_at(self, repo_name: str, sha: str) -> list[dict[str, Any]]:
        """Open PRs whose head is this commit, in the short form check runs carry."""
        found = []
        for pull in self.state.open_pulls(repo_name):
            head, base = self.shas(pull)
            if head != sha:
                continue
            repo = self.repo(self.state.repos[repo_name])
            mini = {"id": repo["id"], "url": repo["url"], "name": repo["name"]}
            found.append(
                {
                    "url": f"{self.api}/repos/{repo_name}/pulls/{pull.number}",
                    "id": pull.id,
                    "number": pull.number,
                    "head": {"ref": pull.head_ref, "sha": head, "repo": mini},
                    "base": {"ref": pull.base_ref, "sha": base, "repo": mini},
                }
            )
        return found

    def installation(self, inst: Installation) -> dict[str, Any]:
        account = self.user(inst.account)
        return {
            "id": inst.id,
            "account": account,
            "repository_selection": inst.repository_selection,
            "access_tokens_url": f"{self.api}/app/installations/{inst.id}/access_tokens",
            "repositories_url": f"{self.api}/installation/repositories",
            "html_url": f"{self.web}/settings/installations/{inst.id}",
            "app_id": self.app["id"],
            "app_slug": self.app["slug"],
            "target_id": account["id"],
            "target_type": self.state.user(inst.account).type,
            "permissions": dict(inst.permissions),
            "events": list(self.app["events"]),
            "created_at": iso(inst.created_at),
            "updated_at": iso(inst.created_at),
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "suspended_by": None,
            "suspended_at": None,
        }
