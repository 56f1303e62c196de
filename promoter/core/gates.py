"""Gates: what stops a bundle from being proposed to, or merged into, an environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from promoter.core.compiled import CompiledPipeline, EnvRules
from promoter.core.durations import format_duration
from promoter.core.state import Bundle, PendingPR, PipelineState
from promoter.core.versions import artifact_variables
from promoter.core.windows import is_open, next_opening

__all__ = ["GATE_CODES", "GateResult", "merge_gates", "proposal_gates", "valid_approvers"]

GATE_CODES = frozenset(
    {
        "upstream-degraded",
        "health",
        "soak",
        "held",
        "jurisdiction",
        "when",
        "changes-requested",
        "approvals",
        "window",
        "refused",
    }
)
"""The codes of `GateResult.blocks` (and "refused": a rolled-back bundle is not offered again):
what `explain`, block decisions and metrics name."""


def _stamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


@dataclass
class GateResult:
    """Blocks found (code -> reason) and the earliest time one of them may lift by itself."""

    blocks: dict[str, str] = field(default_factory=dict)
    wakeup: datetime | None = None

    def wake_at(self, at: datetime) -> None:
        """Ask to be re-evaluated at `at`."""
        self.wakeup = at if self.wakeup is None else min(self.wakeup, at)


def _jurisdiction(rules: EnvRules, bundle: Bundle) -> str | None:
    if rules.jurisdiction is None:
        return None
    problems = []
    for name, version in sorted(bundle.versions.items()):
        allowed = version.residency()
        if not allowed:
            problems.append(f"{name} {version.version} has no residency label")
        elif rules.jurisdiction not in allowed:
            problems.append(f"{name} {version.version} residency {','.join(sorted(allowed))}")
    if not problems:
        return None
    return f"jurisdiction {rules.jurisdiction} not allowed: {'; '.join(problems)}"


def _upstreams(rules: EnvRules, state: PipelineState, now: datetime, result: GateResult) -> None:
    for upstream in rules.upstreams:
        env = state.env(upstream)
        if env.health == "degraded":
            reason = f": {env.health_reason}" if env.health_reason else ""
            result.blocks["upstream-degraded"] = f"{upstream} is degraded{reason}"
            continue
        if rules.soak is None:
            continue
        soak = format_duration(rules.soak)
        if env.health != "healthy" or env.healthy_since is None:
            result.blocks["health"] = f"waiting for {upstream} to report healthy (soak {soak})"
            continue
        ends = env.healthy_since + rules.soak
        if ends > now:
            result.blocks["soak"] = f"soaking in {upstream} for {soak}, until {_stamp(ends)}"
            result.wake_at(ends)


def proposal_gates(
    compiled: CompiledPipeline, rules: EnvRules, state: PipelineState, bundle: Bundle, now: datetime
) -> GateResult:
    """Why `bundle` may not be proposed (a PR opened or updated) for the environment yet."""
    result = GateResult()
    env = state.env(rules.name)
    if env.held:
        result.blocks["held"] = (
            f"environment is held{': ' + env.hold_reason if env.hold_reason else ''}"
        )
    problem = _jurisdiction(rules, bundle)
    if problem:
        result.blocks["jurisdiction"] = problem
    if rules.when is not None:
        verdict = rules.when.evaluate(
            {
                "bundle": {n: artifact_variables(v) for n, v in bundle.versions.items()},
                "pipeline": compiled.name,
                "environment": rules.name,
            }
        )
        if not verdict.passed:
            result.blocks["when"] = verdict.reason
    _upstreams(rules, state, now, result)
    return result


def valid_approvers(rules: EnvRules, pending: PendingPR) -> list[str]:
    """Approvers who count: listed users or members of listed teams (anyone if none listed)."""
    users = {r.lower() for r in rules.reviewers if not r.startswith("@")}
    teams = {r[1:].lower() for r in rules.reviewers if r.startswith("@")}
    valid = []
    for user, member_of in sorted(pending.approvals.items()):
        their_teams = {t.lstrip("@").lower() for t in member_of}
        if not rules.reviewers or user.lower() in users or teams & their_teams:
            valid.append(user)
    return valid


def merge_gates(rules: EnvRules, pending: PendingPR, now: datetime) -> GateResult:
    """Why the environment's open PR may not merge yet (its proposal gates already passed)."""
    result = GateResult()
    if pending.rejections:
        result.blocks["changes-requested"] = (
            f"changes requested by {', '.join(sorted(pending.rejections))}"
        )
    if rules.needs_approval:
        valid = valid_approvers(rules, pending)
        if len(valid) < rules.approval_count:
            who = f" from {', '.join(rules.reviewers)}" if rules.reviewers else ""
            result.blocks["approvals"] = (
                f"needs {rules.approval_count} approval(s){who}; has {len(valid)}"
            )
    if not is_open(rules.windows, now):
        opens = next_opening(rules.windows, now)
        result.blocks["window"] = "outside the deployment window" + (
            f"; next opens {_stamp(opens)}" if opens else ""
        )
        if opens is not None:
            result.wake_at(opens)
    return result
