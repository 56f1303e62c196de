"""Hypothesis on pipeline YAML: `promoter validate` never crashes; each problem is FILE:LINE:COL."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from fuzzing import json_values, paths, replaced
from harness import pipeline_yaml
from hypothesis import event, given
from hypothesis import strategies as st

from promoter.core.loader import validate_paths
from promoter.errors import Problem

pytestmark = pytest.mark.fuzz

ROOT = Path(__file__).resolve().parent.parent
SEED_FILES = [ROOT / "promoter" / "demo" / "pipeline.yaml", *sorted(ROOT.glob("pipelines/*.yaml"))]
SEEDS = [path.read_text(encoding="utf-8") for path in SEED_FILES] + [
    pipeline_yaml("fuzz", Path("/srv/gitops"), model="ranker", soak="10m"),
    pipeline_yaml("plain", Path("/srv/gitops"), prod_approval=False),
]
YAML_TOKENS = ["-", "- ", ":", ": ", "? ", ",", "[", "]", "{", "}", "&a ", "*a", "!!str ", "!tag ",
               "!!python/object:os.system ", "|", ">", "#", "'", '"', "---", "...", "%YAML 1.2",
               "<<: *a", "~", "null", ".inf", ".nan", "0x1F", "0o17", "1e9", "yes", "on", "\t",
               "\\", "${", "}}", "@", "`", "%"]  # fmt: skip
NAMES = ["dev", "staging", "prod", "prod-eu", "api", "ranker", "web", "", "dev "]
_KEY_VALUE = re.compile(r"^(\s*(?:- )?[^\s:#][^:#]*:[ \t]+)(\S.*)$")
_LINE_PROBLEM = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<column>\d+): (?P<message>\S.*)$")


# --- the property ---------------------------------------------------------------------------


def shown_lines(raw: bytes) -> list[str]:
    """The file's lines as an editor shows them (CRLF, CR and LF each end a line)."""
    text = raw.decode("utf-8", "replace")
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def check_problem(problem: Problem, path: Path, lines: list[str]) -> None:
    """One problem: this file, a line and column inside it, a one-line message."""
    assert problem.file == str(path)
    assert 1 <= problem.line <= len(lines), f"line out of the file ({len(lines)}): {problem}"
    width = len(lines[problem.line - 1])
    assert 1 <= problem.column <= width + 1, f"column out of the line ({width}): {problem}"
    assert problem.message.strip(), f"a problem without a message: {problem!r}"
    assert not re.search(r"[\r\n\x85\u2028\u2029]", problem.message), f"two lines: {problem!r}"
    assert _LINE_PROBLEM.match(str(problem)), f"not FILE:LINE:COL: message: {problem!r}"


def outcome(problems: list[Problem]) -> str:
    """A label for Hypothesis statistics: valid, or the kind of the first problem."""
    if not problems:
        return "valid"
    first = problems[0].message
    return "syntax" if first.startswith("YAML") else re.sub(r"\[\d+\]", "[]", first.split(":")[0])


def check_validates(raw: bytes) -> list[Problem]:
    """`promoter validate` on a file holding `raw`: a clean verdict with well-placed problems."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pipeline.yaml"
        path.write_bytes(raw)
        _, problems = validate_paths([path])
        lines = shown_lines(raw)
        for problem in problems:
            check_problem(problem, path, lines)
        return problems


def fuzz_validate(raw: bytes | str) -> None:
    """`check_validates` on `raw` (text is written as UTF-8), labelled for the statistics."""
    event(outcome(check_validates(raw.encode("utf-8") if isinstance(raw, str) else raw)))


# --- line and token mutations -----------------------------------------------------------------

yaml_values: st.SearchStrategy[str] = st.one_of(
    st.text(max_size=30),
    st.integers().map(str),
    st.floats().map(str),
    st.sampled_from(["true", "false", "null", "~", "[]", "{}", "''", '""', "yes", "no", "on"]),
    json_values.map(json.dumps),
    st.sampled_from(YAML_TOKENS),
)
"""What may replace a scalar on a line: arbitrary text, numbers, booleans, null, lists, maps."""

Lines = list[str]


def _index(draw: st.DrawFn, lines: Lines) -> int:
    return draw(st.integers(0, max(len(lines) - 1, 0)))


def delete_line(draw: st.DrawFn, lines: Lines) -> Lines:
    i = _index(draw, lines)
    return lines[:i] + lines[i + 1 :]


def duplicate_line(draw: st.DrawFn, lines: Lines) -> Lines:
    i, j = _index(draw, lines), _index(draw, lines)
    return [*lines[:j], lines[i], *lines[j:]]


def swap_lines(draw: st.DrawFn, lines: Lines) -> Lines:
    i, j = _index(draw, lines), _index(draw, lines)
    copy = list(lines)
    copy[i], copy[j] = copy[j], copy[i]
    return copy


def reindent(draw: st.DrawFn, lines: Lines) -> Lines:
    i = _index(draw, lines)
    indent = draw(st.text(alphabet=" \t", max_size=12))
    return [*lines[:i], indent + lines[i].lstrip(" \t"), *lines[i + 1 :]]


def replace_value(draw: st.DrawFn, lines: Lines) -> Lines:
    i = _index(draw, lines)
    match = _KEY_VALUE.match(lines[i])
    if match is None:
        return lines
    return [*lines[:i], match.group(1) + draw(yaml_values), *lines[i + 1 :]]


def insert_key(draw: st.DrawFn, lines: Lines) -> Lines:
    i = _index(draw, lines)
    indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
    key = draw(
        st.text(min_size=1, max_size=12) | st.sampled_from(["name", "from", "gates", "when"])
    )
    return [*lines[:i], f"{indent}{key}: {draw(yaml_values)}", *lines[i:]]


def replace_token(draw: st.DrawFn, lines: Lines) -> Lines:
    i = _index(draw, lines)
    tokens = re.findall(r"\w+|\S", lines[i])
    if not tokens:
        return lines
    old = draw(st.sampled_from(tokens))
    new = draw(st.sampled_from(YAML_TOKENS) | st.text(max_size=8))
    return [*lines[:i], lines[i].replace(old, new, 1), *lines[i + 1 :]]


def insert_unicode(draw: st.DrawFn, lines: Lines) -> Lines:
    i = _index(draw, lines)
    at = draw(st.integers(0, len(lines[i]))) if lines else 0
    noise = draw(st.text(min_size=1, max_size=6))
    line = lines[i] if lines else ""
    return [*lines[:i], line[:at] + noise + line[at:], *lines[i + 1 :]]


def alias_values(draw: st.DrawFn, lines: Lines) -> Lines:
    i, j = _index(draw, lines), _index(draw, lines)
    anchored, aliased = _KEY_VALUE.match(lines[i]), _KEY_VALUE.match(lines[j])
    if anchored is None or aliased is None:
        return lines
    copy = list(lines)
    copy[i] = f"{anchored.group(1)}&x {anchored.group(2)}"
    copy[j] = f"{aliased.group(1)}*x"
    return copy


def long_value(draw: st.DrawFn, lines: Lines) -> Lines:
    i = _index(draw, lines)
    match = _KEY_VALUE.match(lines[i])
    if match is None:
        return lines
    value = draw(st.sampled_from(["x", "9", "é", "${api.tag}", "(", "a\\"])) * draw(
        st.integers(1_000, 100_000)
    )
    return [*lines[:i], match.group(1) + value, *lines[i + 1 :]]


LINE_EDITS: list[Callable[[st.DrawFn, Lines], Lines]] = [
    delete_line, duplicate_line, swap_lines, reindent, replace_value, insert_key, replace_token,
    insert_unicode, alias_values, long_value,
]  # fmt: skip


def truncate(draw: st.DrawFn, text: str) -> str:
    return text[: draw(st.integers(0, len(text)))]


def crlf(_: st.DrawFn, text: str) -> str:
    return text.replace("\n", "\r\n")


def bom(_: st.DrawFn, text: str) -> str:
    return "\ufeff" + text


def tabs(_: st.DrawFn, text: str) -> str:
    return text.replace("  ", "\t")


def lone_cr(_: st.DrawFn, text: str) -> str:
    return text.replace("\n", "\r")


TEXT_EDITS: list[Callable[[st.DrawFn, str], str]] = [truncate, crlf, bom, tabs, lone_cr]


@st.composite
def mutated_pipelines(draw: st.DrawFn) -> str:
    """A seed pipeline after one to five line, token or whole-text edits."""
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.integers(0, 4)) == 0:
            text = draw(st.sampled_from(TEXT_EDITS))(draw, text)
        else:
            lines = draw(st.sampled_from(LINE_EDITS))(draw, text.split("\n"))
            text = "\n".join(lines)
    return text


# --- pathological YAML -------------------------------------------------------------------------


@st.composite
def alias_bombs(draw: st.DrawFn) -> str:
    """Billion laughs: each level lists the previous one `fanout` times."""
    levels, fanout = draw(st.integers(1, 12)), draw(st.integers(2, 10))
    lines = ["apiVersion: promoter/v1", "kind: Pipeline", 'l0: &l0 ["lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * fanout)}]" for i in range(1, levels + 1)]
    where = draw(st.sampled_from(["metadata", "spec", "bomb"]))
    lines.append(f"{where}: *l{levels}")
    return "\n".join(lines) + "\n"


@st.composite
def alias_chains(draw: st.DrawFn) -> str:
    """Each anchor nests the previous one: data far deeper than the text."""
    length = draw(st.integers(1, 150))
    lines = ["c0: &c0 {name: x}"] + [f"c{i}: &c{i} {{spec: *c{i - 1}}}" for i in range(1, length)]
    return "\n".join(lines) + f"\nspec: *c{length - 1}\n"


@st.composite
def deep_nesting(draw: st.DrawFn) -> str:
    """Flow or block collections nested up to three times the limit."""
    depth = draw(st.integers(1, 300))
    style = draw(st.sampled_from(["flow-seq", "flow-map", "block-map", "block-seq"]))
    if style == "flow-seq":
        return "spec: " + "[" * depth + "]" * depth + "\n"
    if style == "flow-map":
        return "spec: " + "{a: " * depth + "1" + "}" * depth + "\n"
    if style == "block-map":
        return "".join(" " * i + "a:\n" for i in range(depth))
    return "".join(" " * i + "-\n" for i in range(depth))


@st.composite
def huge_scalars(draw: st.DrawFn) -> str:
    """Integers past Python's digit limit, long strings and floats, in a seed's value."""
    digits = draw(st.integers(1, 6_000))
    value = draw(
        st.sampled_from(["9" * digits, "-" + "1" * digits, "0x" + "f" * digits, f"1e{digits}",
                         "0." + "3" * digits, "x" * digits * 3])
    )  # fmt: skip
    text = draw(st.sampled_from(SEEDS))
    key = draw(st.sampled_from(["count", "soak", "name", "auto", "branch"]))
    return re.sub(rf"\b({key}:) [^,}}\n]+", rf"\1 {value}", text, count=1)


# --- structured generation -------------------------------------------------------------------

loose_values: st.SearchStrategy[Any] = json_values | st.sampled_from(NAMES)


@st.composite
def mangled_seed_data(draw: st.DrawFn) -> Any:
    """A seed's data with subtrees replaced by arbitrary values and keys added."""
    value = yaml.safe_load(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths(value)))
        if draw(st.booleans()):
            value = replaced(value, path, draw(loose_values))
            continue
        inner = _at(value, path)
        if isinstance(inner, dict):
            added = {**inner, draw(st.text(max_size=10)): draw(loose_values)}
            value = replaced(value, path, added)
    return value


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


names = st.sampled_from(NAMES) | st.text(max_size=8)
texts = st.text(max_size=40) | st.sampled_from(["${api.tag}", "${ranker.uri}", "10m", "^1.0.0"])
anything = loose_values | texts


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return strategy | anything


artifacts = st.fixed_dictionaries(
    {"name": names},
    optional={
        "image": _maybe(texts),
        "model": _maybe(texts),
        "select": _maybe(
            st.dictionaries(
                st.sampled_from(["semver", "tagPattern", "newestBuild", "digest", "newest", "x"]),
                _maybe(texts | st.booleans()),
                max_size=3,
            )
        ),
        "when": _maybe(texts),
    },
)
gates = st.fixed_dictionaries(
    {},
    optional={
        "soak": _maybe(texts),
        "approvals": _maybe(
            st.fixed_dictionaries(
                {"count": _maybe(st.integers())}, optional={"reviewers": _maybe(st.lists(texts))}
            )
        ),
        "windows": _maybe(
            st.lists(
                st.fixed_dictionaries(
                    {"days": _maybe(st.lists(texts)), "start": texts, "end": texts},
                    optional={"timezone": texts},
                ),
                max_size=2,
            )
        ),
        "when": _maybe(texts),
    },
)
updates = st.fixed_dictionaries(
    {"file": _maybe(texts)},
    optional={
        "set": _maybe(st.dictionaries(texts, _maybe(texts), max_size=3)),
        "kustomizeImage": _maybe(st.dictionaries(texts, texts, max_size=3)),
        "setters": anything,
    },
)
environments = st.fixed_dictionaries(
    {"name": names},
    optional={
        "from": _maybe(st.lists(names, max_size=3)),
        "auto": anything,
        "gates": _maybe(gates),
        "jurisdiction": _maybe(texts),
        "rollback": _maybe(st.fixed_dictionaries({"onDegradedWithin": _maybe(texts)})),
        "update": _maybe(st.lists(updates, max_size=2)),
    },
)
shaped_pipelines = st.fixed_dictionaries(
    {
        "apiVersion": st.just("promoter/v1") | anything,
        "kind": st.just("Pipeline") | anything,
        "metadata": _maybe(st.fixed_dictionaries({"name": names})),
        "spec": _maybe(
            st.fixed_dictionaries(
                {
                    "repository": _maybe(
                        st.fixed_dictionaries(
                            {"url": texts},
                            optional={"branch": texts, "provider": texts, "mergeMethod": texts},
                        )
                    ),
                    "artifacts": _maybe(st.lists(artifacts, max_size=3)),
                    "environments": _maybe(st.lists(environments, max_size=4)),
                }
            )
        ),
    }
)
"""Pipeline-shaped mappings whose every value may be anything."""


@st.composite
def dumped(draw: st.DrawFn, data: st.SearchStrategy[Any]) -> str:
    """`data` written as YAML, block or flow style, sometimes as several documents."""
    value = draw(data)
    flow = draw(st.sampled_from([True, False, None]))
    text = yaml.safe_dump(value, default_flow_style=flow, allow_unicode=True, sort_keys=False)
    if draw(st.booleans()):
        text = text + "---\n" + draw(st.sampled_from(SEEDS))
    return text


# --- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SEED_FILES, ids=lambda p: p.name)
def test_the_seed_pipelines_are_valid(path: Path) -> None:
    assert check_validates(path.read_bytes()) == []


@given(text=mutated_pipelines())
def test_mutated_pipelines_give_placed_problems(text: str) -> None:
    fuzz_validate(text)


@given(text=alias_bombs() | alias_chains() | deep_nesting() | huge_scalars())
def test_pathological_yaml_gives_placed_problems(text: str) -> None:
    fuzz_validate(text)


@given(text=dumped(mangled_seed_data()) | dumped(shaped_pipelines))
def test_structured_pipelines_give_placed_problems(text: str) -> None:
    fuzz_validate(text)


@given(data=st.data(), noise=st.binary(min_size=1, max_size=8))
def test_arbitrary_bytes_in_a_pipeline_give_placed_problems(
    data: st.DataObject, noise: bytes
) -> None:
    raw = data.draw(st.sampled_from(SEEDS)).encode("utf-8")
    at = data.draw(st.integers(0, len(raw)))
    fuzz_validate(raw[:at] + noise + raw[at:])


@given(text=st.text(max_size=200))
def test_arbitrary_text_gives_placed_problems(text: str) -> None:
    fuzz_validate(text)


# --- the command line ---------------------------------------------------------------------------

NASTY: dict[str, bytes] = {
    "deep.yaml": b"spec: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "bomb.yaml": (
        b'a: &a ["lol"]\n'
        + b"".join(
            f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n".encode()
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        )
        + b"spec: *i\n"
    ),
    "bigint.yaml": SEEDS[0].replace("count: 1", "count: " + "9" * 5000).encode(),
    "control.yaml": SEEDS[1].replace("branch: main", "branch: ma\x08in").encode(),
    "latin1.yaml": SEEDS[2].replace("kind: Pipeline", "kind: Pipelin\xe9").encode("latin-1"),
    "separators.yaml": SEEDS[3].replace("kind: Pipeline", "kind: Pipe\u2028line\x85").encode(),
    "truncated.yaml": SEEDS[0].encode()[: len(SEEDS[0]) // 2],
    "crlf-tabs.yaml": SEEDS[1].replace("\n  ", "\r\n\t").encode(),
}


def run_validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    """`promoter validate PATHS` as a child process."""
    argv = [sys.executable, "-m", "promoter", "validate", *map(str, paths)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_cli_reports_nasty_files_as_file_line_col_lines(tmp_path: Path) -> None:
    for name, raw in NASTY.items():
        (tmp_path / name).write_bytes(raw)
    done = run_validate(tmp_path, *SEED_FILES)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "problem(s) found" in done.stderr
    reported = set()
    for line in done.stdout.rstrip("\n").split("\n"):
        shaped = _LINE_PROBLEM.match(line)
        assert shaped, f"not FILE:LINE:COL: message: {line!r}"
        path = Path(shaped["file"])
        problem = Problem(str(path), int(shaped["line"]), int(shaped["column"]), shaped["message"])
        check_problem(problem, path, shown_lines(path.read_bytes()))
        reported.add(path.name)
    assert reported == set(NASTY)  # every nasty file, none of the valid seeds
