"""The dashboard's matrix: `status --json` per environment plus gates, approvals and soak now."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from promoter.core.compiled import CompiledPipeline, EnvRules
from promoter.core.durations import format_duration
from promoter.core.gates import merge_gates, proposal_gates, valid_approvers
from promoter.core.planner import candidate as next_candidate
from promoter.core.state import Bundle, PendingPR, PipelineState
from promoter.runtime.bus import Bus
from promoter.runtime.report import snapshot, status_of
from promoter.runtime.store import Record

__all__ = ["columns", "gate_states", "matrix", "soak_progress", "stamp"]

REFUSED = "rolled back or declined here; waiting for a newer bundle"
_SHOWN_WHEN_BLOCKED = ("held", "upstream-degraded")


def stamp(at: datetime | None) -> str | None:
    """ISO 8601 in UTC with a `Z`, as the audit records write it."""
    return at.isoformat().replace("+00:00", "Z") if at else None


def _applicable(rules: EnvRules, blocks: dict[str, str]) -> list[str]:
    """The gate codes that apply to an environment, in the order they are evaluated."""
    codes = [c for c in _SHOWN_WHEN_BLOCKED if c in blocks]
    if rules.jurisdiction:
        codes.append("jurisdiction")
    if rules.when is not None:
        codes.append("when")
    if rules.upstreams and rules.soak is not None:
        codes.append("health" if "health" in blocks else "soak")
    if rules.needs_approval or "changes-requested" in blocks:
        codes.append("changes-requested")
    if rules.needs_approval:
        codes.append("approvals")
    if rules.windows:
        codes.append("window")
    return codes + [c for c in blocks if c not in codes]


def gate_states(
    compiled: CompiledPipeline, rules: EnvRules, state: PipelineState, now: datetime
) -> tuple[Bundle | None, list[dict[str, str]]]:
    """The next candidate for the environment and each gate's state for it, evaluated at `now`.

    As `promoter explain`: proposal gates on the candidate, then merge gates on its PR (or on
    the PR it would get, so approvals and windows show before it opens).
    """
    here = state.env(rules.name)
    candidate = next_candidate(rules, state)
    if candidate is None or (here.live is not None and candidate.seq <= here.live.seq):
        return None, []
    if candidate.id in here.refused:
        versions = ", ".join(f"{k} {v}" for k, v in candidate.summary().items())
        reason = f"{versions} was {REFUSED}"
        return candidate, [{"code": "refused", "state": "blocked", "reason": reason}]
    blocks = dict(proposal_gates(compiled, rules, state, candidate, now).blocks)
    pending = here.pending
    if pending is None or pending.bundle.id != candidate.id:
        pending = PendingPR(bundle=candidate, opened_at=now, updated_at=now)
    blocks |= merge_gates(rules, pending, now).blocks
    return candidate, [
        {"code": c, "state": "blocked" if c in blocks else "ok", "reason": blocks.get(c, "")}
        for c in _applicable(rules, blocks)
    ]


def soak_progress(rules: EnvRules, state: PipelineState, now: datetime) -> list[dict[str, Any]]:
    """Per upstream: how long its live bundle has been healthy, against the soak asked for.

    Measured as the soak gate measures it: from the upstream's `healthy_since` (reset by any
    other health status and by a new bundle going live there).
    """
    if not rules.soak:
        return []
    required = rules.soak.total_seconds()
    of = format_duration(rules.soak)
    out = []
    for upstream in rules.upstreams:
        env = state.env(upstream)
        elapsed = 0.0
        if env.health == "healthy" and env.healthy_since is not None:
            elapsed = min(max((now - env.healthy_since).total_seconds(), 0.0), required)
        if env.health == "degraded":
            text = f"{upstream} is degraded"
        elif env.health != "healthy":
            text = f"waiting for {upstream} to report healthy ({of} soak)"
        elif elapsed >= required:
            text = f"soaked {of} in {upstream}"
        else:
            text = f"soaking {format_duration(timedelta(seconds=elapsed))} of {of} in {upstream}"
        out.append(
            {
                "upstream": upstream,
                "elapsed_s": int(elapsed),
                "required_s": int(required),
                "progress": round(elapsed / required, 3),
                "text": text,
            }
        )
    return out


def _heights(compiled: CompiledPipeline | None, names: list[str]) -> dict[str, int]:
    """Each environment's promotions still to go: 0 for the last (prod), 1 before it, ..."""
    if compiled is None:
        return {name: len(names) - 1 - i for i, name in enumerate(names)}
    height: dict[str, int] = {}
    for rules in reversed(compiled.envs):  # downstreams first
        height.setdefault(rules.name, 0)
        for upstream in rules.upstreams:
            height[upstream] = max(height.get(upstream, 0), height[rules.name] + 1)
    return {name: height.get(name, 0) for name in names}


def columns(pipelines: list[dict[str, Any]]) -> list[str]:
    """Every environment name once, ordered so production lines up on the right.

    By promotions still to go (most first), then by first appearance: pipelines of different
    lengths and names share columns where they share names (dev, staging, prod); a pipeline
    without some column shows an empty cell there.
    """
    key: dict[str, tuple[int, int]] = {}
    for pipeline in pipelines:
        for env in pipeline["environments"]:
            seen = key.get(env["name"])
            height = env["height"] if seen is None else max(-seen[0], env["height"])
            key[env["name"]] = (-height, seen[1] if seen else len(key))
    return sorted(key, key=lambda name: key[name])


def _pending(cell: dict[str, Any], rules: EnvRules | None, pr: PendingPR | None) -> None:
    pending = cell["pending"]
    needed = rules.approval_count if rules is not None and rules.needs_approval else 0
    cell["approvals_needed"] = needed
    if pending is None:
        return
    pending["approvals_needed"] = needed
    same = pr is not None and pr.bundle.summary() == pending["versions"]
    pending["approvals_valid"] = (
        valid_approvers(rules, pr) if rules is not None and pr is not None and same else []
    )
    pending["rejections"] = sorted(pr.rejections) if pr is not None and same else []
    pending["opened_at"] = stamp(pr.opened_at) if pr is not None and same else None


def _cell_state(cell: dict[str, Any]) -> str:
    if cell["held"]:
        return "held"
    if cell["error"]:
        return "error"
    if cell["pending"] is not None:
        return "pending"
    if any(g["state"] == "blocked" for g in cell["gates"]):
        return "blocked"
    if cell["candidate"] is not None:
        return "progress"
    return "live" if cell["live"] else "empty"


def _cell(
    env: dict[str, Any],
    height: int,
    compiled: CompiledPipeline | None,
    record: Record,
    now: datetime,
) -> dict[str, Any]:
    name = env["name"]
    rules = compiled.rules(name) if compiled is not None else None
    here = record.state.env(name)
    cell = {**env, "height": height, "pending": dict(env["pending"]) if env["pending"] else None}
    since = here.live_since if here.live is not None else None
    cell |= {
        "bundle": here.live.id if here.live is not None else None,
        "live_for_s": int((now - since).total_seconds()) if since else None,
        "health_reason": here.health_reason,
        "error": record.errors.get(name),
        "candidate": None,
        "gates": [],
        "soak": [],
    }
    _pending(cell, rules, here.pending)
    if compiled is not None and rules is not None:
        candidate, cell["gates"] = gate_states(compiled, rules, record.state, now)
        if candidate is not None:
            refused = candidate.id in here.refused
            cell["candidate"] = {
                "versions": candidate.summary(),
                "bundle": candidate.id,
                "refused": refused,
            }
            if not refused:
                cell["soak"] = soak_progress(rules, record.state, now)
    cell["state"] = _cell_state(cell)
    return cell


async def matrix(bus: Bus, now: datetime) -> dict[str, Any]:
    """What `/api/status` serves and the page shows: pipelines x environments, at `now`."""
    records, compiled = await snapshot(bus)
    document = status_of(records, compiled)
    pipelines = []
    for pipeline in document["pipelines"]:
        name = pipeline["name"]
        record = records.get(name) or Record(pipeline=name)
        definition = compiled.get(name)
        names = [e["name"] for e in pipeline["environments"]]
        heights = _heights(definition, names)
        envs = [
            _cell(e, heights[e["name"]], definition, record, now) for e in pipeline["environments"]
        ]
        pipelines.append({**pipeline, "defined": definition is not None, "environments": envs})
    return {"generated_at": stamp(now), "columns": columns(pipelines), "pipelines": pipelines}
