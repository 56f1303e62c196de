"""The dashboard page rendered on the server, so it is useful before (and without) its script."""

# static/dashboard.js renders the same markup from the JSON API: keep the two in step.

from __future__ import annotations

from html import escape
from typing import Any

from promoter.web.dashboard_audit import pr_link

__all__ = ["ago", "page"]

_HEAD = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>promoter</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/dashboard.css">
<script src="/static/dashboard.js" defer></script>
</head>
"""
_DECISION_COLUMNS = ("time (UTC)", "pipeline", "env", "action", "versions", "reason", "PR")


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def ago(seconds: float) -> str:
    """A compact age: `42s`, `5m`, `2h5m`, `3d4h`."""
    s = max(int(seconds), 0)
    if s < 60:  # noqa: PLR2004
        return f"{s}s"
    if s < 3600:  # noqa: PLR2004
        return f"{s // 60}m"
    if s < 86400:  # noqa: PLR2004
        h, m = divmod(s // 60, 60)
        return f"{h}h{m}m" if m else f"{h}h"
    d, h = divmod(s // 3600, 24)
    return f"{d}d{h}h" if h else f"{d}d"


def _clock(stamp: str | None) -> str:
    """`HH:MM:SS` of an ISO time."""
    return stamp[11:19] if stamp and len(stamp) >= 19 else ""  # noqa: PLR2004


def _versions(versions: dict[str, str] | None) -> str:
    return " · ".join(f"{k} {v}" for k, v in (versions or {}).items())


def _pr(number: Any, url: str | None) -> str:
    text = f"PR #{_e(number)}" if number is not None else "PR being opened"
    link = pr_link(url)
    if link:
        return f'<a class="pr" data-role="pr" href="{_e(link)}" rel="noreferrer">{text}</a>'
    return f'<span class="pr" data-role="pr" title="{_e(url or "")}">{text}</span>'


def _live(cell: dict[str, Any]) -> str:
    live = cell["live"]
    if not live:
        return '<div class="live none" data-role="live">nothing live</div>'
    parts = "".join(
        f'<span class="ver" data-artifact="{_e(k)}"><span class="art">{_e(k)}</span>'
        f'<span class="v">{_e(v)}</span></span>'
        for k, v in live.items()
    )
    return f'<div class="live" data-role="live">{parts}</div>'


def _badges(cell: dict[str, Any]) -> str:
    health = cell["health"]
    out = (
        f'<span class="badge health" data-role="health" data-health="{_e(health)}"'
        f' title="{_e(cell.get("health_reason") or "")}">{_e(health)}</span>'
    )
    if cell["held"]:
        why = cell["hold_reason"] or "held by an operator"
        out += f'<span class="badge held" data-role="held" title="{_e(why)}">held</span>'
    return f'<div class="badges">{out}</div>'


def _pending(cell: dict[str, Any]) -> str:
    pending = cell["pending"]
    if pending is None:
        return ""
    needed = pending.get("approvals_needed", 0)
    approvals = ""
    if needed or pending["approvals"]:
        valid = pending.get("approvals_valid", [])
        who = ", ".join(pending["approvals"])
        state = "ok" if len(valid) >= needed else "waiting"
        approvals = (
            f'<span class="approvals" data-role="approvals" data-state="{state}"'
            f' title="approved by: {_e(who or "nobody yet")}">'
            f"{len(valid)}/{needed} approvals{(' · ' + _e(who)) if who else ''}</span>"
        )
    merging = '<span class="merging">merging</span>' if pending.get("merging") else ""
    return (
        f'<div class="pending" data-role="pending">{_pr(pending["pr"], pending["url"])}'
        f'<span class="vers">{_e(_versions(pending["versions"]))}</span>{approvals}{merging}</div>'
    )


def _soak_bar(soak: dict[str, Any]) -> str:
    return (
        f'<span class="soak" data-role="soak" data-upstream="{_e(soak["upstream"])}">'
        f'<progress max="{soak["required_s"]}" value="{soak["elapsed_s"]}"></progress>'
        f"<span>{_e(soak['text'])}</span></span>"
    )


def _gates(cell: dict[str, Any]) -> str:
    items = []
    for gate in cell["gates"]:
        code, blocked = gate["code"], gate["state"] == "blocked"
        head = f'<li class="gate" data-gate="{_e(code)}" data-state="{_e(gate["state"])}"'
        if not blocked:
            items.append(f'{head}><span class="code">{_e(code)}</span></li>')
            continue
        body = f'<span class="why">{_e(gate["reason"])}</span>'
        if code == "soak" and cell["soak"]:
            body = "".join(_soak_bar(s) for s in cell["soak"])
        items.append(
            f'{head} title="{_e(gate["reason"])}"><span class="code">{_e(code)}</span>{body}</li>'
        )
    items.sort(key=lambda item: 'data-state="ok"' in item)
    return f'<ul class="gates" data-role="gates">{"".join(items)}</ul>' if items else ""


def cell_html(cell: dict[str, Any]) -> str:
    """The inside of one matrix cell."""
    since = ""
    if cell["live_since"]:
        age = f" · {ago(cell['live_for_s'])}" if cell.get("live_for_s") is not None else ""
        since = (
            f'<div class="since" data-role="since" title="{_e(cell["live_since"])}">'
            f"since {_e(_clock(cell['live_since']))}{age}</div>"
        )
    hold = ""
    if cell["held"]:
        why = cell["hold_reason"] or "held by an operator"
        hold = f'<div class="note hold" data-role="hold-reason">{_e(why)}</div>'
    nxt = ""
    candidate, pending = cell["candidate"], cell["pending"]
    shown = candidate and not candidate.get("refused")
    if shown and (pending is None or pending["versions"] != candidate["versions"]):
        upcoming = _e(_versions(candidate["versions"]))
        nxt = f'<div class="next" data-role="candidate">next: {upcoming}</div>'
    error = (
        f'<div class="note error" data-role="error">{_e(cell["error"])}</div>'
        if cell["error"]
        else ""
    )
    return (
        f'<div class="top">{_live(cell)}{_badges(cell)}</div>{since}{hold}'
        f"{_pending(cell)}{nxt}{_gates(cell)}{error}"
    )


def _row(pipeline: dict[str, Any], columns: list[str]) -> str:
    name = _e(pipeline["name"])
    latest = _versions(pipeline["latest"])
    head = (
        f'<th scope="row" class="pipe"><div class="pipe-name">{name}</div>'
        f'<div class="pipe-sub">{"newest: " + _e(latest) if latest else "no bundle yet"}</div>'
    )
    if pipeline["outbox"]:
        head += f'<div class="pipe-sub busy">{_e(pipeline["outbox"])} effect(s) queued</div>'
    cells = {c["name"]: c for c in pipeline["environments"]}
    tds = []
    for column in columns:
        where = f'data-pipeline="{name}" data-env="{_e(column)}"'
        cell = cells.get(column)
        if cell is None:
            tds.append(f'<td class="cell absent" {where} data-state="absent"><span>—</span></td>')
        else:
            state = _e(cell["state"])
            tds.append(f'<td class="cell" {where} data-state="{state}">{cell_html(cell)}</td>')
    return f'<tr data-pipeline="{name}">{head}</th>{"".join(tds)}</tr>'


def matrix_html(document: dict[str, Any]) -> str:
    """The matrix table's head and body."""
    columns = document["columns"]
    head = "".join(f'<th scope="col" data-env="{_e(c)}">{_e(c)}</th>' for c in columns)
    rows = "".join(_row(p, columns) for p in document["pipelines"])
    if not rows:
        rows = (
            f'<tr class="none"><td colspan="{len(columns) + 1}">No pipelines yet: a worker'
            " publishes its pipelines when it starts (<code>promoter run</code>).</td></tr>"
        )
    return f'<thead><tr><th class="corner">pipeline</th>{head}</tr></thead><tbody>{rows}</tbody>'


def decisions_html(records: list[dict[str, Any]]) -> str:
    """The decisions table's head and body."""
    head = "".join(f"<th>{c}</th>" for c in _DECISION_COLUMNS)
    rows = []
    for r in records:
        reason = str(r.get("reason") or "")
        if r.get("error"):
            reason += f" (failed: {r['error']})"
        pr = ""
        if r.get("pr") is not None:
            link = pr_link(r.get("pr_url"))
            pr = (
                f'<a href="{_e(link)}" rel="noreferrer">#{_e(r["pr"])}</a>'
                if link
                else f"#{_e(r['pr'])}"
            )
        at = str(r.get("at") or "")
        pipeline, action = _e(r.get("pipeline", "")), _e(r.get("action", ""))
        rows.append(
            f'<tr data-pipeline="{pipeline}" data-seq="{_e(r.get("seq", ""))}">'
            f'<td class="t" title="{_e(at)}">{_e(_clock(at))}</td><td>{pipeline}</td>'
            f"<td>{_e(r.get('environment', ''))}</td>"
            f'<td><span class="action" data-action="{action}">{action}</span></td>'
            f'<td class="vers">{_e(_versions(r.get("versions")))}</td>'
            f'<td class="reason" title="{_e(reason)}">{_e(reason)}</td><td>{pr}</td></tr>'
        )
    body = (
        "".join(rows)
        or f'<tr class="none"><td colspan="{len(_DECISION_COLUMNS)}">No decisions yet.</td></tr>'
    )
    return f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody>"


def page(
    document: dict[str, Any] | None, records: list[dict[str, Any]], problem: str | None
) -> str:
    """The whole page; `document` None (with `problem`) when the status could not be read."""
    matrix = matrix_html(document or {"columns": [], "pipelines": []})
    generated = _e((document or {}).get("generated_at") or "")
    alert = f' data-state="error">{_e(problem)}' if problem else " hidden>"
    return (
        f'{_HEAD}<body data-generated="{generated}">'
        '<header class="bar"><div class="brand"><span class="logo" aria-hidden="true"></span>'
        "promoter</div>"
        '<div class="meta"><span class="pill" id="readiness" data-role="readiness"'
        ' data-state="unknown">worker: checking…</span>'
        '<span class="updated" id="updated" data-role="updated">updated just now</span>'
        '<span class="pill" id="connection" data-role="connection" data-state="lost" hidden>'
        "connection lost, retrying…</span></div></header><main>"
        '<section aria-labelledby="h-matrix"><h2 id="h-matrix">Environments</h2>'
        f'<div class="problem" id="problem" data-role="problem"{alert}</div>'
        f'<div class="matrix-wrap"><table class="matrix" id="matrix" data-role="matrix">{matrix}'
        "</table></div></section>"
        '<section aria-labelledby="h-decisions"><h2 id="h-decisions">Last decisions</h2>'
        f'<table class="decisions" id="decisions" data-role="decisions">{decisions_html(records)}'
        "</table></section></main></body></html>\n"
    )
