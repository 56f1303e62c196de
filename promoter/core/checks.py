"""Cross-checks of one pipeline document that a schema cannot express, run on the raw data."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from promoter.core.expressions import ExpressionError, compile_expression
from promoter.core.templates import (
    IMAGE_ATTRIBUTES,
    MODEL_ATTRIBUTES,
    PlaceholderError,
    parse_placeholders,
)
from promoter.core.yamlsource import Document, Mark, Path

__all__ = ["ARTIFACT_VARIABLES", "GATE_VARIABLES", "Finding", "cross_check"]

ARTIFACT_VARIABLES = {"image": ("image", "artifact"), "model": ("model", "artifact")}
GATE_VARIABLES = ("bundle", "pipeline", "environment")
_REVIEWER = re.compile(
    r"^(@[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9][A-Za-z0-9_.-]*|[A-Za-z0-9][A-Za-z0-9-]*)$"
)
_STRATEGY_KINDS = {"newestBuild": "image", "digest": "image", "newest": "model"}


@dataclass(frozen=True)
class Finding:
    """A problem at a mark in the document."""

    mark: Mark
    message: str


def _shown(name: str) -> str:
    """`name` as a message shows it: quoted when it holds a line break or another control."""
    return name if name.isprintable() else repr(name)


def _listed(names: Iterable[str], separator: str = ", ") -> str:
    """`names` joined for a message, each shown by `_shown`."""
    return separator.join(_shown(name) for name in names)


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _named(items: list[Any]) -> Iterator[tuple[int, dict[str, Any], str]]:
    for i, item in enumerate(items):
        name = _dict(item).get("name")
        if isinstance(name, str):
            yield i, item, name


class _Checker:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.findings: list[Finding] = []
        spec = _dict(_dict(doc.data).get("spec"))
        self.artifacts = _list(spec.get("artifacts"))
        self.environments = _list(spec.get("environments"))
        self.kinds: dict[str, str] = {}
        for _, item, name in _named(self.artifacts):
            if "image" in item:
                self.kinds[name] = "image"
            elif "model" in item:
                self.kinds[name] = "model"

    def add(
        self, path: Path, message: str, *, offset: int | None = None, key: bool = False
    ) -> None:
        mark = (
            self.doc.mark_in_value(path, offset)
            if offset is not None
            else self.doc.mark_of(path, key=key)
        )
        self.findings.append(Finding(mark, message))

    def unique_names(self, items: list[Any], section: str, what: str) -> None:
        seen: dict[str, int] = {}
        for i, _, name in _named(items):
            if name in seen:
                first = self.doc.mark_of(("spec", section, seen[name], "name")).line
                self.add(
                    ("spec", section, i, "name"),
                    f"duplicate {what} name {name!r} (first at line {first})",
                )
            else:
                seen[name] = i

    def upstreams(self) -> None:
        names = {name for _, _, name in _named(self.environments)}
        graph: dict[str, list[str]] = {}
        for i, env, name in _named(self.environments):
            ups = _list(env.get("from"))
            graph[name] = [u for u in ups if isinstance(u, str)]
            for j, up in enumerate(ups):
                path: Path = ("spec", "environments", i, "from", j)
                if up == name:
                    self.add(path, f"environment {name!r} lists itself in from")
                elif isinstance(up, str) and up not in names:
                    known = _listed(sorted(names))
                    self.add(path, f"unknown environment {up!r} in from; known: {known}")
        self.cycles(graph)

    def cycles(self, graph: dict[str, list[str]]) -> None:
        state: dict[str, int] = {}
        index = {name: i for i, _, name in _named(self.environments)}

        def visit(node: str, trail: list[str]) -> None:
            state[node] = 1
            for up in graph.get(node, []):
                if up == node or up not in graph:
                    continue
                if state.get(up) == 1:
                    loop = [*trail[trail.index(up) :], node, up] if up in trail else [node, up]
                    self.add(
                        ("spec", "environments", index[node], "from"),
                        f"cyclic from: {_listed(loop, ' -> ')}; environments must form a DAG",
                    )
                elif up not in state:
                    visit(up, [*trail, node])
            state[node] = 2

        for name in graph:
            if name not in state:
                visit(name, [])

    def placeholders(self, path: Path, text: str) -> None:
        try:
            found = parse_placeholders(text)
        except PlaceholderError as exc:
            self.add(path, str(exc), offset=exc.offset)
            return
        for ph in found:
            kind = self.kinds.get(ph.artifact)
            if kind is None:
                known = _listed(sorted(self.kinds)) or "none"
                self.add(
                    path,
                    f"placeholder ${{{ph.artifact}.{ph.attribute}}} names unknown artifact "
                    f"{ph.artifact!r}; known: {known}",
                    offset=ph.offset,
                )
                continue
            allowed = IMAGE_ATTRIBUTES if kind == "image" else MODEL_ATTRIBUTES
            if ph.attribute not in allowed:
                self.add(
                    path,
                    f"placeholder ${{{ph.artifact}.{ph.attribute}}}: a {kind} artifact has no "
                    f"{ph.attribute}; use one of {', '.join(sorted(allowed))}",
                    offset=ph.offset,
                )

    def updates(self) -> None:
        for i, env in enumerate(self.environments):
            for j, update in enumerate(_list(_dict(env).get("update"))):
                base: Path = ("spec", "environments", i, "update", j)
                for key, value in _dict(_dict(update).get("set")).items():
                    if isinstance(value, str):
                        self.placeholders((*base, "set", key), value)
                for key, value in _dict(_dict(update).get("kustomizeImage")).items():
                    if isinstance(value, str):
                        self.placeholders((*base, "kustomizeImage", key), value)

    def expression(self, path: Path, text: Any, variables: tuple[str, ...]) -> None:
        if not isinstance(text, str):
            return
        try:
            compile_expression(text, variables)
        except ExpressionError as exc:
            self.add(path, str(exc), offset=exc.offset)

    def artifact_rules(self) -> None:
        for i, item, name in _named(self.artifacts):
            kind = self.kinds.get(name)
            if kind is None:
                continue
            self.expression(
                ("spec", "artifacts", i, "when"), item.get("when"), ARTIFACT_VARIABLES[kind]
            )
            for strategy, wanted in _STRATEGY_KINDS.items():
                if strategy in _dict(item.get("select")) and kind != wanted:
                    self.add(
                        ("spec", "artifacts", i, "select", strategy),
                        f"select.{strategy} applies to {wanted} artifacts; "
                        f"{name!r} is {_article(kind)}",
                        key=True,
                    )

    def gate_rules(self) -> None:
        for i, env in enumerate(self.environments):
            gates = _dict(_dict(env).get("gates"))
            self.expression(
                ("spec", "environments", i, "gates", "when"), gates.get("when"), GATE_VARIABLES
            )
            reviewers = _list(_dict(gates.get("approvals")).get("reviewers"))
            for j, reviewer in enumerate(reviewers):
                if isinstance(reviewer, str) and not _REVIEWER.fullmatch(reviewer):
                    self.add(
                        ("spec", "environments", i, "gates", "approvals", "reviewers", j),
                        f"invalid reviewer {reviewer!r}: use a user name or @org/team",
                    )


def cross_check(doc: Document) -> list[Finding]:
    """Every cross-field problem in a pipeline document, tolerant of a wrong shape elsewhere."""
    checker = _Checker(doc)
    checker.unique_names(checker.artifacts, "artifacts", "artifact")
    checker.unique_names(checker.environments, "environments", "environment")
    checker.upstreams()
    checker.updates()
    checker.artifact_rules()
    checker.gate_rules()
    return checker.findings
