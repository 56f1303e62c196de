import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any, NamedTuple

import github_openapi
import pytest
from github_openapi import (
    SUBSET,
    component_schema,
    documented_statuses,
    operation_for,
    validate_component,
    validate_response,
)

DOCUMENT = json.loads(SUBSET.read_bytes())
EXAMPLES = DOCUMENT["components"]["examples"]
SHARED = Path(__file__).parents[2] / "shared/reference/github-openapi-subset.json"
PROVENANCE = SUBSET.parent / "PROVENANCE.md"

PARAMETERS = {
    "owner": "acme",
    "repo": "deploy",
    "pull_number": "12",
    "issue_number": "12",
    "ref": "heads/promoter/p/prod",
    "branch": "main",
    "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e",
    "username": "alice",
    "installation_id": "42",
}

Patch = tuple[tuple[str | int, ...], str, object]

# Official examples that do not satisfy the official schemas (upstream drift): the schema
# requires a field the example lacks. Each entry: where the field is missing, its name, and a
# value that makes the example valid; the tests check that exactly these gaps exist.
KNOWN_GAPS: dict[str, list[Patch]] = {
    "full-repository-default-response": [((), "language", None), (("source",), "language", None)],
    "pull-request": [(("requested_teams", 0), "type", "organization")],
    "pull-request-simple-items": [((0, "requested_teams", 0), "type", "organization")],
    "commit": [
        (("files", 0), "sha", "bbcd538c8e72b8c175046e27cc8f907076331401"),
        (("files", 0), "contents_url", "https://api.github.com/repos/o/r/contents/file1.txt"),
    ],
    "repository-collaborator-permission-response-if-user-has-admin-permissions": [
        (("user",), "role_name", "admin")
    ],
}


class Case(NamedTuple):
    operation: str
    method: str
    path: str
    status: int
    media: str
    example: str
    value: Any


def concrete(template: str) -> str:
    return re.sub(r"\{([^}]+)\}", lambda match: PARAMETERS[match[1]], template)


def example_value(key: str, example: dict[str, Any]) -> tuple[str, Any]:
    """(name, value) of an operation's example: a components.examples ref or inline."""
    if "$ref" in example:
        name = example["$ref"].rpartition("/")[2]
        return name, EXAMPLES[name]["value"]
    return f"inline:{key}", example["value"]


def example_cases() -> list[Case]:
    """Every example of every response of every operation, with a concrete request path."""
    cases: list[Case] = []
    for template, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                for media, content in response.get("content", {}).items():
                    for key, example in content.get("examples", {}).items():
                        name, value = example_value(key, example)
                        where = (operation["operationId"], method, concrete(template), int(status))
                        cases.append(Case(*where, media, name, value))
    return cases


CASES = example_cases()


def case_id(case: Case) -> str:
    return f"{case.operation}-{case.status}-{case.example}"


def json_path(where: tuple[str | int, ...]) -> str:
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in where)


def patched(name: str, value: Any) -> Any:
    value = copy.deepcopy(value)
    for where, field, filler in KNOWN_GAPS.get(name, []):
        node = value
        for part in where:
            node = node[part]
        node[field] = filler
    return value


def pull_request() -> dict[str, Any]:
    body = patched("pull-request", EXAMPLES["pull-request"]["value"])
    assert isinstance(body, dict)
    return body


def fails(method: str, path: str, status: int, body: object, *fragments: str) -> str:
    with pytest.raises(AssertionError) as raised:
        validate_response(method, path, status, body)
    for fragment in fragments:
        assert fragment in str(raised.value)
    return str(raised.value)


PR = "/repos/acme/deploy/pulls/12"

# --- examples --------------------------------------------------------------------------------


def test_every_component_example_is_used_by_an_operation() -> None:
    used = {case.example for case in CASES}
    assert set(EXAMPLES) <= used
    assert set(KNOWN_GAPS) <= set(EXAMPLES)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_official_examples_validate_for_their_operation(case: Case) -> None:
    operation, method, path, status, media, name, value = case
    assert operation_for(method, path) == operation
    if name in KNOWN_GAPS:
        message = fails(method, path, status, value, f"{operation} {status}")
        for where, field, _ in KNOWN_GAPS[name]:
            assert f"{json_path(where)}: '{field}' is a required property" in message
        assert f"({len(KNOWN_GAPS[name])} error(s))" in message
    validate_response(method, path, status, patched(name, value), media_type=media)


# --- rejections --------------------------------------------------------------------------------


def test_patched_pull_request_is_valid() -> None:
    validate_response("GET", PR, 200, pull_request())


def test_rejects_an_integer_id_given_as_a_string() -> None:
    body = pull_request()
    body["id"] = "1"
    message = fails("GET", PR, 200, body, "pulls/get 200", "$.id", "'1' is not of type 'integer'")
    assert '(value: "1")' in message


@pytest.mark.parametrize("value", [1.0, True])
def test_integers_are_json_integers(value: Any) -> None:
    body = pull_request()
    body["number"] = value
    fails("GET", PR, 200, body, "$.number", "is not of type 'integer'")


@pytest.mark.parametrize("field", ["url", "node_id", "mergeable", "auto_merge", "merged_by"])
def test_rejects_a_pull_request_missing_a_required_field(field: str) -> None:
    body = pull_request()
    del body[field]
    fails("GET", PR, 200, body, f"$: '{field}' is a required property")


@pytest.mark.parametrize(
    "stamp",
    [
        "2011-01-26 19:01:12Z",
        "2011-01-26T19:01:12",
        "2011-01-26",
        "2011-13-26T19:01:12Z",
        "2011-01-26T25:01:12Z",
        "1296068472",
        "",
    ],
)
def test_rejects_a_timestamp_that_is_not_rfc3339(stamp: str) -> None:
    body = pull_request()
    body["created_at"] = stamp
    fails("GET", PR, 200, body, "$.created_at", "is not a 'date-time'")


@pytest.mark.parametrize(
    "stamp", ["2011-01-26T19:01:12Z", "2011-01-26T19:01:12.123Z", "2011-01-26T19:01:12+02:00"]
)
def test_accepts_rfc3339_timestamps(stamp: str) -> None:
    body = pull_request()
    body["created_at"] = stamp
    validate_response("GET", PR, 200, body)


def test_rejects_a_relative_url() -> None:
    body = pull_request()
    body["url"] = "/repos/acme/deploy/pulls/12"
    fails("GET", PR, 200, body, "$.url", "is not a 'uri'")


@pytest.mark.parametrize(
    ("where", "field"),
    [((), "title"), ((), "number"), ((), "user"), (("head",), "sha"), (("head",), "repo")],
)
def test_rejects_null_where_the_schema_is_not_nullable(where: tuple[str, ...], field: str) -> None:
    body = pull_request()
    node = body
    for part in where:
        node = node[part]
    node[field] = None
    fails("GET", PR, 200, body, json_path((*where, field)), "None is not of type")


@pytest.mark.parametrize("body", [{"message": "gone"}, {}, [], "x"])
def test_rejects_a_body_on_a_response_documented_without_one(body: object) -> None:
    fails("DELETE", "/repos/acme/deploy/git/refs/heads/x", 204, body, "git/delete-ref 204")


@pytest.mark.parametrize("body", [None, b"", ""])
def test_accepts_no_body_where_none_is_documented(body: object) -> None:
    validate_response("DELETE", "/repos/acme/deploy/git/refs/heads/x", 204, body)
    validate_response("GET", f"{PR}/merge", 404, body)
    validate_response("GET", PR, 304, body)


def test_reports_a_few_errors_with_truncated_values() -> None:
    body = pull_request()
    for field in ("id", "number", "comments", "commits"):
        body[field] = "x" * 500
    message = fails("GET", PR, 200, body, "(4 error(s))", "… and 1 more")
    assert all(len(line) < 300 for line in message.splitlines())


def test_a_wrong_nested_object_names_the_deepest_cause() -> None:
    body = pull_request()
    body["head"]["repo"]["owner"]["id"] = "7"
    fails("GET", PR, 200, body, "$.head.repo.owner.id: '7' is not of type 'integer'")
    body = pull_request()
    body["merged_by"] = {"login": "octocat"}
    fails("GET", PR, 200, body, "$.merged_by: 'avatar_url' is a required property")


def test_a_status_the_operation_does_not_document_names_the_documented_ones() -> None:
    fails("GET", PR, 418, {}, "pulls/get", "418", "documented: 200, 304, 404, 406, 500, 503")


def test_an_unknown_operation_is_an_assertion_error() -> None:
    fails(
        "GET", "/repos/acme/deploy/hooks", 200, [], "GET /repos/acme/deploy/hooks", "no operation"
    )


# --- nullable ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field", ["mergeable", "merged_at", "closed_at", "body", "auto_merge", "merged_by", "milestone"]
)
def test_nullable_pull_request_fields_accept_null(field: str) -> None:
    body = pull_request()
    body[field] = None
    validate_response("GET", PR, 200, body)


def test_nullable_does_not_make_a_field_untyped() -> None:
    body = pull_request()
    body["mergeable"] = "yes"
    fails("GET", PR, 200, body, "$.mergeable: 'yes' is not of type 'boolean', 'null'")


@pytest.mark.parametrize(("value", "valid"), [(None, True), ({}, True), ("octocat", False)])
def test_nullable_one_of_commit_author(value: Any, valid: bool) -> None:
    body = patched("commit", EXAMPLES["commit"]["value"])
    body["author"] = value
    path = f"/repos/acme/deploy/commits/{PARAMETERS['sha']}"
    if valid:
        validate_response("GET", path, 200, body)
    else:
        fails("GET", path, 200, body, "$.author")


@pytest.mark.parametrize(
    ("value", "valid"), [(None, True), ("x", True), (3, True), (["a"], True), ({"a": 1}, False)]
)
def test_one_of_with_nullable_branches_accepts_null_once(value: Any, valid: bool) -> None:
    body = {
        "message": "Validation Failed",
        "documentation_url": "https://docs.github.com/rest",
        "errors": [{"resource": "PullRequest", "code": "custom", "value": value}],
    }
    if valid:
        validate_response("POST", "/repos/acme/deploy/pulls", 422, body)
    else:
        fails("POST", "/repos/acme/deploy/pulls", 422, body, "$.errors[0].value")


SIMPLE_USER = "#/components/schemas/simple-user"


@pytest.mark.parametrize(
    ("schema", "good", "bad"),
    [
        ({"type": "string", "enum": ["a"], "nullable": True}, [None, "a"], ["b", 1]),
        ({"enum": ["a"], "nullable": True}, [None, "a"], ["b"]),
        ({"type": "string", "enum": ["a"]}, ["a"], [None]),
        ({"$ref": SIMPLE_USER, "nullable": True}, [None], ["x", {}]),
        ({"allOf": [{"$ref": SIMPLE_USER}], "nullable": True}, [None], ["x", {}]),
        ({"anyOf": [{"type": "integer"}, {"type": "string"}], "nullable": True}, [None, 1], [[]]),
        ({"allOf": [{"$ref": SIMPLE_USER}]}, [], [None]),
        ({"type": "integer", "minimum": 1, "exclusiveMinimum": True}, [2], [1]),
        ({"type": "integer", "maximum": 1, "exclusiveMaximum": False}, [1], [2]),
        (
            {"type": "object", "properties": {"example": {"type": "integer"}}},
            [{}],
            [{"example": "x"}],
        ),
    ],
)
def test_translation_of_openapi_keywords(
    schema: dict[str, Any], good: list[Any], bad: list[Any]
) -> None:
    translated = github_openapi._translate(schema)
    for value in good:
        github_openapi._check(translated, value, "synthetic")
    for value in bad:
        with pytest.raises(AssertionError, match="synthetic"):
            github_openapi._check(translated, value, "synthetic")


def test_example_and_extension_keywords_are_dropped() -> None:
    translated = github_openapi._translate(
        {"type": "string", "example": 1, "examples": [1], "x-github": {}, "nullable": False}
    )
    assert translated == {"type": "string"}


# --- responses, media types, components ----------------------------------------------------------


def test_component_responses_are_followed() -> None:
    not_found = {
        "message": "Not Found",
        "documentation_url": "https://docs.github.com/rest/pulls/pulls#get-a-pull-request",
        "status": "404",
    }
    validate_response("GET", PR, 404, not_found)
    fails("GET", PR, 404, {"message": "Not Found", "status": 404}, "$.status")
    fails("PUT", f"{PR}/merge", 422, {"message": "x"}, "'documentation_url' is a required property")


def test_merge_conflict_bodies_are_inline_schemas() -> None:
    validate_response("PUT", f"{PR}/merge", 405, {"message": "Pull Request is not mergeable"})
    fails("PUT", f"{PR}/merge", 409, {"message": 409}, "$.message")


def test_default_response_is_the_fallback() -> None:
    operation = {
        "operationId": "x/y",
        "responses": {
            "200": {"description": "ok"},
            "default": {"$ref": "#/components/responses/gone"},
        },
    }
    assert github_openapi._response(operation, 500)["description"] == "Gone"
    assert github_openapi._response(operation, 200)["description"] == "ok"


def test_other_media_types_and_raw_bytes() -> None:
    path = f"/repos/acme/deploy/commits/{PARAMETERS['sha']}"
    validate_response("GET", path, 200, PARAMETERS["sha"], media_type="application/vnd.github.sha")
    with pytest.raises(AssertionError, match="no text/html content"):
        validate_response("GET", path, 200, "<p>", media_type="text/html")
    sha = PARAMETERS["sha"].encode()
    validate_response("GET", path, 200, sha, media_type="application/vnd.github.sha")
    ref = json.dumps(EXAMPLES["git-ref"]["value"]).encode()
    validate_response("GET", "/repos/acme/deploy/git/ref/heads/featureA", 200, ref)
    with pytest.raises(AssertionError, match="body is not JSON"):
        validate_response("GET", "/repos/acme/deploy/git/ref/heads/featureA", 200, b"{")


def test_errors_are_listed_in_instance_order() -> None:
    item = patched("pull-request-simple-items", EXAMPLES["pull-request-simple-items"]["value"])[0]
    body = [copy.deepcopy(item) for _ in range(11)]
    for item in body:
        item["id"] = "x"
    message = fails("GET", "/repos/acme/deploy/pulls", 200, body, "(11 error(s))")
    assert [line.split(":")[0].strip() for line in message.splitlines()[1:4]] == [
        "$[0].id",
        "$[1].id",
        "$[2].id",
    ]


def test_validate_component() -> None:
    validate_component("simple-user", pull_request()["user"])
    validate_component("basic-error", {"message": "Branch not found"})
    with pytest.raises(
        AssertionError, match=r"(?s)schema simple-user.*'avatar_url' is a required property"
    ):
        validate_component("simple-user", {"login": "octocat"})
    with pytest.raises(KeyError, match="no component schema 'nope'"):
        validate_component("nope", {})


def test_component_schema_is_the_raw_document_and_a_copy() -> None:
    schema = component_schema("git-ref")
    assert schema["required"] == ["ref", "node_id", "url", "object"]
    schema["required"].clear()
    assert component_schema("git-ref")["required"] == ["ref", "node_id", "url", "object"]
    assert component_schema("pull-request")["properties"]["mergeable"]["nullable"] is True


def test_documented_statuses() -> None:
    assert documented_statuses("PUT", f"{PR}/merge") == [200, 403, 404, 405, 409, 422]
    assert documented_statuses("get", f"{PR}/merge") == [204, 404]
    with pytest.raises(AssertionError, match="no operation"):
        documented_statuses("GET", "/user")


# --- path matching -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("PUT", "/repos/acme/deploy/pulls/12/merge", "pulls/merge"),
        ("get", "/repos/acme/deploy/pulls/12/merge", "pulls/check-if-merged"),
        ("GET", "/repos/acme/deploy/git/ref/heads/promoter/p/prod", "git/get-ref"),
        ("GET", "/repos/acme/deploy/git/matching-refs/heads/promoter/", "git/list-matching-refs"),
        ("DELETE", "/repos/acme/deploy/git/refs/heads/promoter/p/prod", "git/delete-ref"),
        ("PATCH", "/repos/acme/deploy/git/refs/heads/a%2Fb", "git/update-ref"),
        ("POST", "/repos/acme/deploy/git/refs", "git/create-ref"),
        ("GET", "/repos/acme/deploy/commits/heads/main", "repos/get-commit"),
        ("GET", "/repos/acme/deploy/commits/abc/status", "repos/get-combined-status-for-ref"),
        (
            "GET",
            "/repos/acme/deploy/commits/heads/main/status",
            "repos/get-combined-status-for-ref",
        ),
        ("GET", "/repos/acme/deploy/branches/promoter/p/prod", "repos/get-branch"),
        ("GET", "/repos/acme/deploy/pulls?base=main&head=acme%3Afeat&state=open", "pulls/list"),
        ("GET", "/repos/acme/deploy", "repos/get"),
        ("GET", "/rate_limit", "rate-limit/get"),
        ("POST", "/app/installations/42/access_tokens", "apps/create-installation-access-token"),
    ],
)
def test_operation_for(method: str, path: str, operation: str) -> None:
    assert operation_for(method, path) == operation


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/repos/acme/deploy/git/refs/heads/main"),  # legacy GET, not in the spec
        ("DELETE", "/repos/acme/deploy/pulls/12"),
        ("GET", "/repos/acme/deploy/hooks"),
        ("GET", "/repos/acme/deploy/pulls/12/extra"),
        ("GET", "/repos/acme/team/deploy"),  # {repo} cannot hold a slash
        ("GET", "/repos/acme/deploy/"),
        ("GET", "/api/v3/repos/acme/deploy"),
        ("PARAMETERS", "/repos/acme/deploy"),
    ],
)
def test_operation_for_unknown_is_none(method: str, path: str) -> None:
    assert operation_for(method, path) is None


# --- provenance ----------------------------------------------------------------------------------


def test_copy_matches_the_sha256_in_provenance() -> None:
    recorded = re.findall(r"\b[0-9a-f]{64}\b", PROVENANCE.read_text(encoding="utf-8"))
    assert recorded == [hashlib.sha256(SUBSET.read_bytes()).hexdigest()]


@pytest.mark.skipif(not SHARED.exists(), reason="no shared reference checkout next to the repo")
def test_copy_equals_the_shared_reference() -> None:
    assert SUBSET.read_bytes() == SHARED.read_bytes()


def test_provenance_names_the_licence_the_file_declares() -> None:
    licence: dict[str, Any] = DOCUMENT["info"]["license"]
    text = PROVENANCE.read_text(encoding="utf-8")
    assert licence == {"name": "MIT", "url": "https://spdx.org/licenses/MIT"}
    assert licence["url"] in text
