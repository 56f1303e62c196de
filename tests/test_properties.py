"""Property tests: planner invariants hold for any sequence of observations."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from builders import T0, compiled, health, image, model
from hypothesis import given
from hypothesis import strategies as st

from promoter.core.compiled import CompiledPipeline
from promoter.core.gates import valid_approvers
from promoter.core.observations import (
    Approved,
    ChangesRequested,
    Decision,
    Held,
    Observation,
    Resumed,
    Tick,
)
from promoter.core.planner import plan
from promoter.core.state import PipelineState
from promoter.simulate import merge_confirmations

PIPELINE = compiled("""
apiVersion: promoter/v1
kind: Pipeline
metadata: {name: p}
spec:
  repository: {url: ./repo}
  artifacts:
    - {name: api, image: reg/api, select: {semver: ">=1.0.0 <2.0.0"}}
    - {name: ml, model: ml, select: {newest: true}, when: "model.metrics.auc >= 0.5"}
  environments:
    - {name: dev, auto: true, update: [{file: d.yaml, set: {t: "${api.tag}"}}]}
    - name: staging
      from: [dev]
      auto: true
      gates: {soak: 10m}
      rollback: {onDegradedWithin: 20m}
      update: [{file: s.yaml, set: {t: "${api.tag}"}}]
    - name: eu
      from: [staging]
      jurisdiction: eu
      gates:
        soak: 30m
        approvals: {count: 2, reviewers: [alice, bob, "@org/sre"]}
        windows: [{days: [mon, tue, wed], start: "08:00", end: "18:00", timezone: Europe/Berlin}]
      rollback: {onDegradedWithin: 30m}
      update: [{file: e.yaml, set: {t: "${api.tag}"}}]
    - name: us
      from: [staging]
      auto: true
      jurisdiction: us
      update: [{file: u.yaml, set: {t: "${api.tag}"}}]
""")
ENVS = ["dev", "staging", "eu", "us"]
USERS = [
    ("alice", ()),
    ("bob", ()),
    ("mallory", ()),
    ("carol", ("org/sre",)),
    ("dave", ("org/web",)),
]

versions = st.sampled_from(["1.0.0", "1.1.0", "1.2.0", "1.2.1", "1.9.0", "2.0.0", "0.9.0", "bad"])
residency = st.sampled_from(["eu", "us", "eu,us", ""])


def _image(tag: str, res: str) -> Observation:
    return image("reg/api", tag, labels={"residency": res} if res else {})


def _model(version: int, auc: float, res: str) -> Observation:
    return model("ml", str(version), metrics={"auc": auc}, labels={"residency": res} if res else {})


steps = st.one_of(
    st.builds(_image, versions, residency),
    st.builds(_model, st.integers(1, 6), st.sampled_from([0.2, 0.6, 0.9]), residency),
    st.builds(
        lambda e, s: health("p", e, s),
        st.sampled_from(ENVS),
        st.sampled_from(["healthy", "healthy", "degraded", "progressing"]),
    ),
    st.builds(lambda u: Approved("p", "eu", u[0], u[1]), st.sampled_from(USERS)),
    st.builds(lambda u: ChangesRequested("p", "eu", u[0]), st.sampled_from(USERS)),
    st.builds(lambda e: Held("p", e), st.sampled_from(ENVS)),
    st.builds(lambda e: Resumed("p", e), st.sampled_from(ENVS)),
    st.sampled_from([timedelta(minutes=m) for m in (1, 5, 10, 31, 61, 600, 2000)]),
)


@dataclass
class Run:
    pipeline: CompiledPipeline
    state: PipelineState = field(default_factory=PipelineState)
    now: datetime = T0
    approvals: list[tuple[str, datetime]] = field(default_factory=list)
    open_prs: dict[str, bool] = field(default_factory=dict)
    merges: int = 0

    def apply(self, observation: Observation) -> list[Decision]:
        """Plan one observation (confirming merges) and check the invariants on every result."""
        if isinstance(observation, Approved):
            self.approvals.append((observation.by, self.now))
        out: list[Decision] = []
        queue = [observation]
        while queue:
            current = queue.pop(0)
            before = self.state
            result = plan(self.pipeline, before, current, self.now)
            self.check(before, result.state, result.decisions)
            self.check_idempotent(current, result.state)
            self.state = result.state
            queue += merge_confirmations("p", result.decisions)
            out += result.decisions
        return out

    def check_idempotent(self, observation: Observation, state: PipelineState) -> None:
        again = plan(self.pipeline, state, observation, self.now)
        assert again.decisions == [], f"duplicate {observation} decided {again.decisions}"
        assert again.state == state

    def check(self, before: PipelineState, after: PipelineState, decisions: list[Decision]) -> None:
        rolled_back = {d.environment for d in decisions if d.action == "rollback"}
        for name in ENVS:
            old, new = before.envs.get(name), after.envs.get(name)
            if old and old.live and new and new.live and new.live.id != old.live.id:
                assert new.live.seq > old.live.seq or name in rolled_back, f"{name} downgraded"
        for decision in decisions:
            self.check_pr_sequence(decision)
            if decision.action == "merge":
                self.check_merge(after, decision)

    def check_pr_sequence(self, decision: Decision) -> None:
        env = decision.environment
        is_open = self.open_prs.get(env, False)
        if decision.action == "open-pr":
            assert not is_open, f"second PR opened for {env}"
            self.open_prs[env] = True
        elif decision.action in ("update-pr", "close-pr", "merge"):
            assert is_open, f"{decision.action} without an open PR in {env}"
            self.open_prs[env] = decision.action == "update-pr"

    def check_merge(self, after: PipelineState, decision: Decision) -> None:
        rules = self.pipeline.rules(decision.environment)
        assert rules is not None and decision.bundle is not None
        self.merges += 1
        for upstream in rules.upstreams:
            up = after.envs[upstream]
            assert up.live is not None and up.live.id == decision.bundle.id, "skipped an upstream"
            assert up.health != "degraded"
            if rules.soak is not None:
                assert up.health == "healthy" and up.healthy_since is not None
                assert up.healthy_since + rules.soak <= self.now
        env = after.envs[decision.environment]
        assert not env.held
        if rules.jurisdiction:
            assert all(
                rules.jurisdiction in v.residency() for v in decision.bundle.versions.values()
            )
        if rules.needs_approval:
            pending = env.pending
            assert pending is not None
            valid = valid_approvers(rules, pending)
            assert len(valid) >= rules.approval_count
            assert set(valid) <= {"alice", "bob", "carol"}
            for user in valid:  # every counted approval was given for the current bundle
                assert any(u == user and at >= pending.updated_at for u, at in self.approvals)


@given(st.lists(steps, min_size=1, max_size=60))
def test_invariants_hold_for_any_sequence(sequence: list[Observation | timedelta]) -> None:
    run = Run(PIPELINE)
    for step in sequence:
        if isinstance(step, timedelta):
            run.now += step
            run.apply(Tick())
        else:
            run.apply(step)


def test_the_property_run_can_reach_production() -> None:
    """Guard against a vacuous property: a scripted run through the same checks merges into eu."""
    run = Run(PIPELINE)
    run.apply(_image("1.0.0", "eu,us"))
    run.apply(_model(1, 0.9, "eu,us"))
    run.apply(health("p", "dev", "healthy"))
    run.now += timedelta(minutes=10)
    run.apply(Tick())
    run.apply(health("p", "staging", "healthy"))
    run.now += timedelta(minutes=30)
    run.apply(Tick())
    run.apply(Approved("p", "eu", "alice"))
    run.apply(Approved("p", "eu", "carol", ("org/sre",)))
    assert run.state.envs["eu"].live is not None
    assert run.state.envs["us"].live is not None
    assert run.merges == 4
