"""What `status`, `explain`, `history` and `prs` show, read from KV and the audit stream."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from nats.js.api import DeliverPolicy

from promoter.core.compiled import CompiledPipeline, compile_pipeline
from promoter.core.durations import format_duration
from promoter.core.gates import merge_gates, proposal_gates
from promoter.core.loader import load_text
from promoter.core.planner import candidate as next_candidate
from promoter.core.state import PipelineState
from promoter.errors import ConfigurationError
from promoter.runtime.bus import AUDIT_STREAM, PIPELINE_BUCKET, Bus, kv_values, read_pending
from promoter.runtime.store import Record, StateStore
from promoter.scm.base import PullRequest

__all__ = [
    "compiled_pipelines",
    "explain",
    "history",
    "pr_rows",
    "snapshot",
    "status",
    "status_of",
    "status_table",
]


async def compiled_pipelines(bus: Bus) -> dict[str, CompiledPipeline]:
    """The pipelines workers published (name -> compiled)."""
    out: dict[str, CompiledPipeline] = {}
    for key, body in (await kv_values(bus.js, PIPELINE_BUCKET)).items():
        compiled = _compile(body.decode(), key)
        if compiled is not None:
            out[key] = compiled
    return out


async def snapshot(bus: Bus) -> tuple[dict[str, Record], dict[str, CompiledPipeline]]:
    """Every pipeline record and every published pipeline, each read in one pass."""
    records, compiled = await asyncio.gather(
        StateStore(bus.state, bus.js).all(), compiled_pipelines(bus)
    )
    return {r.pipeline: r for r in records}, compiled


@functools.lru_cache(maxsize=1024)
def _compile(text: str, name: str) -> CompiledPipeline | None:
    """Pipeline `name` from a published file's text (cached: status is polled)."""
    loaded, _ = load_text(text, name)
    for item in loaded:
        if item.pipeline.metadata.name == name:
            return compile_pipeline(item.pipeline)
    return None


def _env_names(record: Record, compiled: CompiledPipeline | None) -> list[str]:
    if compiled is not None:
        return [r.name for r in compiled.envs]
    return list(record.state.envs)


def _env_status(record: Record, name: str) -> dict[str, Any]:
    env = record.state.env(name)
    pending = None
    if env.pending is not None:
        ref = record.prs.get(name)
        pending = {
            "pr": ref.number if ref else None,
            "url": ref.url if ref else None,
            "versions": env.pending.bundle.summary(),
            "approvals": sorted(env.pending.approvals),
            "merging": env.pending.merging,
        }
    blocked = [f"{code}: {reason}" for code, reason in env.blocked.items()]
    if name in record.errors:
        blocked.append(f"error: {record.errors[name]}")
    return {
        "name": name,
        "live": env.live.summary() if env.live else {},
        "live_since": env.live_since.isoformat() if env.live_since else None,
        "pending": pending,
        "health": env.health,
        "blocked": blocked,
        "held": env.held,
        "hold_reason": env.hold_reason,
    }


async def status(bus: Bus) -> dict[str, Any]:
    """The `status --json` document."""
    return status_of(*await snapshot(bus))


def status_of(records: dict[str, Record], compiled: dict[str, CompiledPipeline]) -> dict[str, Any]:
    """The `status --json` document of these records and pipelines."""
    records = dict(records)
    for name in compiled:
        records.setdefault(name, Record(pipeline=name))
    pipelines = []
    for name, record in sorted(records.items()):
        envs = [_env_status(record, e) for e in _env_names(record, compiled.get(name))]
        latest = record.state.latest
        pipelines.append(
            {
                "name": name,
                "latest": latest.summary() if latest else None,
                "environments": envs,
                "outbox": len(record.outbox),
            }
        )
    return {"pipelines": pipelines}


def _versions(versions: dict[str, str] | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in (versions or {}).items()) or "-"


def status_table(document: dict[str, Any]) -> list[str]:
    """`status` as an aligned text table."""
    rows = [("PIPELINE", "ENV", "LIVE", "HEALTH", "PENDING", "STATE")]
    for pipeline in document["pipelines"]:
        for env in pipeline["environments"]:
            pending = env["pending"]
            pr = "-"
            if pending:
                number = f"#{pending['pr']} " if pending["pr"] else ""
                pr = f"{number}{_versions(pending['versions'])}"
            state = (
                "held"
                if env["held"]
                else ("blocked: " + env["blocked"][0] if env["blocked"] else "ok")
            )
            rows.append(
                (pipeline["name"], env["name"], _versions(env["live"]), env["health"], pr, state)
            )
    return _aligned(rows)


def _aligned(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Rows as text columns; the last column is not padded."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1] for r in rows
    ]


async def explain(bus: Bus, pipeline: str, env: str, now: datetime) -> list[str]:
    """Why `env` holds what it holds, and what stands in the way of the newest candidate."""
    compiled = (await compiled_pipelines(bus)).get(pipeline)
    record, revision = await StateStore(bus.state, bus.js).load(pipeline)
    if compiled is None and revision == 0:
        raise ConfigurationError(f"unknown pipeline {pipeline!r}; see `promoter status`")
    if compiled is not None and compiled.rules(env) is None:
        raise ConfigurationError(
            f"pipeline {pipeline} has no environment {env!r}: "
            f"{', '.join(r.name for r in compiled.envs)}"
        )
    state = record.state
    here = state.env(env)
    lines = [f"{pipeline}/{env}"]
    if here.live is None:
        lines.append("  live: nothing yet")
    else:
        since = here.live_since.isoformat() if here.live_since else "?"
        lines.append(
            f"  live: {_versions(here.live.summary())} (bundle {here.live.id}) since {since}"
        )
        lines.append(
            f"  health: {here.health}{' - ' + here.health_reason if here.health_reason else ''}"
        )
    if here.held:
        why = here.hold_reason or "by an operator"
        lines.append(f"  held: {why} (run `promoter resume {pipeline} {env}`)")
    if here.pending is not None:
        ref = record.prs.get(env)
        where = f"PR #{ref.number} {ref.url}" if ref else "PR being opened"
        lines.append(f"  pending: {where} with {_versions(here.pending.bundle.summary())}")
        if here.pending.approvals:
            lines.append(f"  approved by: {', '.join(sorted(here.pending.approvals))}")
    if env in record.errors:
        lines.append(f"  error: {record.errors[env]}")
    lines += _explain_candidate(compiled, state, env, now)
    if record.outbox:
        lines.append(
            f"  outbox: {len(record.outbox)} effect(s) waiting: "
            + ", ".join(
                f"{e.action} {e.environment}" + (f" (retrying: {e.error})" if e.error else "")
                for e in record.outbox
            )
        )
    return lines


def _explain_candidate(
    compiled: CompiledPipeline | None, state: PipelineState, env: str, now: datetime
) -> list[str]:
    if compiled is None:
        return ["  (pipeline definition not published by a worker; gates not evaluated)"]
    rules = compiled.rules(env)
    candidate = next_candidate(rules, state) if rules is not None else None
    if rules is None or candidate is None:
        ups = ", ".join(rules.upstreams) if rules and rules.upstreams else "events"
        return [f"  candidate: none (waiting for a bundle live in {ups})"]
    here = state.env(env)
    if here.live is not None and candidate.seq <= here.live.seq:
        return ["  candidate: none newer than live"]
    lines = [f"  candidate: {_versions(candidate.summary())} (bundle {candidate.id})"]
    if candidate.id in here.refused:
        lines.append(
            "  blocked: refused here (rolled back or declined); waiting for a newer bundle"
        )
        return lines
    gates = proposal_gates(compiled, rules, state, candidate, now)
    blocks = dict(gates.blocks)
    if here.pending is not None and here.pending.bundle.id == candidate.id and not blocks:
        blocks |= merge_gates(rules, here.pending, now).blocks
    for code, reason in blocks.items():
        lines.append(f"  blocked by {code}: {reason}")
    if gates.wakeup is not None:
        lines.append(f"  re-checked in {format_duration(gates.wakeup - now)}")
    if not blocks:
        lines.append("  nothing blocks it; the worker acts on the next event or timer")
    return lines


async def history(bus: Bus, pipeline: str | None) -> list[dict[str, Any]]:
    """Audit records, oldest first, for one pipeline or all."""
    subject = f"promoter.audit.{pipeline}" if pipeline else "promoter.audit.>"
    msgs = await read_pending(bus.js, AUDIT_STREAM, subject, DeliverPolicy.ALL)
    return [json.loads(msg.data) for msg in msgs]


def pr_rows(prs: list[PullRequest]) -> list[str]:
    """`promoter prs` as an aligned table."""
    rows = [("#", "PIPELINE", "ENV", "STATE", "VERSIONS", "APPROVED BY", "HEAD")]
    rows += [
        (
            str(pr.number),
            pr.pipeline,
            pr.environment,
            pr.state,
            _versions(pr.versions),
            ", ".join(sorted(pr.approvals())) or "-",
            pr.head[:10],
        )
        for pr in prs
    ]
    return _aligned(rows)
