"""Operator commands in the planner: promote skips waiting gates, rollback reverts and holds."""

from __future__ import annotations

from datetime import timedelta

from builders import T0, actions, health, image
from test_planner import EU, started, to_prod_pr

from promoter.core.observations import Held, Promote, Resumed, Rollback


def test_promote_skips_soak_and_approvals_but_not_hold_or_residency() -> None:
    driver = started()
    assert driver.live("staging") is None  # dev is live, staging waits for health and soak
    decisions = driver.feed(Promote("shop", "staging", "ops"))
    assert actions(decisions, "staging")[:2] == ["open-pr", "merge"]
    assert "promoted by ops; waiting gates skipped" in decisions[1].reason
    assert driver.live("staging") == {"api": "1.0.0", "ranker": "1"}

    driver.feed(Held("shop", "prod", "freeze"))
    refused = driver.feed(Promote("shop", "prod", "ops"))
    assert next((d.action, d.reason) for d in refused if d.environment == "prod") == (
        "block",
        "promote by ops refused: environment is held: freeze",
    )
    driver.feed(Resumed("shop", "prod"))
    done = driver.feed(Promote("shop", "prod", "ops"))
    assert "merge" in actions(done, "prod")
    assert driver.live("prod") == {"api": "1.0.0", "ranker": "1"}


def test_promote_refuses_a_bundle_outside_the_jurisdiction() -> None:
    driver = started()
    driver.feed(image("ghcr.io/acme/api", "1.1.0", labels={"residency": "us"}))
    driver.feed(Promote("shop", "staging", "ops"))
    refused = driver.feed(Promote("shop", "prod", "ops"))
    assert refused[0].action == "block"
    assert "jurisdiction eu not allowed" in refused[0].reason
    assert driver.live("prod") is None


def test_promote_of_an_unknown_or_older_bundle_is_refused() -> None:
    driver = started()
    unknown = driver.feed(Promote("shop", "dev", "ops", bundle="nope"))
    assert unknown[0].reason == "promote by ops refused: no bundle nope"
    older = driver.feed(Promote("shop", "dev", "ops"))
    assert older[0].reason.endswith("is not newer than live; use rollback")


def test_rollback_reverts_to_the_previous_bundle_commits_and_holds() -> None:
    driver = started()
    first = driver.live("dev")
    driver.feed(image("ghcr.io/acme/api", "1.1.0", labels=EU))
    assert driver.live("dev") == {"api": "1.1.0", "ranker": "1"}
    decisions = driver.feed(Rollback("shop", "dev", "ops"))
    assert actions(decisions, "dev") == ["rollback", "hold", "block"]
    dev_block = [d for d in decisions if d.environment == "dev"][-1]
    assert dev_block.reason.startswith("refused: rolled back here")
    assert driver.live("dev") == first
    assert driver.state.envs["dev"].held
    # the rolled-back bundle is not proposed again, even after a resume
    driver.feed(Resumed("shop", "dev"))
    assert "open-pr" not in actions(driver.feed(health("shop", "dev", "healthy")), "dev")


def test_rollback_to_a_named_bundle_and_with_nothing_to_go_back_to() -> None:
    driver = started()
    nothing = driver.feed(Rollback("shop", "dev", "ops"))
    assert [d.action for d in nothing] == ["hold"]
    assert "no earlier bundle to roll back to" in nothing[0].reason
    driver.feed(Resumed("shop", "dev"))

    driver = started()
    first = driver.state.envs["dev"].live
    assert first is not None
    driver.feed(image("ghcr.io/acme/api", "1.1.0", labels=EU))
    driver.feed(image("ghcr.io/acme/api", "1.2.0", labels=EU))
    decisions = driver.feed(Rollback("shop", "dev", "ops", bundle=first.id))
    assert decisions[0].action == "rollback"
    assert driver.live("dev") == {"api": "1.0.0", "ranker": "1"}


def test_rollback_on_an_environment_with_nothing_live_is_reported() -> None:
    driver = started()
    to_prod_pr(driver)
    decisions = driver.feed(Rollback("shop", "prod", "ops"), T0 + timedelta(hours=2))
    assert [(d.action, d.reason) for d in decisions] == [("block", "rollback by ops: nothing live")]
