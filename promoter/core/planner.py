"""The planner: (pipeline, state, observation, now) → (new state, decisions, next wake-up). Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from promoter.core.compiled import CompiledPipeline, EnvRules
from promoter.core.durations import format_duration
from promoter.core.gates import merge_gates, proposal_gates, valid_approvers
from promoter.core.observations import (
    Action,
    Approved,
    ChangesRequested,
    Closed,
    Decision,
    Dismissed,
    HealthObserved,
    Held,
    ImageObserved,
    Merged,
    MergeRefused,
    ModelObserved,
    Observation,
    Promote,
    PullSynced,
    Resumed,
    Rollback,
)
from promoter.core.state import Bundle, EnvState, PendingPR, PipelineState, bundle_id
from promoter.core.versions import better, candidate_for, matching_artifacts

__all__ = ["Plan", "apply", "candidate", "plan"]

_REFUSED = "rolled back here or its PR was closed unmerged; waiting for a newer bundle"


@dataclass
class Plan:
    """The planner's answer: the state to store, what to do, and when to look again."""

    state: PipelineState
    decisions: list[Decision] = field(default_factory=list)
    wakeup: datetime | None = None


class _Planner:
    def __init__(self, compiled: CompiledPipeline, state: PipelineState, now: datetime) -> None:
        self.compiled = compiled
        self.state = state
        self.now = now
        self.decisions: list[Decision] = []
        self.wakeup: datetime | None = None

    def decide(
        self,
        action: Action,
        env: str,
        bundle: Bundle | None,
        reason: str,
        head: str | None = None,
    ) -> None:
        self.decisions.append(Decision(action, self.compiled.name, env, bundle, reason, head))

    # --- observations -------------------------------------------------------------------

    def observe_version(self, obs: ImageObserved | ModelObserved) -> None:
        changed = False
        for artifact in matching_artifacts(self.compiled, obs.data):
            candidate = candidate_for(
                self.compiled,
                artifact,
                obs.data,
                obs.built_at,
                self.state.seen + 1,
                event=obs.event,
            )
            if candidate is None:
                continue
            current = self.state.best.get(artifact.name)
            if current is not None and (
                current.identity() == candidate.identity()
                or not better(artifact, candidate, current)
            ):
                continue
            self.state.seen += 1
            self.state.best[artifact.name] = candidate
            changed = True
        if changed and len(self.state.best) == len(self.compiled.artifacts):
            versions = dict(self.state.best)
            new_id = bundle_id(versions)
            if self.state.latest is None or self.state.latest.id != new_id:
                self.state.seq += 1
                self.state.latest = Bundle(
                    id=new_id, seq=self.state.seq, versions=versions, formed_at=self.now
                )

    def observe_health(self, obs: HealthObserved) -> None:
        signal = obs.data
        rules = self.compiled.rules(signal.environment)
        env = self.state.envs.get(signal.environment)
        if rules is None or env is None or env.live is None:
            return
        live = env.live
        if signal.versions and any(
            name not in live.versions or live.versions[name].version != version
            for name, version in signal.versions.items()
        ):
            return  # about another bundle than the live one
        if signal.status == env.health:
            return
        env.health = signal.status
        env.health_reason = signal.reason
        env.healthy_since = self.now if signal.status == "healthy" else None
        if signal.status == "degraded":
            self.maybe_rollback(rules, env, live)

    def maybe_rollback(self, rules: EnvRules, env: EnvState, bad: Bundle) -> None:
        within = rules.rollback_within
        if (
            within is None
            or env.held
            or env.live_since is None
            or self.now - env.live_since > within
        ):
            return
        age = format_duration(self.now - env.live_since)
        why = f"degraded {age} after going live (rollback within {format_duration(within)})"
        self.roll_back(rules, env, bad, None, why)

    def roll_back(
        self, rules: EnvRules, env: EnvState, bad: Bundle, wanted: str | None, why: str
    ) -> None:
        """Revert `env` from `bad` to `wanted` (default: the newest earlier bundle) and hold it."""
        env.refused = [*env.refused, bad.id] if bad.id not in env.refused else env.refused
        target = next(
            (
                b
                for b in reversed(env.history)
                if (b.id == wanted if wanted else b.id not in env.refused and b.seq < bad.seq)
            ),
            None,
        )
        if target is None:
            missing = f"bundle {wanted} was never live here" if wanted else "no earlier bundle"
            reason = f"{why}; {missing} to roll back to"
        else:
            self.decide("rollback", rules.name, target, f"{why}; reverting from {_versions(bad)}")
            env.go_live(target, self.now)
            reason = f"rolled back from {_versions(bad)}: {why}"
        env.held = True
        env.hold_reason = reason
        self.decide("hold", rules.name, env.live, reason)

    def observe_rollback(self, obs: Rollback) -> None:
        rules = self.compiled.rules(obs.environment)
        env = self.state.envs.get(obs.environment)
        if rules is None or env is None or env.live is None:
            if rules is not None:
                self.decide("block", obs.environment, None, f"rollback by {obs.by}: nothing live")
            return
        self.roll_back(rules, env, env.live, obs.bundle, f"rollback requested by {obs.by}")

    def find_bundle(self, bundle_id: str) -> Bundle | None:
        """A bundle this pipeline has formed, by id (latest, live, pending or in history)."""
        seen = [self.state.latest]
        for env in self.state.envs.values():
            seen += [env.live, env.pending.bundle if env.pending else None, *env.history]
        return next((b for b in seen if b is not None and b.id == bundle_id), None)

    def observe_promote(self, obs: Promote) -> None:
        rules = self.compiled.rules(obs.environment)
        if rules is None:
            return
        env = self.state.env(obs.environment)
        target = self.find_bundle(obs.bundle) if obs.bundle else self.candidate(rules)
        refusal = None
        if target is None:
            refusal = f"no bundle {obs.bundle}" if obs.bundle else "no candidate bundle yet"
        elif env.live is not None and target.seq <= env.live.seq:
            refusal = f"{_versions(target)} is not newer than live; use rollback"
        elif env.pending is not None and env.pending.merging:
            refusal = "a merge is already in flight"
        else:
            gates = proposal_gates(self.compiled, rules, self.state, target, self.now).blocks
            hard = [reason for code, reason in gates.items() if code in ("held", "jurisdiction")]
            refusal = "; ".join(hard) or None
        if refusal is not None or target is None:
            self.decide("block", rules.name, target, f"promote by {obs.by} refused: {refusal}")
            return
        env.refused = [b for b in env.refused if b != target.id]
        self.propose(rules, env, target, reason=f"promotion requested by {obs.by}")
        assert env.pending is not None  # noqa: S101 (propose always leaves a PR)
        env.pending.merging = True
        self.decide("merge", rules.name, target, f"promoted by {obs.by}; waiting gates skipped")

    def observe_review(self, obs: Approved | ChangesRequested | Dismissed) -> None:
        env = self.state.envs.get(obs.environment)
        pending = env.pending if env else None
        if pending is None or pending.merging or (obs.bundle and obs.bundle != pending.bundle.id):
            return  # nothing to review, or a review of an earlier bundle
        if isinstance(obs, Approved):
            pending.approvals[obs.by] = sorted(obs.teams)
            pending.rejections = [u for u in pending.rejections if u != obs.by]
        elif isinstance(obs, Dismissed):
            pending.approvals.pop(obs.by, None)
            pending.rejections = [u for u in pending.rejections if u != obs.by]
        elif obs.by not in pending.rejections:
            pending.rejections = [*pending.rejections, obs.by]
            pending.approvals.pop(obs.by, None)

    def observe_hold(self, obs: Held | Resumed) -> None:
        if self.compiled.rules(obs.environment) is None:
            return
        env = self.state.env(obs.environment)
        if isinstance(obs, Held) and not env.held:
            env.held = True
            env.hold_reason = obs.reason
            self.decide("hold", obs.environment, env.live, obs.reason or "held by an operator")
        elif isinstance(obs, Resumed) and env.held:
            env.held = False
            env.hold_reason = None
            env.reported = [k for k in env.reported if not k.endswith(":held")]
            self.decide("resume", obs.environment, env.live, "hold lifted by an operator")

    def observe_pr(self, obs: Merged | Closed) -> None:
        env = self.state.envs.get(obs.environment)
        if env is None or env.pending is None or env.pending.bundle.id != obs.bundle:
            return  # already recorded, or about a PR that is no longer current
        bundle = env.pending.bundle
        env.pending = None
        if isinstance(obs, Merged):
            env.go_live(bundle, self.now)
        else:
            env.refused = [*env.refused, bundle.id]

    def observe_sync(self, obs: PullSynced) -> None:
        env = self.state.envs.get(obs.environment)
        if env is None or env.pending is None or env.pending.bundle.id != obs.bundle:
            return  # about a PR that is no longer current
        if obs.state != "open":
            kind = Merged if obs.state == "merged" else Closed
            self.observe_pr(kind(obs.pipeline, obs.environment, obs.bundle))
            return
        pending = env.pending
        pending.approvals = {user: sorted(teams) for user, teams in obs.approvals}
        pending.rejections = sorted(obs.rejections)
        pending.head = obs.head

    def observe_refused(self, obs: MergeRefused) -> None:
        env = self.state.envs.get(obs.environment)
        if env is None or env.pending is None or env.pending.bundle.id != obs.bundle:
            return
        pending = env.pending
        pending.merging = False
        pending.approvals = {}
        pending.head = None
        self.decide("block", obs.environment, pending.bundle, f"merge refused: {obs.reason}")

    def observe(self, obs: Observation) -> None:
        if isinstance(obs, ImageObserved | ModelObserved):
            self.observe_version(obs)
        elif isinstance(obs, HealthObserved):
            self.observe_health(obs)
        elif isinstance(obs, Approved | ChangesRequested | Dismissed):
            self.observe_review(obs)
        elif isinstance(obs, Held | Resumed):
            self.observe_hold(obs)
        elif isinstance(obs, Merged | Closed):
            self.observe_pr(obs)
        elif isinstance(obs, PullSynced):
            self.observe_sync(obs)
        elif isinstance(obs, MergeRefused):
            self.observe_refused(obs)
        elif isinstance(obs, Promote):
            self.observe_promote(obs)
        elif isinstance(obs, Rollback):
            self.observe_rollback(obs)

    # --- reconciliation -----------------------------------------------------------------

    def candidate(self, rules: EnvRules) -> Bundle | None:
        return candidate(rules, self.state)

    def close_stale(self, rules: EnvRules, env: EnvState) -> None:
        pending = env.pending
        if pending is None or pending.merging:
            return
        bundle = pending.bundle
        if env.live is not None and bundle.seq <= env.live.seq:
            reason = f"superseded: {_versions(env.live)} is already live"
        elif bundle.id in env.refused or any(
            bundle.id in self.state.env(u).refused for u in rules.upstreams
        ):
            reason = "bundle was rolled back or declined upstream"
        else:
            return
        env.pending = None
        self.decide("close-pr", rules.name, bundle, reason)

    def reconcile_env(self, rules: EnvRules) -> None:
        env = self.state.env(rules.name)
        if env.pending is not None and env.pending.merging:
            env.blocked = {}
            return  # a merge is in flight; wait for its confirmation
        self.close_stale(rules, env)
        candidate = self.candidate(rules)
        if candidate is None or (env.live is not None and candidate.seq <= env.live.seq):
            env.blocked = {}
            return
        if candidate.id in env.refused:
            self.report(rules, env, candidate, {"refused": _REFUSED})
            return
        gates = proposal_gates(self.compiled, rules, self.state, candidate, self.now)
        if not gates.blocks:
            self.propose(rules, env, candidate)
            assert env.pending is not None  # noqa: S101 (propose always leaves a PR)
            gates = merge_gates(rules, env.pending, self.now)
            if not gates.blocks:
                self.merge(rules, env.pending)
        self.report(rules, env, candidate, gates.blocks)
        if gates.wakeup is not None:
            self.wakeup = gates.wakeup if self.wakeup is None else min(self.wakeup, gates.wakeup)

    def propose(
        self, rules: EnvRules, env: EnvState, bundle: Bundle, reason: str | None = None
    ) -> None:
        pending = env.pending
        if pending is None:
            env.pending = PendingPR(bundle=bundle, opened_at=self.now, updated_at=self.now)
            self.decide("open-pr", rules.name, bundle, reason or _proposal_reason(rules))
        elif pending.bundle.id != bundle.id:
            env.pending = PendingPR(bundle=bundle, opened_at=pending.opened_at, updated_at=self.now)
            reset = "; approvals reset" if pending.approvals else ""
            self.decide(
                "update-pr",
                rules.name,
                bundle,
                f"newer bundle replaces {_versions(pending.bundle)}{reset}",
            )

    def merge(self, rules: EnvRules, pending: PendingPR) -> None:
        pending.merging = True
        if rules.needs_approval:
            reason = f"approved by {', '.join(valid_approvers(rules, pending))}"
        else:
            reason = "auto: all gates passed"
        self.decide("merge", rules.name, pending.bundle, reason, pending.head)

    def report(
        self, rules: EnvRules, env: EnvState, bundle: Bundle, blocks: dict[str, str]
    ) -> None:
        env.blocked = dict(blocks)
        keys = [k for k in env.reported if k.startswith(bundle.id + ":")]
        for code, reason in blocks.items():
            key = f"{bundle.id}:{code}"
            if key not in keys:
                keys.append(key)
                self.decide("block", rules.name, bundle, f"{code}: {reason}")
        env.reported = keys

    def reconcile(self) -> None:
        for rules in self.compiled.envs:
            self.reconcile_env(rules)


def candidate(rules: EnvRules, state: PipelineState) -> Bundle | None:
    """Root environments take the newest bundle; others the bundle live in every upstream."""
    if not rules.upstreams:
        return state.latest
    lives = [state.env(u).live for u in rules.upstreams]
    first = lives[0]
    if first is None or any(b is None or b.id != first.id for b in lives):
        return None
    return first


def _versions(bundle: Bundle) -> str:
    return ", ".join(f"{k} {v}" for k, v in bundle.summary().items())


def _proposal_reason(rules: EnvRules) -> str:
    if not rules.upstreams:
        return "new bundle"
    verified = f"verified in {', '.join(rules.upstreams)}"
    return verified + (f" (soak {format_duration(rules.soak)})" if rules.soak else "")


def plan(
    compiled: CompiledPipeline, state: PipelineState, observation: Observation, now: datetime
) -> Plan:
    """Apply one observation at `now` and decide; `state` is not modified."""
    return apply(compiled, state.model_copy(deep=True), observation, now)


def apply(
    compiled: CompiledPipeline, state: PipelineState, observation: Observation, now: datetime
) -> Plan:
    """`plan`, changing `state` in place: for a caller that owns it (saves a deep copy)."""
    planner = _Planner(compiled, state, now)
    planner.observe(observation)
    planner.reconcile()
    return Plan(planner.state, planner.decisions, planner.wakeup)
