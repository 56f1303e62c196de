"""`promoter validate`: each problem is reported once, at the FILE:LINE:COL of its token."""

from __future__ import annotations

from pathlib import Path

import pytest

from promoter.cli import main
from promoter.core.loader import load_text, validate_paths
from promoter.core.yamlsource import load_documents
from promoter.errors import Problem

# pipelines/checkout.yaml without comments; line numbers below are counted from this text.
BASE = """\
apiVersion: promoter/v1
kind: Pipeline
metadata:
  name: checkout
spec:
  repository:
    url: https://github.com/acme/gitops
    branch: main
  artifacts:
    - name: api
      image: ghcr.io/acme/checkout-api
      select: {semver: ">=1.2.0 <2.0.0"}
    - name: ranker
      model: checkout-ranker
      select: {newest: true}
      when: "model.metrics.auc >= 0.80"
  environments:
    - name: dev
      auto: true
      update:
        - file: envs/dev/values.yaml
          set: {image.tag: "${api.tag}", model.uri: "${ranker.uri}"}
    - name: staging
      from: [dev]
      auto: true
      gates: {soak: 10m}
      update:
        - file: envs/staging/values.yaml
          set: {image.tag: "${api.tag}", model.uri: "${ranker.uri}"}
    - name: prod-eu
      from: [staging]
      jurisdiction: eu
      gates:
        soak: 1h
        approvals: {count: 1, reviewers: [alice, bob, "@acme/sre"]}
        windows:
          - {days: [mon, tue, wed, thu], start: "09:00", end: "16:00", timezone: Europe/Amsterdam}
        when: "bundle.api.labels['org.opencontainers.image.source'] != ''"
      rollback: {onDegradedWithin: 30m}
      update:
        - file: envs/prod-eu/kustomization.yaml
          kustomizeImage: {name: ghcr.io/acme/checkout-api, newTag: "${api.tag}"}
        - file: envs/prod-eu/model.yaml
          set: {spec.predictor.model.storageUri: "${ranker.uri}"}
"""
BASE_LINES = 44

Edit = tuple[str, str]

_DEV_SET = 'dev/values.yaml\n          set: {image.tag: "${api.tag}", model.uri: "${ranker.uri}"}'
_SEMVER = '{semver: ">=1.2.0 <2.0.0"}'
_GATE_WHEN = "\"bundle.api.labels['org.opencontainers.image.source'] != ''\""


def mutate(*edits: Edit) -> str:
    """BASE with each `old` (which must occur exactly once) replaced by `new`."""
    text = BASE
    for old, new in edits:
        assert text.count(old) == 1, f"edit target is not unique in BASE: {old!r}"
        text = text.replace(old, new)
    return text


def dev_set(tag: str, uri: str = "${ranker.uri}") -> Edit:
    """Replace the two values of the dev environment's `set:` (line 22)."""
    return _DEV_SET, f'dev/values.yaml\n          set: {{image.tag: "{tag}", model.uri: "{uri}"}}'


def problems_of(text: str) -> list[Problem]:
    loaded, problems = load_text(text, "p.yaml")
    assert loaded == []
    return problems


_NEW_ARTIFACT = "    - name: api\n      image: ghcr.io/other\n      select: {newestBuild: true}\n"
_DEV = "    - name: dev\n      auto"

# Each case is one edit of BASE and its one problem, written LINE:COL: message fragment.
CASES: dict[str, tuple[Edit, str]] = {
    "yaml-syntax-error": (("main", "main: x"), "8:17: YAML syntax: mapping values are not allowed"),
    "duplicate-yaml-key": (
        ("    branch: main\n", "    branch: main\n    branch: dev\n"),
        "9:5: duplicate key 'branch' (first at line 8)",
    ),
    "unknown-field": (
        ("branch:", "branh:"),
        "8:5: unknown field 'branh' in spec.repository; did you mean 'branch'?",
    ),
    "missing-field": (
        ("    url: https://github.com/acme/gitops\n", ""),
        "6:3: missing required field 'url' in spec.repository",
    ),
    "missing-top-level-field": (("kind: Pipeline\n", ""), "1:1: missing required field 'kind'"),
    "duplicate-environment": (
        ("name: prod-eu\n      from: [staging]", "name: staging\n      from: [dev]"),
        "30:13: duplicate environment name 'staging' (first at line 23)",
    ),
    "duplicate-artifact": (
        ("    - name: ranker\n", _NEW_ARTIFACT + "    - name: ranker\n"),
        "13:13: duplicate artifact name 'api' (first at line 10)",
    ),
    "unknown-from": (
        ("from: [dev]", "from: [qa]"),
        "24:14: unknown environment 'qa' in from; known: dev, prod-eu, staging",
    ),
    "cyclic-from-two": (
        (_DEV, "    - name: dev\n      from: [staging]\n      auto"),
        "25:13: cyclic from: dev -> staging -> dev",
    ),
    "cyclic-from-three": (
        (_DEV, "    - name: dev\n      from: [prod-eu]\n      auto"),
        "25:13: cyclic from: dev -> prod-eu -> staging -> dev",
    ),
    "self-reference-in-from": (
        ("from: [dev]", "from: [staging]"),
        "24:14: environment 'staging' lists itself in from",
    ),
    "unknown-placeholder-attribute": (
        dev_set("${api.tagg}"),
        "22:29: unknown placeholder attribute 'tagg' in '${api.tagg}'",
    ),
    "placeholder-unknown-artifact": (
        dev_set("${web.tag}"),
        "22:29: placeholder ${web.tag} names unknown artifact 'web'; known: api, ranker",
    ),
    "model-placeholder-digest": (
        dev_set("${api.tag}", "${ranker.digest}"),
        "22:54: placeholder ${ranker.digest}: a model artifact has no digest",
    ),
    "unterminated-placeholder": (dev_set("v${api.tag"), "22:30: unterminated placeholder '${'"),
    "placeholder-without-attribute": (dev_set("${api}"), "22:29: invalid placeholder '${api}'"),
    "bad-semver-range": (("<2.0.0", "<<2"), "12:24: invalid semver range '>=1.2.0 <<2'"),
    "bad-regex-points-at-bracket": (
        (_SEMVER, '{tagPattern: "^v(?P<version>[0-9+)$"}'),
        "12:43: invalid regular expression '^v(?P<version>[0-9+)$': unterminated character set",
    ),
    "tag-pattern-without-version-group": (
        (_SEMVER, '{tagPattern: "^v(.+)$"}'),
        "12:28: tagPattern '^v(.+)$' needs a named group 'version'",
    ),
    "select-two-strategies": (
        (_SEMVER, '{semver: "^1.0.0", newestBuild: true}'),
        "12:15: newest (got semver, newestBuild)",
    ),
    "select-zero-strategies": (
        (_SEMVER, "{}"),
        "12:15: select needs exactly one of semver, tagPattern, newestBuild, digest, newest",
    ),
    "select-newest-on-image": (
        (_SEMVER, "{newest: true}"),
        "12:16: select.newest applies to model artifacts",
    ),
    "select-newest-build-on-model": (
        ("{newest: true}", "{newestBuild: true}"),
        "15:16: select.newestBuild applies to image artifacts",
    ),
    "cel-syntax-error": (
        ("auc >= 0.80", "auc >= >= 0.80"),
        "16:35: invalid CEL expression: syntax error at '>= 0.80' (line 1, column 22)",
    ),
    "cel-unknown-variable": (
        ("auc >= 0.80", "auc >= limit"),
        "16:35: unknown variable 'limit' in CEL expression; available: artifact, model",
    ),
    "cel-unknown-variable-plain-scalar": (
        ('"model.metrics.auc >= 0.80"', "model.metrics.auc >= limit"),
        "16:34: unknown variable 'limit'",
    ),
    "cel-unknown-variable-single-quoted": (
        ('"model.metrics.auc >= 0.80"', "'model.metrics.auc >= limit'"),
        "16:35: unknown variable 'limit'",
    ),
    "gate-cel-unknown-variable": (
        (_GATE_WHEN, "\"bundel.api.labels['x'] != ''\""),
        "38:16: unknown variable 'bundel' in CEL expression; available: bundle, environment",
    ),
    "unknown-time-zone": (
        ("Amsterdam}", "Amsterdm}"),
        "37:82: unknown time zone 'Europe/Amsterdm'",
    ),
    "window-hour-25": (('start: "09:00"', 'start: "25:00"'), "37:49: invalid time '25:00'"),
    "window-time-one-digit": (('start: "09:00"', "start: 9:00"), "37:49: invalid time '9:00'"),
    "absolute-file-path": (
        ("file: envs/dev/", "file: /etc/"),
        "21:17: file path '/etc/values.yaml' is absolute",
    ),
    "file-path-dotdot": (
        ("file: envs/dev/", "file: envs/../../"),
        "21:17: file path 'envs/../../values.yaml' leaves the repository with '..'",
    ),
    "bad-duration": (("{soak: 10m}", "{soak: 10 minutes}"), "26:21: invalid duration '10 minutes'"),
    "wrong-api-version": (
        ("promoter/v1", "promoter/v2"),
        "1:13: apiVersion: Input should be 'promoter/v1'",
    ),
    "unknown-host-needs-provider": (
        ("https://github.com/acme/gitops", "https://git.example.com/acme/gitops"),
        "7:5: cannot tell who hosts 'https://git.example.com/acme/gitops': set provider: github",
    ),
    "github-url-without-repo": (
        ("https://github.com/acme/gitops", "https://github.com/acme"),
        "7:5: GitHub repository URL 'https://github.com/acme' must look like",
    ),
    "merge-method-on-local": (
        ("https://github.com/acme/gitops", "./gitops\n    mergeMethod: squash"),
        "7:5: apiUrl and mergeMethod apply to provider github only",
    ),
    "unknown-merge-method": (
        ("    branch: main\n", "    branch: main\n    mergeMethod: fast-forward\n"),
        "9:18: repository.mergeMethod: Input should be 'merge', 'squash' or 'rebase'",
    ),
    "invalid-reviewer": (
        ("[alice, bob,", '[alice, "bob smith",'),
        "35:50: invalid reviewer 'bob smith'",
    ),
}


@pytest.mark.parametrize(("edit", "expected"), CASES.values(), ids=CASES)
def test_one_bad_edit_gives_one_problem_at_its_token(edit: Edit, expected: str) -> None:
    line, column, fragment = expected.split(":", 2)
    problems = problems_of(mutate(edit))
    assert [(p.file, p.line, p.column) for p in problems] == [("p.yaml", int(line), int(column))]
    assert fragment.strip() in problems[0].message


def test_base_pipeline_is_valid() -> None:
    loaded, problems = load_text(BASE, "p.yaml")
    assert problems == []
    assert [(item.pipeline.metadata.name, item.file, item.line) for item in loaded] == [
        ("checkout", "p.yaml", 1)
    ]
    assert loaded[0].pipeline.environment("dev").auto is True


def test_checkout_example_in_repository_is_valid() -> None:
    path = Path(__file__).resolve().parent.parent / "pipelines" / "checkout.yaml"
    loaded, problems = validate_paths([path])
    assert problems == []
    assert [item.pipeline.metadata.name for item in loaded] == ["checkout"]


def test_yaml_11_words_stay_strings_under_the_core_schema() -> None:
    documents, syntax = load_documents("a: no\nb: on\nc: 9:30\nd: yes\ne: true\nf: Off\ng: 010\n")
    assert syntax == []
    assert documents[0].data == {
        "a": "no",
        "b": "on",
        "c": "9:30",
        "d": "yes",
        "e": True,
        "f": "Off",
        "g": 10,
    }


def test_jurisdiction_no_stays_the_string_no() -> None:
    loaded, problems = load_text(mutate(("jurisdiction: eu", "jurisdiction: no")), "p.yaml")
    assert problems == []
    assert loaded[0].pipeline.environment("prod-eu").jurisdiction == "no"


def test_several_problems_are_all_reported_in_line_order() -> None:
    text = mutate(
        ("{soak: 10m}", "{soak: 10 minutes}"),
        ("from: [dev]", "from: [qa]"),
        ("branch: main", "branh: main"),
        ("apiVersion: promoter/v1", "apiVersion: v1"),
    )
    problems = problems_of(text)
    assert [(p.line, p.column) for p in problems] == [(1, 13), (8, 5), (24, 14), (26, 21)]
    assert "unknown environment 'qa'" in problems[2].message


def test_non_mapping_document_is_a_problem() -> None:
    assert [str(p) for p in problems_of("- a\n- b\n")] == [
        "p.yaml:1:1: a pipeline document must be a mapping"
    ]


def test_multi_document_file_loads_every_pipeline() -> None:
    second = BASE.replace("name: checkout", "name: checkout-b")
    loaded, problems = load_text(BASE + "---\n" + second, "p.yaml")
    assert problems == []
    assert [(i.pipeline.metadata.name, i.line) for i in loaded] == [
        ("checkout", 1),
        ("checkout-b", BASE_LINES + 2),
    ]


def test_problem_in_second_document_uses_file_line_numbers() -> None:
    second = mutate(("branch: main", "branh: main")).replace("name: checkout", "name: other")
    loaded, problems = load_text(BASE + "---\n" + second, "p.yaml")
    assert [i.pipeline.metadata.name for i in loaded] == ["checkout"]
    assert [(p.line, p.column) for p in problems] == [(BASE_LINES + 1 + 8, 5)]


def test_same_pipeline_name_in_two_files_is_reported(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(BASE, encoding="utf-8")
    second.write_text(BASE, encoding="utf-8")
    loaded, problems = validate_paths([tmp_path])
    assert [item.file for item in loaded] == [str(first)]
    assert problems == [
        Problem(str(second), 1, 1, f"duplicate pipeline name 'checkout' (first at {first}:1)")
    ]


def test_same_pipeline_name_twice_in_one_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(BASE + "---\n" + BASE, encoding="utf-8")
    _, problems = validate_paths([path])
    assert [(p.line, p.column) for p in problems] == [(BASE_LINES + 2, 1)]
    assert f"duplicate pipeline name 'checkout' (first at {path}:1)" in problems[0].message


def test_validate_directory_accepts_yaml_and_yml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.yaml").write_text(BASE, encoding="utf-8")
    (tmp_path / "sub" / "b.yml").write_text(BASE.replace("checkout", "other"), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not: [yaml", encoding="utf-8")
    assert main(["validate", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "ok: 2 pipeline(s) valid" in err


def test_validate_prints_file_line_col_lines_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    text = mutate(("branch: main", "branh: main"), ("{soak: 10m}", "{soak: 1 day}"))
    path.write_text(text, encoding="utf-8")
    assert main(["validate", str(path)]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}:8:5: unknown field 'branh'")
    assert lines[1].startswith(f"{path}:26:21: spec.environments[1].gates.soak: invalid duration")
    assert "2 problem(s) found" in err


def test_validate_empty_directory_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(tmp_path)]) == 1
    assert "no pipeline files found" in capsys.readouterr().err


def test_undecodable_file_is_reported_at_line_1(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    _, problems = validate_paths([path])
    assert [(p.file, p.line, p.column) for p in problems] == [(str(path), 1, 1)]
    assert problems[0].message.startswith("cannot read file")


# --- regressions: defects found by these tests and fixed ---


def test_regex_error_at_first_character_points_at_that_character() -> None:
    problems = problems_of(mutate((_SEMVER, '{tagPattern: "*v(?P<version>.+)$"}')))
    assert [(p.line, p.column) for p in problems] == [(12, 29)]  # the '*', not the '"' at 28


@pytest.mark.parametrize(
    "when",
    [
        '"bundle.api.labels[\\"x\\"] == \'\' && limit"',  # double-quoted with \" escapes
        "'bundle.api.labels[''x''] == \"\" && limit'",  # single-quoted with '' escapes
    ],
)
def test_cel_column_accounts_for_escapes_in_quoted_scalar(when: str) -> None:
    problems = problems_of(mutate((_GATE_WHEN, when)))
    assert [(p.line, p.column) for p in problems] == [(38, 50)]  # where `limit` is in the source


def test_cel_error_in_multiline_quoted_scalar_points_at_its_line() -> None:
    edit = ('"model.metrics.auc >= 0.80"', '"model.metrics.auc >=\n        limit"')
    problems = problems_of(mutate(edit))
    assert [(p.line, p.column) for p in problems] == [(17, 9)]


def test_typo_in_list_item_key_still_suggests_the_field() -> None:
    problems = problems_of(mutate(("    - name: api\n", "    - nme: api\n")))
    assert any("unknown field 'nme'" in p.message and "'name'" in p.message for p in problems)


@pytest.mark.parametrize(
    ("repository", "provider", "api"),
    [
        ("{url: https://github.com/acme/gitops}", "github", "https://api.github.com"),
        ("{url: ./gitops}", "local", None),
        ("{url: file:///srv/gitops.git}", "local", None),
        (
            "{url: https://ghe.example.com/acme/gitops.git, provider: github}",
            "github",
            "https://ghe.example.com/api/v3",
        ),
        (
            (
                "{url: http://127.0.0.1:9/acme/gitops.git, provider: github, "
                "apiUrl: http://127.0.0.1:9/api/v3/}"
            ),
            "github",
            "http://127.0.0.1:9/api/v3",
        ),
    ],
)
def test_the_provider_is_inferred_from_the_url_and_the_api_from_the_host(
    repository: str, provider: str, api: str | None
) -> None:
    text = mutate(
        (
            "repository:\n    url: https://github.com/acme/gitops\n    branch: main\n",
            f"repository: {repository}\n",
        )
    )
    loaded, problems = load_text(text, "p.yaml")
    assert problems == []
    spec = loaded[0].pipeline.spec.repository
    assert spec.provider == provider
    if api is not None:
        assert spec.github_api == api


# --- regressions found by tests/test_fuzz_pipeline.py ---


def test_control_character_is_a_problem_at_its_position() -> None:
    problems = problems_of(mutate(("branch: main", "branch: ma\x08in")))
    assert [str(p) for p in problems] == [
        "p.yaml:8:15: YAML syntax: unacceptable character #x0008; remove it"
    ]  # was: yaml.reader.ReaderError escaped from validate


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "text",
    [
        "spec: " + "[" * 5000 + "]" * 5000 + "\n",
        "spec: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n",
        "".join(" " * i + "a:\n" for i in range(1000)),
    ],
    ids=["flow-sequences", "flow-mappings", "block-mappings"],
)
def test_deep_nesting_is_a_problem_not_a_recursion_error(text: str) -> None:
    problems = problems_of(text)
    assert [p.message for p in problems] == ["YAML syntax: nested deeper than 100 levels"]
    assert problems[0].line <= 101


@pytest.mark.timeout(10)
def test_alias_chain_deeper_than_the_limit_is_a_problem() -> None:
    chain = "".join(f"c{i}: &c{i} {{spec: *c{i - 1}}}\n" for i in range(1, 3000))
    problems = problems_of("c0: &c0 {name: x}\n" + chain + "spec: *c2999\n")
    assert [(p.line, p.message) for p in problems] == [(1, "nested deeper than 100 levels")]


@pytest.mark.timeout(10)
def test_billion_laughs_stops_at_the_value_limit() -> None:
    levels = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 10))
    problems = problems_of(
        mutate(("kind: Pipeline\n", 'kind: Pipeline\nl0: &l0 ["lol"]\n' + levels))
    )
    assert [str(p) for p in problems] == ["p.yaml:1:1: more than 10000 values once aliases expand"]


def test_integer_past_the_digit_limit_is_a_problem_at_its_token() -> None:
    problems = problems_of(mutate(("{count: 1,", "{count: " + "9" * 5000 + ",")))
    assert (35, 28, "integer of 5000 digits is too large") in [
        (p.line, p.column, p.message) for p in problems
    ]  # was: ValueError (int string conversion limit) escaped from validate


@pytest.mark.parametrize("separator", ["\x85", "\u2028", "\u2029"])
def test_lines_are_counted_at_line_feeds_only(separator: str) -> None:
    text = mutate(("name: checkout", f'name: "check{separator}out"'), ("branch:", "branh:"))
    problems = problems_of(text)
    assert (8, 5) in [(p.line, p.column) for p in problems if "'branh'" in p.message]
    # PyYAML counts NEL, U+2028 and U+2029 as line breaks: it said line 9


def test_columns_on_the_first_line_ignore_a_bom() -> None:
    problems = problems_of("\ufeff" + mutate(("promoter/v1", "promoter/v2")))
    assert [(p.line, p.column) for p in problems] == [(1, 13)]


@pytest.mark.parametrize(
    ("escaped", "key"),
    [("a\\nb", "a\nb"), ("a\\Nb", "a\x85b"), ("a\\Lb", "a\u2028b"), ("\\tx", "\tx")],
)
def test_a_key_with_a_line_break_is_quoted_in_the_message(escaped: str, key: str) -> None:
    problems = problems_of(
        mutate(dev_set("${api.tag}", f'${{ranker.uri}}", "{escaped}": [], "z": "'))
    )
    assert [p.message for p in problems] == [
        f"spec.environments[0].update[0].set.{key!r}: Input should be a valid string"
    ]  # was: the raw key, so `promoter validate` printed the problem over two lines


@pytest.mark.parametrize("key", ["float", "str", "int", "bool", "literal['x']"])
def test_a_key_named_like_a_pydantic_union_tag_is_reported(key: str) -> None:
    assert [
        str(p) for p in problems_of(mutate(("kind: Pipeline\n", f'kind: Pipeline\n"{key}": 1\n')))
    ] == [
        f"p.yaml:3:1: unknown field {key!r} in document (known: apiVersion, kind, metadata, spec)"
    ]  # was: IndexError; the key was taken for a union member's tag and dropped
    text = mutate(("  name: checkout\n", f'  name: checkout\n  "{key}": 1\n'))
    assert [(p.line, p.column) for p in problems_of(text)] == [(5, 3)]


def test_names_with_line_breaks_are_quoted_in_lists_of_known_names() -> None:
    text = mutate(("- name: prod-eu\n", '- name: "prod\\neu"\n'), ("from: [dev]", "from: [qa]"))
    messages = [p.message for p in problems_of(text)]
    assert "unknown environment 'qa' in from; known: dev, 'prod\\neu', staging" in messages
    # was: the raw name, so `promoter validate` printed the problem over two lines
