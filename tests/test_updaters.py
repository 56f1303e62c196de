"""File updaters: golden input/output pairs byte for byte, positioned errors, a property test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from promoter.core.loader import load_text
from promoter.core.pipeline import Update
from promoter.errors import UpdateError
from promoter.gitops.updaters import UPDATERS, UpdateContext, apply_update, update_kind
from promoter.gitops.yamledit import Value, parse, plain_ok

DATA = Path(__file__).parent / "data" / "updaters"
DIGEST = "sha256:4f2c0d5e9b1a7c3e8f6d2b0a9c8e7f6d5c4b3a2918f7e6d5c4b3a29180f7e6d5"
VALUES = {
    "api": {
        "tag": "1.4.0",
        "digest": DIGEST,
        "version": "1.4.0",
        "uri": f"ghcr.io/acme/checkout-api:1.4.0@{DIGEST}",
        "name": "ghcr.io/acme/checkout-api",
        "ref": "refs/tags/v1.4.0",
    },
    "ranker": {
        "version": "7",
        "uri": "s3://models/ranker/7",
        "name": "checkout-ranker",
        "ref": "models:/checkout-ranker/7",
    },
}
API_IMAGE = "ghcr.io/acme/checkout-api"

CASES: dict[str, dict[str, Any]] = {
    "comments": {"set": {"image.tag": "${api.tag}"}},
    "anchors": {
        "set": {
            "defaults.tag": "${api.tag}",
            "worker.image": "${api.tag}",
            "defaults.registry.host": "ghcr.io",
        }
    },
    "indent-1": {
        "set": {"image.tag": "${api.tag}", "model.uri": "${ranker.uri}", "model.name": "ranker"}
    },
    "indent-3": {
        "set": {
            "spec.template.spec.containers.0.image": "ghcr.io/acme/api:${api.tag}",
            "spec.template.spec.containers.1.image": "ghcr.io/acme/proxy:1.0",
        }
    },
    "indent-4": {
        "set": {"global.image.tag": "${api.tag}", "global.model.storage.path": "ranker/7"}
    },
    "indentless": {
        "set": {
            "spec.containers.0.image": "ghcr.io/acme/api:${api.tag}",
            "spec.containers.0.args.1": "--model=${ranker.uri}",
        }
    },
    "quotes": {
        "set": {
            "plain": "1.4.0",
            "single": "1.4.0",
            "double": "1.4.0",
            "singleEscaped": "it's",
            "doubleEscaped": 'say "hi" \\ bye\ttab',
            "flow.tag": "${api.tag}",
            "list.0": "2.0",
            "list.1": "x, y",
        }
    },
    "crlf": {"set": {"image.tag": "${api.tag}", "image.digest": "${api.digest}"}},
    "no-final-newline": {"set": {"image.tag": "${api.tag}", "image.digest": "${api.digest}"}},
    "bom": {"set": {"image.tag": "${api.tag}", "image.digest": "${api.digest}"}},
    "multi-doc": {"set": {"image.tag": "${api.tag}"}},
    "insert-key": {"set": {"image.digest": "${api.digest}", "resources.requests.cpu": "100m"}},
    "nested-create": {"set": {"global.model.uri": "${ranker.uri}", "env.name": "prod"}},
    "empty": {
        "set": {
            "image.tag": "${api.tag}",
            "image.digest": "${api.digest}",
            "model.uri": "${ranker.uri}",
        }
    },
    "block-scalar": {"set": {"config": "model=${ranker.uri}\nthreads=4\n", "description": "short"}},
    "needs-quotes": {
        "set": {
            "version": "1.10",
            "enabled": "true",
            "empty": "",
            "colon": "a: b",
            "hash": "x #y",
            "star": "*star",
            "on": "off",
            "dash": "- item",
            "count": 3,
            "ratio": 0.5,
            "flag": False,
            "same": "unchanged",
        }
    },
    "kustomize-match": {
        "kustomizeImage": {"name": API_IMAGE, "newTag": "${api.tag}", "digest": "${api.digest}"}
    },
    "kustomize-new-entry": {
        "kustomizeImage": {
            "name": API_IMAGE,
            "newName": "registry.local/checkout-api",
            "newTag": "${api.tag}",
        }
    },
    "kustomize-no-images": {"kustomizeImage": {"name": API_IMAGE, "newTag": "${api.tag}"}},
    "kustomize-empty": {
        "kustomizeImage": {"name": API_IMAGE, "newTag": "${api.tag}", "digest": "${api.digest}"}
    },
    "setters": {"setters": True},
}


def make_update(spec: dict[str, Any], file: str = "envs/dev/values.yaml") -> Update:
    return Update.model_validate({"file": file, **spec})


def ctx(file: str = "envs/dev/values.yaml") -> UpdateContext:
    return UpdateContext(pipeline="checkout", file=file, values=VALUES)


def read(name: str) -> str:
    return (DATA / name).read_bytes().decode("utf-8")


def run(text: str, spec: dict[str, Any]) -> str:
    return apply_update(text, make_update(spec), ctx())


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    out = run(read(f"{name}.in.yaml"), CASES[name])
    assert out.encode("utf-8") == (DATA / f"{name}.out.yaml").read_bytes()


def test_every_golden_file_has_a_case() -> None:
    names = {p.name.split(".")[0] for p in DATA.iterdir()}
    assert names == set(CASES)


def test_byte_level_fixtures_keep_their_bytes() -> None:
    """Guards the goldens against editors and git line-ending conversion."""
    for name in ("crlf.in.yaml", "crlf.out.yaml"):
        raw = (DATA / name).read_bytes()
        assert b"\r\n" in raw and raw.count(b"\n") == raw.count(b"\r\n")
    assert (DATA / "bom.in.yaml").read_bytes().startswith(b"\xef\xbb\xbf")
    assert (DATA / "bom.out.yaml").read_bytes().startswith(b"\xef\xbb\xbf")
    assert not (DATA / "no-final-newline.in.yaml").read_bytes().endswith(b"\n")
    assert not (DATA / "no-final-newline.out.yaml").read_bytes().endswith(b"\n")
    assert (DATA / "empty.in.yaml").read_bytes() == b""


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_output_is_a_fixed_point(name: str) -> None:
    golden = read(f"{name}.out.yaml")
    assert run(golden, CASES[name]) is golden


def test_unchanged_value_returns_the_same_string() -> None:
    text = "image:\n  tag: 1.4.0  # current\n"
    assert run(text, {"set": {"image.tag": "${api.tag}"}}) is text


def test_typed_value_replaces_a_string_of_the_same_text() -> None:
    assert run('count: "3"\n', {"set": {"count": 3}}) == "count: 3\n"
    assert run("on: true\n", {"set": {"on": "true"}}) == 'on: "true"\n'


def test_empty_value_gets_the_new_value_after_the_colon() -> None:
    text = "image:\n  tag:   # set by promoter\n  digest: &d\n"
    out = run(text, {"set": {"image.tag": "1.4.0", "image.digest": "x"}})
    assert out == "image:\n  tag: 1.4.0   # set by promoter\n  digest: &d x\n"


def test_plain_values_that_need_quotes() -> None:
    for value in ["1.10", "true", "null", "", "a: b", "x #y", "*a", "&a", "!t", "- x", "on", "1_0"]:
        assert not plain_ok(value, flow=False), value
    for value in ["1.4.0", "ghcr.io/acme/api:1.4.0", "s3://models/7", "a#b", "x:y"]:
        assert plain_ok(value, flow=False), value
    assert not plain_ok("a,b", flow=True)
    assert plain_ok("a,b", flow=False)


def test_update_kind_and_registry() -> None:
    assert set(UPDATERS) == {"set", "kustomizeImage", "setters"}
    for name, spec in CASES.items():
        assert update_kind(make_update(spec)) == next(iter(spec)), name


def test_update_model_setters_rules() -> None:
    assert make_update({"setters": True}).setters is True
    with pytest.raises(ValidationError, match="false does nothing"):
        make_update({"setters": False})
    with pytest.raises(ValidationError, match="exactly one of set, kustomizeImage, setters"):
        make_update({"setters": True, "set": {"a": "b"}})
    with pytest.raises(ValidationError, match="exactly one of set, kustomizeImage, setters"):
        make_update({})


ERRORS = [
    # (file text, update, expected position, expected words)
    ("a: &x 1\nb:\n  c: *x\n", {"set": {"b.c": "2"}}, "3:6", "set the anchored value"),
    ("a:\n  b: 1\n", {"set": {"a": "2"}}, "2:3", "holds a mapping"),
    ("a:\n- 1\n- 2\n", {"set": {"a": "2"}}, "2:1", "holds a list"),
    ("a:\n  - 1\n", {"set": {"a.3": "2"}}, "2:3", "has no item 3"),
    ("a:\n  - 1\n", {"set": {"a.x": "2"}}, "2:3", "must be an index"),
    ("x: 1\na: {b: 1}\n", {"set": {"a.c": "2"}}, "2:4", "flow-style mapping"),
    ("x: 1\na: 1\n", {"set": {"a.b.c": "2"}}, "2:4", "is a scalar"),
    ("a: 1\n", {"set": {"b.0": "2"}}, "1:1", "list item 0"),
    ("", {"set": {"a.0.b": "2"}}, "1:1", "list item 0"),
    ("a: [1\n", {"set": {"a": "2"}}, "2:1", "invalid YAML"),
    ("a: 1\n", {"set": {"a..b": "2"}}, "1:1", "empty key"),
    ("a: {b, c: 1}\n", {"set": {"a.b": "2"}}, "1:6", "has no ': '"),
    ("- 1\n", {"kustomizeImage": {"name": "x", "newTag": "1"}}, "1:1", "block mapping"),
    ("images: {}\n", {"kustomizeImage": {"name": "x", "newTag": "1"}}, "1:9", "list of entries"),
    (
        "images: [{name: y}]\n",
        {"kustomizeImage": {"name": "x", "newTag": "1"}},
        "1:9",
        "flow-style list",
    ),
    (
        "images:\n- name: x\n  newTag: &t 1\n- name: y\n  newTag: *t\n",
        {"kustomizeImage": {"name": "y", "newTag": "2"}},
        "5:11",
        "images.1.newTag is the alias *t of a value anchored at line 3",
    ),
    ("images:\n- name: x\n  newTag: *t\n", {"setters": True}, "3:11", "undefined alias"),
    (
        'a: 1\nb: 2 # {"$promoter": "checkout:nope"}\n',
        {"setters": True},
        "2:6",
        "unknown artifact 'nope'",
    ),
    ('a: 1 # {"$promoter": "checkout:ranker:tag"}\n', {"setters": True}, "1:6", "has no tag"),
    ('a: 1 # {"$promoter": "checkout"}\n', {"setters": True}, "1:6", "is malformed"),
    ('a: 1\n# {"$promoter": "checkout:api"}\n', {"setters": True}, "2:1", "follows no value"),
    ('a: {b: 1} # {"$promoter": "checkout:api"}\n', {"setters": True}, "1:11", "flow collection"),
    ('a: &x 1\nb: *x # {"$promoter": "checkout:api"}\n', {"setters": True}, "2:4", "alias"),
    ('a: 1 # {"$promoter": "fraud:api"}\n', {"setters": True}, "1:1", "no setter marker"),
    ("", {"setters": True}, "1:1", "no setter marker for pipeline 'checkout'"),
    ("a: 1\n", {"set": {"a": "${nope.tag}"}}, "1:1", "needs 'nope'"),
    ("a: 1\n", {"set": {"a": "${api.nope}"}}, "1:1", "fix the update in the pipeline"),
    # regressions: a control character raised yaml.ReaderError, deep nesting RecursionError
    ("a: 1\nb: \x08\n", {"set": {"a": "2"}}, "2:4", "unacceptable character #x0008"),
    ("a: " + "[" * 3000 + "]" * 3000 + "\n", {"set": {"b": "2"}}, "1:103", "nested deeper than"),
]


@pytest.mark.parametrize(("text", "spec", "where", "words"), ERRORS)
def test_errors_name_file_line_and_column(
    text: str, spec: dict[str, Any], where: str, words: str
) -> None:
    with pytest.raises(UpdateError) as caught:
        apply_update(text, make_update(spec, "envs/x.yaml"), ctx("envs/x.yaml"))
    message = str(caught.value)
    assert message.startswith(f"envs/x.yaml:{where}: "), message
    assert words in message


def test_error_column_ignores_a_bom() -> None:
    with pytest.raises(UpdateError, match=r"^f:1:4: "):
        apply_update("\ufeffa: {b: 1}\n", make_update({"set": {"a.c": "1"}}), ctx("f"))


FIXTURE = """\
# property fixture
image:   # the image
  repository: &repo ghcr.io/acme/api
  tag: 1.2.3 # plain
  single: 'x'
  double: "x"   # double
  empty:
  list: [a, b]  # flow
  items:
  - one
  - two
tail: *repo
"""
PATHS = [
    ("image", "tag"),
    ("image", "single"),
    ("image", "double"),
    ("image", "empty"),
    ("image", "list", 1),
    ("image", "items", 0),
    ("image", "added"),
]
VALUES_ANY = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"])),
    st.integers(),
    st.booleans(),
    st.floats(allow_nan=False),
)


def span(text: str, path: tuple[str | int, ...]) -> tuple[int, int]:
    """Where the value at `path` is in `text`; a missing key is inserted before `tail:`."""
    if path == ("image", "added"):
        return text.index("tail:"), text.index("tail:")
    node = parse(text).root
    for part in path:
        assert node is not None
        children = {k.value: v for k, v in node.value} if isinstance(part, str) else node.value
        node = children[part]
    assert node is not None
    return node.start_mark.index, node.end_mark.index


@given(path=st.sampled_from(PATHS), value=VALUES_ANY)
def test_set_changes_only_the_value(path: tuple[str | int, ...], value: Value) -> None:
    raw = value.replace("$", "$$") if isinstance(value, str) else value
    out = run(FIXTURE, {"set": {".".join(map(str, path)): raw}})
    start, end = span(FIXTURE, path)
    assert out[:start] == FIXTURE[:start]
    assert out[len(out) - (len(FIXTURE) - end) :] == FIXTURE[end:]
    data = yaml.safe_load(out)
    for part in path:
        data = data[part]
    assert data == value
    assert type(data) is type(value)


def test_pipeline_validation_points_at_setters_false() -> None:
    text = (
        "apiVersion: promoter/v1\nkind: Pipeline\nmetadata: {name: web}\nspec:\n"
        "  repository: {url: https://github.com/acme/gitops}\n"
        "  artifacts: [{name: api, image: ghcr.io/acme/web, select: {newestBuild: true}}]\n"
        "  environments:\n    - name: dev\n      update:\n"
        "        - {file: a.yaml, setters: true}\n"
        "        - {file: b.yaml, setters: false}\n"
    )
    _, problems = load_text(text, "p.yaml")
    assert [(p.line, p.column) for p in problems] == [(11, 35)]
    assert "false does nothing" in problems[0].message
    _, problems = load_text(text.replace("setters: false", "setters: true"), "p.yaml")
    assert problems == []
