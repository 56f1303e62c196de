"""libyaml and the pure-Python parser give the same documents, marks and syntax problems."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promoter.core import yamlsource
from promoter.core.yamlsource import CoreLoader, Document, load_documents

ROOT = Path(__file__).parent.parent
TRICKY = [
    "a: 😀x\r\nb:\r\n  - c: 1\r\n    d: é\r\n",
    'k: "\\u00e9😀 \\n x"\n# 😀😀\nz: [1, {q: 2}]\n',
    "a: |\n  😀 line\n  two\nb: 'x''y'\nc: >\n  folded\n  text\n",
    "---\na: 1\n---\nb: [yes, no, ~, 0o17, 1e3]\n...\n",
    "base: &b {x: 1}\nuse: *b\nlist: [*b, *b]\n",
]


def _slow(text: str) -> tuple[list[Document], list[tuple[yamlsource.Mark, str]]]:
    return yamlsource._load(text, CoreLoader, strict=False)


def _same(text: str) -> None:
    fast, slow = load_documents(text), _slow(text)
    assert fast[1] == slow[1]
    assert [(d.data, d.start, d.values, d.keys, d.styles, d.starts) for d in fast[0]] == [
        (d.data, d.start, d.values, d.keys, d.styles, d.starts) for d in slow[0]
    ]


@pytest.mark.parametrize(
    "path",
    [*sorted((ROOT / "pipelines").glob("*.yaml")), ROOT / "promoter/demo/pipeline.yaml"],
    ids=lambda p: p.name,
)
def test_the_shipped_pipelines_load_the_same_with_libyaml(path: Path) -> None:
    _same(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("text", TRICKY)
def test_unicode_line_ends_styles_and_aliases_load_the_same(text: str) -> None:
    _same(text)


@pytest.mark.parametrize(
    "text", ["a: [1, 2\nb: 3\n", "a:\n\t- x\n", "key: 'open\n", "a: b: c\n", "\ufeffa: [\n"]
)
def test_a_syntax_error_is_worded_and_placed_by_the_python_parser(text: str) -> None:
    documents, problems = load_documents(text)
    assert problems, "the syntax error was not reported"
    assert (documents, problems) == _slow(text)


@given(st.text(alphabet=st.sampled_from(list("ab: -[]{},'\"#\n\t😀é|>&*!?%@`1.")), max_size=60))
def test_what_the_python_parser_accepts_loads_the_same(text: str) -> None:
    """libyaml accepts a little more (`>#`); what PyYAML accepts or refuses is kept as it was."""
    fast, slow = load_documents(text), _slow(text)
    if not slow[1]:
        assert fast[1] == []
        assert [(d.data, d.values, d.keys) for d in fast[0]] == [
            (d.data, d.values, d.keys) for d in slow[0]
        ]
    elif fast[1]:
        assert fast == slow
