"""CEL `when:` expressions: checked for unknown variables, evaluated to a verdict."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import celpy
import lark
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.celtypes import BoolType
from celpy.evaluation import CELEvalError

__all__ = ["Expression", "ExpressionError", "Verdict", "compile_expression"]

_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})


class ExpressionError(ValueError):
    """An expression does not compile; `offset` is the 0-based position in its text."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True)
class Verdict:
    """The outcome of evaluating a condition: passed, or why not."""

    passed: bool
    reason: str = ""


def _offset(text: str, line: int, column: int) -> int:
    lines = text.split("\n")
    return sum(len(part) + 1 for part in lines[: max(line - 1, 0)]) + max(column - 1, 0)


def _first_ident(tree: lark.Tree[Any]) -> str | None:
    for sub in tree.iter_subtrees():
        if sub.data == "ident":
            return str(sub.children[0])
    return None


def _free_identifiers(tree: lark.Tree[Any]) -> list[tuple[str, int]]:
    """Top-level variable references with their 1-based columns, macro-bound names excluded."""
    bound: set[str] = set()
    for sub in tree.iter_subtrees():
        if sub.data == "member_dot_arg" and str(sub.children[1]) in _MACROS:
            args = sub.children[2] if len(sub.children) > 2 else None  # noqa: PLR2004 (member, name, args)
            if isinstance(args, lark.Tree) and args.children:
                first = args.children[0]
                name = _first_ident(first) if isinstance(first, lark.Tree) else None
                if name:
                    bound.add(name)
    found = []
    for sub in tree.iter_subtrees():
        if sub.data == "ident":
            name = str(sub.children[0])
            if name not in bound:
                found.append((name, sub.meta.column if not sub.meta.empty else 1))
    return found


@lru_cache(maxsize=1)
def _environment() -> celpy.Environment:
    return celpy.Environment()


@dataclass(frozen=True)
class Expression:
    """A compiled CEL condition over a fixed set of variables."""

    text: str
    program: Any

    def evaluate(self, variables: Mapping[str, Any]) -> Verdict:
        """Evaluate against plain JSON-like values; an error or a non-true result fails."""
        activation = {name: json_to_cel(value) for name, value in variables.items()}
        try:
            result = self.program.evaluate(activation)
        except CELEvalError as exc:
            return Verdict(
                passed=False, reason=f"`{self.text}` could not be evaluated: {exc.args[0]}"
            )
        except Exception as exc:  # noqa: BLE001 (celpy raises plain Python errors from overloads)
            return Verdict(passed=False, reason=f"`{self.text}` could not be evaluated: {exc}")
        if isinstance(result, CELEvalError):
            return Verdict(
                passed=False, reason=f"`{self.text}` could not be evaluated: {result.args[0]}"
            )
        if result is True or (isinstance(result, BoolType) and bool(result)):
            return Verdict(passed=True)
        return Verdict(passed=False, reason=f"`{self.text}` is {str(result).lower()}")


@lru_cache(maxsize=4096)
def _compile(text: str, variables: frozenset[str]) -> Expression:
    env = _environment()
    try:
        tree = env.compile(text)
    except CELParseError as exc:
        line = getattr(exc, "line", None) or 1
        column = getattr(exc, "column", None) or 1
        offset = _offset(text, line, column)
        near = text[offset : offset + 12].strip() or "end of expression"
        message = f"invalid CEL expression: syntax error at {near!r} (line {line}, column {column})"
        raise ExpressionError(message, offset) from exc
    for name, column in _free_identifiers(tree):
        if name not in variables:
            raise ExpressionError(
                f"unknown variable {name!r} in CEL expression; available: "
                f"{', '.join(sorted(variables))}",
                column - 1,
            )
    return Expression(text=text, program=env.program(tree))


def compile_expression(text: str, variables: Collection[str]) -> Expression:
    """Compile `text`, allowing only `variables` as free names; raise ExpressionError."""
    if not text.strip():
        raise ExpressionError("empty CEL expression", 0)
    return _compile(text, frozenset(variables))
