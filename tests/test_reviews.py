"""Approval from PR reviews: the latest-review-per-user tally and the planner's PR snapshots."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Literal

from builders import T0, Driver, actions, compiled, image

from promoter.core.observations import Approved, MergeRefused, PullSynced
from promoter.core.reviews import ReviewState, SubmittedReview, tally

HEAD, OLD = "h" * 40, "o" * 40


def review(user: str, state: ReviewState, minute: int, commit: str = HEAD) -> SubmittedReview:
    return SubmittedReview(user, state, commit, T0 + timedelta(minutes=minute), id=minute)


def test_latest_review_per_user_counts_and_comments_do_not_change_a_stance() -> None:
    stance = tally(
        [
            review("alice", "CHANGES_REQUESTED", 1),
            review("alice", "APPROVED", 2),
            review("alice", "COMMENTED", 3),
            review("bob", "APPROVED", 1),
            review("bob", "CHANGES_REQUESTED", 2),
        ],
        HEAD,
        author="promoter[bot]",
    )
    assert stance.approvals == ("alice",)
    assert stance.rejections == ("bob",)


def test_dismissed_cancels_and_pending_is_ignored() -> None:
    pending = SubmittedReview("carol", "PENDING", HEAD, None, id=9)
    stance = tally(
        [review("alice", "APPROVED", 1), review("alice", "DISMISSED", 2), pending], HEAD, "bot"
    )
    assert stance.approvals == ()
    assert stance.rejections == ()


def test_only_approvals_of_the_current_head_count_and_never_the_authors() -> None:
    stance = tally(
        [review("alice", "APPROVED", 1, OLD), review("Bot", "APPROVED", 2)], HEAD, author="bot"
    )
    assert stance.approvals == ()
    assert stance.stale == ("alice",)


def test_a_change_request_on_an_older_head_still_blocks() -> None:
    stance = tally([review("bob", "CHANGES_REQUESTED", 1, OLD)], HEAD, "bot")
    assert stance.rejections == ("bob",)


def test_reviews_are_ordered_by_time_not_by_list_position() -> None:
    stance = tally([review("alice", "APPROVED", 5), review("alice", "DISMISSED", 1)], HEAD, "b")
    assert stance.approvals == ("alice",)


PIPELINE = """
apiVersion: promoter/v1
kind: Pipeline
metadata: {name: shop}
spec:
  repository: {url: "https://github.com/acme/deploy"}
  artifacts:
    - {name: api, image: ghcr.io/acme/api, select: {semver: ">=1.0.0"}}
  environments:
    - name: prod
      gates:
        approvals: {count: 1, reviewers: [alice, "@acme/sre"]}
      update: [{file: prod.yaml, set: {tag: "${api.tag}"}}]
"""


def opened() -> tuple[Driver, str]:
    driver = Driver(compiled(PIPELINE), auto_merge=False)
    decisions = driver.feed(image("ghcr.io/acme/api", "1.0.0"), T0)
    assert actions(decisions) == ["open-pr", "block"]
    bundle = decisions[0].bundle
    assert bundle is not None
    return driver, bundle.id


def synced(
    bundle: str,
    approvals: Iterable[tuple[str, tuple[str, ...]]] = (),
    rejections: Iterable[str] = (),
    state: Literal["open", "merged", "closed"] = "open",
    head: str = HEAD,
) -> PullSynced:
    return PullSynced("shop", "prod", bundle, state, head, tuple(approvals), tuple(rejections))


def test_a_snapshot_with_a_listed_approver_merges_at_the_approved_head() -> None:
    driver, bundle = opened()
    assert driver.feed(synced(bundle, [("mallory", ())])) == []
    decisions = driver.feed(synced(bundle, [("carol", ("@acme/sre",))]))
    assert actions(decisions) == ["merge"]
    assert decisions[0].head == HEAD


def test_a_snapshot_replaces_what_earlier_reviews_said() -> None:
    driver, bundle = opened()
    driver.feed(synced(bundle, [], ["bob"]))
    assert "changes-requested" in driver.state.envs["prod"].blocked
    driver.feed(synced(bundle, []))  # bob's review was dismissed
    assert "changes-requested" not in driver.state.envs["prod"].blocked
    assert actions(driver.feed(synced(bundle, [("alice", ())], ["bob"]))) == []


def test_a_snapshot_of_an_older_bundle_is_ignored_and_merged_state_goes_live() -> None:
    driver, bundle = opened()
    assert driver.feed(synced("0" * 12, [("alice", ())])) == []
    driver.feed(synced(bundle, state="merged"))
    assert driver.live("prod") == {"api": "1.0.0"}


def test_a_refused_merge_drops_the_approvals_until_the_new_head_is_approved() -> None:
    driver, bundle = opened()
    driver.feed(synced(bundle, [("alice", ())]))
    decisions = driver.feed(MergeRefused("shop", "prod", bundle, "head moved"))
    assert actions(decisions) == ["block"]
    pending = driver.state.envs["prod"].pending
    assert pending is not None and not pending.merging and pending.approvals == {}
    merge = driver.feed(synced(bundle, [("alice", ())], head="n" * 40))
    assert actions(merge) == ["merge"] and merge[0].head == "n" * 40


def test_review_events_still_work_for_local_pipelines() -> None:
    driver, _ = opened()
    decisions = driver.feed(Approved("shop", "prod", "alice"))
    assert actions(decisions) == ["merge"] and decisions[0].head is None
