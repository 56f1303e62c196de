"""Reviews, dismissals, issue comments and labels of pull requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from promoter.testing.github_emulator import gitrepo, pullshapes
from promoter.testing.github_emulator.common import (
    find_pull,
    json_object,
    links,
    page,
    review_hook,
    world_of,
)
from promoter.testing.github_emulator.router import (
    ApiError,
    Ctx,
    Reply,
    Route,
    not_found,
    unprocessable,
)
from promoter.testing.github_emulator.store import Comment, RepoState, Review
from promoter.testing.github_emulator.world import association

__all__ = ["ROUTES"]

_REVIEWS = "/repos/{owner}/{repo}/pulls/{pull_number}/reviews"
_ISSUE = "/repos/{owner}/{repo}/issues/{issue_number}"
_EVENTS = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}
_OWN = {
    "APPROVE": "Can not approve your own pull request",
    "REQUEST_CHANGES": "Can not request changes on your own pull request",
}


def _simple(message: str) -> ApiError:
    """A 422 in the validation-error-simple shape: `errors` is a list of strings."""
    return ApiError(422, "Unprocessable Entity", errors=[message])


def list_reviews(ctx: Ctx) -> Reply:
    """GET /reviews: chronological; pending reviews are visible to their author only."""
    world = world_of(ctx)
    with world.repo(ctx) as state:
        pr = find_pull(world, state, ctx)
        shapes = [
            pullshapes.review(links(ctx), state, r, association(world, state, r.user))
            for r in state.reviews
            if r.pull == pr.number and (r.state != "PENDING" or r.user == ctx.login)
        ]
        return page(ctx, shapes)


def create_review(ctx: Ctx) -> Reply:
    """POST /reviews: APPROVE, REQUEST_CHANGES, COMMENT, or no event for a pending review."""
    world = world_of(ctx)
    body = json_object(ctx)
    event = body.get("event")
    if event is not None and event not in _EVENTS:
        raise _simple(f"Invalid event {event!r}: use APPROVE, REQUEST_CHANGES or COMMENT")
    with world.repo(ctx) as state:
        pr = find_pull(world, state, ctx)
        if pr.user == ctx.login and event in _OWN:
            raise _simple(_OWN[event])
        commit = body.get("commit_id") or pr.head_sha
        path = world.git_dir(state)
        if not isinstance(commit, str) or gitrepo.object_type(path, commit) != "commit":
            raise _simple("Commit not found: commit_id must be a commit of the pull request")
        pending = [r for r in state.reviews if r.pull == pr.number and r.state == "PENDING"]
        if event is None and any(r.user == ctx.login for r in pending):
            raise _simple("User can only have one pending review per pull request")
        item = Review(
            id=state.new_id(),
            pull=pr.number,
            user=ctx.login,
            body=str(body.get("body") or ""),
            state=_EVENTS[event] if event else "PENDING",
            commit_id=commit,
            submitted_at=ctx.now if event else None,
        )
        state.reviews.append(item)
        if event:
            review_hook(ctx, state, pr, item, "submitted")
        who = association(world, state, ctx.login)
        return Reply(200, pullshapes.review(links(ctx), state, item, who))


def _review_of(ctx: Ctx, state: RepoState, number: int) -> Review:
    review_id = ctx.number("review_id")
    for item in state.reviews:
        if item.pull == number and item.id == review_id:
            if item.state == "PENDING" and item.user != ctx.login:
                break
            return item
    raise not_found()


def get_review(ctx: Ctx) -> Reply:
    """GET /reviews/{id}."""
    world = world_of(ctx)
    with world.repo(ctx) as state:
        item = _review_of(ctx, state, find_pull(world, state, ctx).number)
        who = association(world, state, item.user)
        return Reply(200, pullshapes.review(links(ctx), state, item, who))


def dismiss_review(ctx: Ctx) -> Reply:
    """PUT /reviews/{id}/dismissals: the review becomes DISMISSED."""
    world = world_of(ctx)
    body = json_object(ctx)
    if not isinstance(body.get("message"), str):
        raise ApiError(422, 'Invalid request.\n\n"message" wasn\'t supplied.')
    with world.repo(ctx, "write") as state:
        pr = find_pull(world, state, ctx)
        item = _review_of(ctx, state, pr.number)
        if item.state == "PENDING":
            raise _simple("Can not dismiss a pending review")
        if item.state == "COMMENTED":
            raise _simple("Can not dismiss a commented pull request review")
        item.state = "DISMISSED"
        review_hook(ctx, state, pr, item, "dismissed")
        who = association(world, state, item.user)
        return Reply(200, pullshapes.review(links(ctx), state, item, who))


def list_comments(ctx: Ctx) -> Reply:
    """GET /issues/{n}/comments: ascending, optionally only those updated `since`."""
    world = world_of(ctx)
    since = ctx.query.get("since")
    after = datetime.fromisoformat(since).timestamp() if since else None
    with world.repo(ctx) as state:
        pr = find_pull(world, state, ctx, "issue_number")
        shapes = [
            pullshapes.comment(links(ctx), state, c, association(world, state, c.user))
            for c in state.comments
            if c.issue == pr.number and (after is None or c.updated_at >= after)
        ]
        return page(ctx, shapes)


def create_comment(ctx: Ctx) -> Reply:
    """POST /issues/{n}/comments: 201 with Location."""
    world = world_of(ctx)
    body = json_object(ctx)
    text = body.get("body")
    if not isinstance(text, str) or not text:
        raise unprocessable(resource="IssueComment", field="body", code="missing_field")
    with world.repo(ctx) as state:
        pr = find_pull(world, state, ctx, "issue_number")
        item = Comment(
            id=state.new_id(),
            issue=pr.number,
            user=ctx.login,
            body=text,
            created_at=ctx.now,
            updated_at=ctx.now,
        )
        state.comments.append(item)
        who = association(world, state, ctx.login)
        shape = pullshapes.comment(links(ctx), state, item, who)
        return Reply(201, shape, {"Location": shape["url"]})


def get_comment(ctx: Ctx) -> Reply:
    """GET /issues/comments/{comment_id}."""
    world = world_of(ctx)
    with world.repo(ctx) as state:
        wanted = ctx.number("comment_id")
        for item in state.comments:
            if item.id == wanted:
                who = association(world, state, item.user)
                return Reply(200, pullshapes.comment(links(ctx), state, item, who))
        raise not_found()


def get_label(ctx: Ctx) -> Reply:
    """GET /labels/{name}: a label of the repository."""
    world = world_of(ctx)
    with world.repo(ctx) as state:
        name = ctx.param("name").lower()
        for label in state.labels.values():
            if label.name.lower() == name:
                return Reply(200, pullshapes.label(links(ctx), state, label))
        raise not_found()


def _label_names(body: Any) -> list[str]:
    items = body.get("labels") if isinstance(body, dict) else body
    if not isinstance(items, list) or not items:
        raise unprocessable(resource="Label", field="labels", code="missing_field")
    names = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str) or not name.strip():
            raise unprocessable(resource="Label", field="name", code="invalid")
        names.append(name.strip())
    return names


def _labels_of(ctx: Ctx, state: RepoState, names: list[str]) -> list[dict[str, Any]]:
    return [pullshapes.label(links(ctx), state, state.label(n)) for n in names]


def add_labels(ctx: Ctx) -> Reply:
    """POST /issues/{n}/labels: a bare array, {"labels": [...]} or objects with a name."""
    world = world_of(ctx)
    names = _label_names(ctx.body)
    with world.repo(ctx, "triage") as state:
        pr = find_pull(world, state, ctx, "issue_number")
        for name in names:
            label = state.label(name)
            if label.name not in pr.labels:
                pr.labels.append(label.name)
                pr.updated_at = ctx.now
        return Reply(200, _labels_of(ctx, state, pr.labels))


def list_labels(ctx: Ctx) -> Reply:
    """GET /issues/{n}/labels."""
    world = world_of(ctx)
    with world.repo(ctx) as state:
        pr = find_pull(world, state, ctx, "issue_number")
        return page(ctx, _labels_of(ctx, state, pr.labels))


def remove_label(ctx: Ctx) -> Reply:
    """DELETE /issues/{n}/labels/{name}: the labels that remain."""
    world = world_of(ctx)
    with world.repo(ctx, "triage") as state:
        pr = find_pull(world, state, ctx, "issue_number")
        name = ctx.param("name")
        kept = [n for n in pr.labels if n.lower() != name.lower()]
        if len(kept) == len(pr.labels):
            raise not_found("Label does not exist")
        pr.labels, pr.updated_at = kept, ctx.now
        return Reply(200, _labels_of(ctx, state, pr.labels))


ROUTES = [
    Route("GET", _REVIEWS, list_reviews, "pulls/reviews#list-reviews-for-a-pull-request"),
    Route("POST", _REVIEWS, create_review, "pulls/reviews#create-a-review-for-a-pull-request"),
    Route(
        "GET",
        f"{_REVIEWS}/{{review_id}}",
        get_review,
        "pulls/reviews#get-a-review-for-a-pull-request",
    ),
    Route(
        "PUT",
        f"{_REVIEWS}/{{review_id}}/dismissals",
        dismiss_review,
        "pulls/reviews#dismiss-a-review-for-a-pull-request",
    ),
    Route("GET", f"{_ISSUE}/comments", list_comments, "issues/comments#list-issue-comments"),
    Route("POST", f"{_ISSUE}/comments", create_comment, "issues/comments#create-an-issue-comment"),
    Route(
        "GET",
        "/repos/{owner}/{repo}/issues/comments/{comment_id}",
        get_comment,
        "issues/comments#get-an-issue-comment",
    ),
    Route("GET", "/repos/{owner}/{repo}/labels/{name}", get_label, "issues/labels#get-a-label"),
    Route("GET", f"{_ISSUE}/labels", list_labels, "issues/labels#list-labels-for-an-issue"),
    Route("POST", f"{_ISSUE}/labels", add_labels, "issues/labels#add-labels-to-an-issue"),
    Route(
        "DELETE",
        f"{_ISSUE}/labels/{{name}}",
        remove_label,
        "issues/labels#remove-a-label-from-an-issue",
    ),
]
