"""Load pipeline files: YAML with positions, schema, cross-checks; problems as FILE:LINE:COL."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from promoter.core.checks import cross_check
from promoter.core.pipeline import Pipeline
from promoter.core.yamlsource import Document, load_documents
from promoter.errors import PipelineError, Problem

__all__ = ["LoadedPipeline", "find_pipeline_files", "load_pipelines", "load_text", "validate_paths"]

_UNION_TAGS = ("str", "int", "float", "bool", "function-", "literal[", "list[", "dict[")


@dataclass(frozen=True)
class LoadedPipeline:
    """A valid pipeline and where it was defined."""

    pipeline: Pipeline
    file: str
    line: int


def _dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        name = part if part.isprintable() else repr(part)  # a key may hold a line break
        out += f".{name}" if out else name
    return out or "document"


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The pydantic model class that validates the mapping at `loc` (by alias)."""
    model: type[BaseModel] = Pipeline
    for part in loc:
        if isinstance(part, int):
            continue
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return None
        found = _find_model(field.annotation)
        if found is None:
            return None
        model = found
    return model


def _find_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _find_model(arg)
            if found is not None:
                return found
    return None


def _message(error: ErrorDetails, loc: tuple[str | int, ...]) -> str:
    where = _dotted(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        name = str(loc[-1])
        model = _model_at(loc[:-1])
        known = sorted((f.alias or n) for n, f in model.model_fields.items()) if model else []
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown field {name!r} in {_dotted(loc[:-1])}{hint} (known: {', '.join(known)})"
    if kind == "missing":
        return f"missing required field {str(loc[-1])!r} in {_dotted(loc[:-1])}"
    ctx = error.get("ctx") or {}
    message = str(ctx["message"]) if kind == "promoter" else error["msg"]
    return f"{where}: {message}"


def _data_path(data: Any, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """`loc` without the tags pydantic adds for union members (`str`, `literal[...]`).

    A part that names a key or item of the data is the document's, even when it reads like a
    tag: a pipeline may have a key `float`.
    """
    path: list[str | int] = []
    for part in loc:
        inside = isinstance(data, dict) and part in data
        inside = inside or (isinstance(data, list) and isinstance(part, int) and part < len(data))
        if inside:
            data = data[part]
        elif isinstance(part, str) and part.startswith(_UNION_TAGS):
            continue
        else:
            data = None
        path.append(part)
    return tuple(path)


def _schema_problems(doc: Document, exc: ValidationError, file: str) -> list[Problem]:
    problems: dict[tuple[int, int, str], Problem] = {}
    for error in exc.errors():
        loc = _data_path(doc.data, error["loc"])
        union = len(loc) != len(error["loc"])  # one problem per value, not one per alternative
        if error["type"] == "extra_forbidden":
            mark = doc.mark_of(loc, key=True)
        elif error["type"] == "missing":
            mark = doc.mark_of(loc[:-1], key=True)
        else:
            offset = (error.get("ctx") or {}).get("offset")
            mark = doc.mark_in_value(loc, int(offset)) if offset is not None else doc.mark_of(loc)
        message = _message(error, loc)
        key = (mark.line, mark.column, "union" if union else message)
        problems.setdefault(key, Problem(file, mark.line, mark.column, message))
    return list(problems.values())


def load_text(text: str, file: str) -> tuple[list[LoadedPipeline], list[Problem]]:
    """Every pipeline in one file's text, and every problem found in it."""
    documents, syntax = load_documents(text)
    problems = [Problem(file, m.line, m.column, msg) for m, msg in syntax]
    loaded: list[LoadedPipeline] = []
    for doc in documents:
        problems += [Problem(file, m.line, m.column, msg) for m, msg in doc.problems]
        if not isinstance(doc.data, dict):
            problems.append(
                Problem(
                    file, doc.start.line, doc.start.column, "a pipeline document must be a mapping"
                )
            )
            continue
        found = [Problem(file, f.mark.line, f.mark.column, f.message) for f in cross_check(doc)]
        try:
            pipeline = Pipeline.model_validate(doc.data)
        except ValidationError as exc:
            found += _schema_problems(doc, exc, file)
        else:
            if not doc.problems and not found:
                loaded.append(LoadedPipeline(pipeline, file, doc.start.line))
        problems += found
    return loaded, sorted(set(problems))


def find_pipeline_files(paths: Iterable[str | FsPath]) -> list[FsPath]:
    """Files named on the command line, and every *.yaml / *.yml below named directories.

    Hidden files and directories below a named directory are skipped: a Kubernetes ConfigMap
    volume keeps each file twice, the real one in `..<timestamp>/` behind a visible link.
    """
    files: list[FsPath] = []
    for raw in paths:
        path = FsPath(raw)
        if path.is_dir():
            files += sorted(
                p
                for p in path.rglob("*")
                if p.suffix in (".yaml", ".yml")
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            files.append(path)
    return files


def validate_paths(paths: Iterable[str | FsPath]) -> tuple[list[LoadedPipeline], list[Problem]]:
    """Load every pipeline under `paths`; problems include unreadable files and duplicate names."""
    loaded: list[LoadedPipeline] = []
    problems: list[Problem] = []
    for path in find_pipeline_files(paths):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(path), 1, 1, f"cannot read file: {exc}"))
            continue
        found, issues = load_text(text, str(path))
        loaded += found
        problems += issues
    first: dict[str, LoadedPipeline] = {}
    for item in loaded:
        name = item.pipeline.metadata.name
        if name in first:
            where = f"{first[name].file}:{first[name].line}"
            problems.append(
                Problem(
                    item.file, item.line, 1, f"duplicate pipeline name {name!r} (first at {where})"
                )
            )
        else:
            first[name] = item
    return list(first.values()), sorted(problems)


def load_pipelines(paths: Iterable[str | FsPath]) -> list[LoadedPipeline]:
    """Load pipelines, raising PipelineError with every problem when any is found."""
    loaded, problems = validate_paths(paths)
    if problems:
        raise PipelineError(problems)
    return loaded
