"""Plain-text renderings of the CLI's JSON documents."""

from __future__ import annotations

from typing import Any

from pipeline.models import TaskState


def task_view(task: dict[str, Any]) -> str:
    spec, p = task["spec"], task["progress"]
    lines = [
        f"{spec['id']}  {spec['repo_full_name']}#{spec['issue_number']}  {p['state']}",
        f"  tier {p['tier']} ({p['model']})  attempts {p['attempts']}  cost ${p['cost_usd']:.4f}",
        f"  branch {spec['branch']}  PR {p['pr_url'] or '-'}",
    ]
    if p.get("error"):
        lines.append(f"  error: {p['error']}")
    if p.get("notice") and p["state"] == TaskState.QUEUED:
        lines.append(f"  waiting: {p['notice']}")
    if p.get("question"):
        lines.append(f"  question: {p['question']}")
    if p.get("review"):
        lines.append(f"  verdict: {p['review']['action']}: {p['review']['reason']}")
    lines += [f"  {t['at']:.0f} {t['state']} {t['note']}" for t in task["transitions"]]
    return "\n".join(lines)


def history_view(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no tasks"
    return "\n".join(
        f"{r['id']:<40} {r['repo']}#{r['issue']:<6} {r['state']:<12} tier {r['tier'] or '-'} "
        f"${r['cost_usd']:.4f} {r['duration_s']:.0f}s"
        for r in rows
    )


def queue_view(data: dict[str, Any]) -> str:
    queues = "  ".join(f"{k}={v}" for k, v in data["queues"].items())
    return f"queues: {queues}\n{history_view(data['tasks'])}"


def metrics_view(data: dict[str, Any]) -> str:
    lines = [f"last {len(data['days'])} UTC days ({data['days'][0]} to {data['days'][-1]})"]
    for tier, stats in data["tiers"].items():
        figures = (f"{k}={_figure(v)}" for k, v in stats.items() if not isinstance(v, dict))
        lines.append(f"tier {tier}: " + "  ".join(figures))
    return "\n".join(lines) if data["tiers"] else lines[0] + "\nno tasks"


def _figure(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
