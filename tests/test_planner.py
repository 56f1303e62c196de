"""The planner on virtual time: promotion chain, soak, approvals, windows, residency, rollback."""

from __future__ import annotations

from datetime import timedelta

from builders import T0, Driver, actions, compiled, health, image, model

from promoter.core.events import parse_event
from promoter.core.observations import (
    Approved,
    ChangesRequested,
    Closed,
    Held,
    Merged,
    Observation,
    Resumed,
    observe_event,
)

CHAIN = """
apiVersion: promoter/v1
kind: Pipeline
metadata: {name: shop}
spec:
  repository: {url: ./repo}
  artifacts:
    - {name: api, image: ghcr.io/acme/api, select: {semver: ">=1.0.0 <2.0.0"}}
    - {name: ranker, model: ranker, select: {newest: true}, when: "model.metrics.auc >= 0.8"}
  environments:
    - name: dev
      auto: true
      update: [{file: dev.yaml, set: {tag: "${api.tag}"}}]
    - name: staging
      from: [dev]
      auto: true
      gates: {soak: 10m}
      update: [{file: staging.yaml, set: {tag: "${api.tag}"}}]
    - name: prod
      from: [staging]
      jurisdiction: eu
      gates:
        soak: 1h
        approvals: {count: 2, reviewers: [alice, bob, "@acme/sre"]}
        windows:
          - days: [mon, tue, wed, thu, fri]
            start: "09:00"
            end: "17:00"
            timezone: Europe/Amsterdam
      rollback: {onDegradedWithin: 30m}
      update: [{file: prod.yaml, set: {tag: "${api.tag}", model: "${ranker.uri}"}}]
"""
EU = {"residency": "eu"}


def started(text: str = CHAIN) -> Driver:
    driver = Driver(compiled(text))
    driver.feed(image("ghcr.io/acme/api", "1.0.0", labels=EU))
    driver.feed(model("ranker", "1", metrics={"auc": 0.9}, labels=EU))
    return driver


def to_prod_pr(driver: Driver) -> None:
    """Bundle 1 verified in dev and staging; prod's PR is open at Monday 08:25Z (09:25 local)."""
    driver.feed(health("shop", "dev", "healthy"), T0 + timedelta(minutes=5))
    driver.advance(timedelta(minutes=10))
    driver.feed(health("shop", "staging", "healthy"), T0 + timedelta(minutes=25))
    driver.advance(timedelta(hours=1))


def test_bundle_forms_only_when_every_artifact_has_a_candidate() -> None:
    driver = Driver(compiled(CHAIN))
    assert driver.feed(image("ghcr.io/acme/api", "1.0.0")) == []
    decisions = driver.feed(model("ranker", "1", metrics={"auc": 0.9}))
    assert actions(decisions, "dev") == ["open-pr", "merge"]
    assert driver.live("dev") == {"api": "1.0.0", "ranker": "1"}


def test_when_false_model_is_never_a_candidate() -> None:
    driver = started()
    assert driver.feed(model("ranker", "2", metrics={"auc": 0.5})) == []
    assert driver.feed(model("ranker", "3", metrics={})) == []  # missing metric: error means no
    assert driver.live("dev") == {"api": "1.0.0", "ranker": "1"}


def test_out_of_range_and_older_versions_never_downgrade() -> None:
    driver = started()
    driver.feed(image("ghcr.io/acme/api", "1.4.0"))
    assert driver.live("dev") == {"api": "1.4.0", "ranker": "1"}
    assert driver.feed(image("ghcr.io/acme/api", "1.3.9")) == []
    assert driver.feed(image("ghcr.io/acme/api", "2.0.0")) == []
    assert driver.feed(image("ghcr.io/acme/api", "not-semver")) == []
    assert driver.live("dev") == {"api": "1.4.0", "ranker": "1"}


def test_staging_waits_for_healthy_soak_and_timer_fires_exactly() -> None:
    driver = started()
    driver.feed(health("shop", "dev", "healthy"), T0 + timedelta(minutes=5))
    assert driver.wakeup == T0 + timedelta(minutes=15)
    assert actions(driver.advance(timedelta(minutes=9, seconds=59)), "staging") == []
    decisions = driver.advance(timedelta(seconds=1))
    assert actions(decisions, "staging") == ["open-pr", "merge"]
    assert driver.now == T0 + timedelta(minutes=15)


def test_degraded_signal_restarts_the_soak_clock() -> None:
    driver = started()
    driver.feed(health("shop", "dev", "healthy"), T0 + timedelta(minutes=1))
    driver.feed(health("shop", "dev", "degraded"), T0 + timedelta(minutes=8))
    driver.feed(health("shop", "dev", "healthy"), T0 + timedelta(minutes=9))
    assert actions(driver.advance(timedelta(minutes=9, seconds=59)), "staging") == []
    assert actions(driver.advance(timedelta(seconds=1)), "staging") == ["open-pr", "merge"]
    assert driver.now == T0 + timedelta(minutes=19)


def test_progressing_also_restarts_the_clock() -> None:
    driver = started()
    driver.feed(health("shop", "dev", "healthy"), T0)
    driver.feed(health("shop", "dev", "progressing"), T0 + timedelta(minutes=9))
    assert actions(driver.advance(timedelta(minutes=30)), "staging") == []


def test_health_signal_for_another_bundle_is_ignored() -> None:
    driver = started()
    driver.feed(health("shop", "dev", "healthy", versions={"api": "0.9.0"}), T0)
    assert driver.state.envs["dev"].health == "unknown"
    driver.feed(health("shop", "dev", "healthy", versions={"api": "1.0.0", "ranker": "1"}), T0)
    assert driver.state.envs["dev"].health == "healthy"


def test_prod_needs_listed_approvals_and_ignores_unlisted_users() -> None:
    driver = started()
    to_prod_pr(driver)
    assert "open-pr" in actions(driver.log, "prod")
    assert driver.feed(Approved("shop", "prod", "mallory"), driver.now) == []
    assert driver.feed(Approved("shop", "prod", "alice"), driver.now) == []
    decisions = driver.feed(Approved("shop", "prod", "carol", teams=("acme/sre",)), driver.now)
    assert actions(decisions, "prod") == ["merge"]
    assert decisions[0].reason == "approved by alice, carol"


def test_changes_requested_blocks_until_the_reviewer_approves() -> None:
    driver = started()
    to_prod_pr(driver)
    driver.feed(ChangesRequested("shop", "prod", "bob"), driver.now)
    driver.feed(Approved("shop", "prod", "alice"), driver.now)
    driver.feed(Approved("shop", "prod", "carol", teams=("acme/sre",)), driver.now)
    assert driver.live("prod") is None
    assert "changes-requested" in driver.state.envs["prod"].blocked
    decisions = driver.feed(Approved("shop", "prod", "bob"), driver.now)
    assert actions(decisions, "prod") == ["merge"]


def test_newer_bundle_updates_the_one_pr_and_resets_approvals() -> None:
    driver = started()
    to_prod_pr(driver)
    driver.feed(Approved("shop", "prod", "alice"), driver.now)
    driver.feed(image("ghcr.io/acme/api", "1.1.0", labels=EU), driver.now)
    start = driver.now
    driver.feed(health("shop", "dev", "healthy"), start)
    driver.advance(timedelta(minutes=10))
    driver.feed(health("shop", "staging", "healthy"), driver.now)
    decisions = driver.advance(timedelta(hours=1))
    assert actions(decisions, "prod") == ["update-pr", "block"]
    assert "approvals reset" in decisions[0].reason
    pending = driver.state.envs["prod"].pending
    assert pending is not None and pending.approvals == {}
    assert pending.bundle.summary() == {"api": "1.1.0", "ranker": "1"}
    # an approval given for the earlier bundle no longer counts
    old = next(d.bundle for d in driver.log if d.environment == "prod" and d.action == "open-pr")
    assert old is not None
    driver.feed(Approved("shop", "prod", "bob", bundle=old.id), driver.now)
    assert pending.approvals == {}
    assert actions(driver.log, "prod").count("open-pr") == 1


def test_window_delays_merge_until_it_opens_in_local_time() -> None:
    driver = started()
    to_prod_pr(driver)
    friday_evening = T0 + timedelta(days=4, hours=10)  # Fri 17:00Z = 18:00 Amsterdam
    decisions = driver.feed(Approved("shop", "prod", "alice"), friday_evening)
    decisions += driver.feed(Approved("shop", "prod", "bob"), friday_evening)
    assert [d.reason.split(":")[0] for d in decisions] == ["window"]
    assert driver.live("prod") is None
    assert driver.wakeup == T0 + timedelta(days=7, hours=1)  # Monday 08:00Z = 09:00 local
    merged = driver.advance(timedelta(days=3))
    assert actions(merged, "prod") == ["merge"]
    assert driver.live("prod") == {"api": "1.0.0", "ranker": "1"}


def test_jurisdiction_blocks_unlabelled_or_excluded_artifacts() -> None:
    driver = Driver(compiled(CHAIN))
    driver.feed(image("ghcr.io/acme/api", "1.0.0", labels={"residency": "us"}))
    driver.feed(model("ranker", "1", metrics={"auc": 0.9}))  # no residency label
    to_prod_pr(driver)
    blocked = driver.state.envs["prod"].blocked
    assert "jurisdiction" in blocked
    assert "api 1.0.0 residency us" in blocked["jurisdiction"]
    assert "ranker 1 has no residency label" in blocked["jurisdiction"]
    assert "open-pr" not in actions(driver.log, "prod")


def test_rollback_within_window_reverts_and_holds() -> None:
    driver = started()
    to_prod_pr(driver)
    driver.feed(Approved("shop", "prod", "alice"), driver.now)
    driver.feed(Approved("shop", "prod", "bob"), driver.now)
    driver.feed(health("shop", "prod", "healthy"), driver.now)
    driver.feed(image("ghcr.io/acme/api", "1.1.0", labels=EU), driver.now)
    driver.feed(health("shop", "dev", "healthy"), driver.now)
    driver.advance(timedelta(minutes=10))
    driver.feed(health("shop", "staging", "healthy"), driver.now)
    driver.advance(timedelta(hours=1))
    driver.feed(Approved("shop", "prod", "alice"), driver.now)
    driver.feed(Approved("shop", "prod", "bob"), driver.now)
    assert driver.live("prod") == {"api": "1.1.0", "ranker": "1"}
    decisions = driver.feed(health("shop", "prod", "degraded"), driver.now + timedelta(minutes=29))
    assert actions(decisions, "prod") == ["rollback", "hold", "block"]
    assert driver.live("prod") == {"api": "1.0.0", "ranker": "1"}
    assert driver.state.envs["prod"].held
    # resuming does not re-propose the bundle that was rolled back
    assert actions(driver.feed(Resumed("shop", "prod"), driver.now), "prod") == ["resume"]
    assert driver.live("prod") == {"api": "1.0.0", "ranker": "1"}
    assert driver.state.envs["prod"].pending is None


def test_degraded_after_the_rollback_window_does_not_roll_back() -> None:
    driver = started()
    to_prod_pr(driver)
    driver.feed(Approved("shop", "prod", "alice"), driver.now)
    driver.feed(Approved("shop", "prod", "bob"), driver.now)
    decisions = driver.feed(health("shop", "prod", "degraded"), driver.now + timedelta(minutes=31))
    assert decisions == []
    assert not driver.state.envs["prod"].held


def test_hold_stops_promotion_and_resume_continues() -> None:
    driver = Driver(compiled(CHAIN))
    assert actions(driver.feed(Held("shop", "dev", "freeze")), "dev") == ["hold"]
    assert driver.feed(Held("shop", "dev")) == []  # already held: no-op
    driver.feed(image("ghcr.io/acme/api", "1.0.0"))
    decisions = driver.feed(model("ranker", "1", metrics={"auc": 0.9}))
    assert actions(decisions, "dev") == ["block"]
    assert driver.live("dev") is None
    assert actions(driver.feed(Resumed("shop", "dev")), "dev") == ["resume", "open-pr", "merge"]


def test_pr_closed_by_a_human_is_not_reopened_for_that_bundle() -> None:
    auto_off = CHAIN.replace(
        "    - name: dev\n      auto: true", "    - name: dev\n      auto: false"
    )
    driver = started(auto_off)
    pending = driver.state.envs["dev"].pending
    assert pending is not None
    decisions = driver.feed(Closed("shop", "dev", pending.bundle.id))
    assert actions(decisions, "dev") == ["block"]
    assert driver.state.envs["dev"].pending is None
    assert actions(driver.feed(image("ghcr.io/acme/api", "1.0.1")), "dev") == ["open-pr", "block"]


def test_stale_pr_is_closed_when_its_bundle_is_rolled_back_upstream() -> None:
    text = CHAIN.replace(
        "      gates: {soak: 10m}\n",
        "      gates: {soak: 10m}\n      rollback: {onDegradedWithin: 2h}\n",
    )
    driver = started(text)
    driver.feed(health("shop", "dev", "healthy"), T0)
    driver.advance(timedelta(minutes=10))  # staging: bundle A (api 1.0.0)
    driver.feed(image("ghcr.io/acme/api", "1.1.0", labels=EU), driver.now)
    driver.feed(health("shop", "dev", "healthy"), driver.now)
    driver.advance(timedelta(minutes=10))  # staging: bundle B (api 1.1.0)
    assert driver.live("staging") == {"api": "1.1.0", "ranker": "1"}
    driver.feed(health("shop", "staging", "healthy"), driver.now)
    driver.advance(timedelta(hours=1))  # prod: PR for B, waiting for approvals
    pending = driver.state.envs["prod"].pending
    assert pending is not None and pending.bundle.summary()["api"] == "1.1.0"
    decisions = driver.feed(
        health("shop", "staging", "degraded"), driver.now + timedelta(minutes=5)
    )
    assert actions(decisions, "staging") == ["rollback", "hold", "block"]
    assert driver.live("staging") == {"api": "1.0.0", "ranker": "1"}
    assert actions(decisions, "prod")[0] == "close-pr"
    assert driver.state.envs["prod"].pending is None


def test_pr_closed_events_from_the_scm_merge_or_refuse_the_pending_bundle() -> None:
    auto_off = CHAIN.replace(
        "    - name: dev\n      auto: true", "    - name: dev\n      auto: false"
    )
    driver = started(auto_off)
    pending = driver.state.envs["dev"].pending
    assert pending is not None

    def closed(merged: bool, bundle: str) -> Observation:
        event = parse_event(
            {
                "specversion": "1.0",
                "id": f"d-{merged}-{bundle}",
                "source": "/hooks/github",
                "type": "promoter.pr.closed",
                "data": {"pipeline": "shop", "environment": "dev", "bundle": bundle,
                         "merged": merged, "pr": 7, "by": "bob"},
            }
        )  # fmt: skip
        return observe_event(event, driver.now)

    merged = Merged("shop", "dev", pending.bundle.id, via="github")
    assert closed(merged=True, bundle=pending.bundle.id) == merged
    assert closed(merged=False, bundle="other") == Closed("shop", "dev", "other", via="github")
    assert driver.feed(closed(merged=True, bundle="an-older-bundle")) == []
    assert driver.live("dev") is None
    driver.feed(closed(merged=True, bundle=pending.bundle.id))
    assert driver.live("dev") == pending.bundle.summary()
    assert driver.state.envs["dev"].pending is None
