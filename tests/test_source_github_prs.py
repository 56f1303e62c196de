"""GitHub source: reviews and closes of promoter's PRs become review and closed events."""

from __future__ import annotations

import pytest
from github_hooks import (
    MERGED,
    PR_BODY,
    closed,
    closed_event,
    encode,
    load,
    raw,
    review,
    review_event,
    run,
)
from webhooks import (
    only_event,
    only_reason,
)

from promoter.sources import github

# --- pull_request_review ---------------------------------------------------------------------


def test_approved_review_of_a_promoter_pr() -> None:
    result = run(raw("pull_request_review-submitted-promoter.json"), "pull_request_review")
    assert only_event(result) == review_event()


def test_changes_requested_is_compared_case_insensitively() -> None:
    payload = review(review__state="CHANGES_REQUESTED", review__user={"login": "carol"})
    event = only_event(run(encode(payload), "pull_request_review"))
    assert event == review_event(state="changes_requested", reviewer="carol")


def test_comment_review_is_ignored() -> None:
    reason = only_reason(run(encode(review(review__state="commented")), "pull_request_review"))
    assert reason == (
        "review of PR #42 is 'commented': promoter counts only approvals, change requests and "
        "dismissals"
    )


def test_other_review_actions_are_ignored() -> None:
    reason = only_reason(run(encode(review(action="edited")), "pull_request_review"))
    assert reason == (
        "pull_request_review action 'edited' is ignored; only 'submitted' and 'dismissed' are"
    )


def test_a_dismissal_withdraws_the_reviewers_verdict() -> None:
    payload = review(action="dismissed", review__state="dismissed")
    [event] = run(encode(payload), "pull_request_review").events
    assert event["data"]["state"] == "dismissed"
    assert event["data"]["reviewer"] == "bob"


def test_a_change_request_on_an_older_commit_still_counts() -> None:
    payload = review(
        review__state="changes_requested",
        review__commit_id="1405df66cbe219b0bf6355bc3d60361a8376b6b4",
    )
    [event] = run(encode(payload), "pull_request_review").events
    assert event["data"]["state"] == "changes_requested"


def test_review_of_an_older_commit_is_ignored() -> None:
    payload = review(review__commit_id="1405df66cbe219b0bf6355bc3d60361a8376b6b4")
    reason = only_reason(run(encode(payload), "pull_request_review"))
    assert reason.startswith("review of an older commit of PR #42 (1405df66cbe2")


def test_review_of_a_non_promoter_pr_is_ignored() -> None:
    reason = only_reason(run(raw("pull_request_review-submitted.json"), "pull_request_review"))
    assert reason == (
        "PR #42 is not a promoter PR: its branch 'promote/payments-api-1.4.2' is not "
        "promoter/<p>/<env>"
    )


def test_trailers_that_disagree_with_the_branch_are_not_trusted() -> None:
    body = PR_BODY.replace("Promoter-Environment: prod", "Promoter-Environment: staging")
    reason = only_reason(run(encode(review(pull_request__body=body)), "pull_request_review"))
    assert reason.startswith("PR #42: its branch names payments/prod but its body's trailers")
    assert "name payments/staging" in reason


@pytest.mark.parametrize("body", [None, "", "Promote payments to prod.", "a\n\nFixes: #3\n"])
def test_review_without_a_bundle_trailer_has_no_bundle(body: str | None) -> None:
    event = only_event(run(encode(review(pull_request__body=body)), "pull_request_review"))
    expected = review_event()
    del expected["data"]["bundle"]
    assert event == expected


def test_lf_and_crlf_bodies_read_the_same_trailers() -> None:
    lf = only_event(run(encode(review(pull_request__body=PR_BODY)), "pull_request_review"))
    assert lf == review_event()
    assert "\r\n" in load("pull_request_review-submitted-promoter.json")["pull_request"]["body"]


# --- pull_request closed ---------------------------------------------------------------------


def test_merged_promoter_pr() -> None:
    result = run(raw("pull_request-closed-promoter.json"), "pull_request")
    assert only_event(result) == closed_event(MERGED)


def test_closed_unmerged_promoter_pr() -> None:
    payload = closed(merged=False, merged_at=None, merged_by=None)
    payload["sender"] = {"login": "carol", "id": 1003, "type": "User"}
    event = only_event(run(encode(payload), "pull_request"))
    assert event == closed_event(
        {
            "pipeline": "payments",
            "environment": "prod",
            "bundle": "3c9f0e21b7aa",
            "merged": False,
            "pr": 42,
            "by": "carol",
        }
    )


def test_merged_without_merged_by_names_the_sender() -> None:
    payload = closed(merged_by=None)
    payload["sender"]["login"] = "merge-queue[bot]"
    event = only_event(run(encode(payload), "pull_request"))
    assert event == closed_event(MERGED | {"by": "merge-queue[bot]"})


def test_closed_without_a_bundle_trailer_is_ignored() -> None:
    reason = only_reason(run(encode(closed(body="Automated promotion")), "pull_request"))
    assert reason.startswith("PR #42: the PR body lacks the Promoter-Bundle trailer")


def test_closed_non_promoter_pr_is_ignored() -> None:
    reason = only_reason(run(raw("pull_request-closed.json"), "pull_request"))
    assert reason.startswith("PR #42 is not a promoter PR")


def test_closed_pr_trailer_mismatch_is_ignored() -> None:
    body = PR_BODY.replace("Promoter-Pipeline: payments", "Promoter-Pipeline: checkout")
    reason = only_reason(run(encode(closed(body=body)), "pull_request"))
    assert "trailers name checkout/prod" in reason


@pytest.mark.parametrize("action", ["opened", "synchronize", "reopened", "edited"])
def test_other_pull_request_actions_are_ignored(action: str) -> None:
    payload = load("pull_request-closed-promoter.json") | {"action": action}
    reason = only_reason(run(encode(payload), "pull_request"))
    assert reason == f"pull_request action {action!r} is ignored; only 'closed' is"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("promoter/payments/prod", ("payments", "prod")),
        ("refs/heads/promoter/web-app/eu-1", ("web-app", "eu-1")),
        ("promoter/payments", None),
        ("promoter/payments/prod/extra", None),
        ("promoter/Payments/prod", None),
        ("promoter/payments/-prod", None),
        ("promoter//prod", None),
        ("promote/payments/prod", None),
        ("promoter/payments/prod\n", None),
        ("", None),
    ],
)
def test_parse_branch(ref: str, expected: tuple[str, str] | None) -> None:
    assert github.parse_branch(ref) == expected
