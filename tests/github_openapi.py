"""Check GitHub REST responses against the official OpenAPI subset in tests/data/github."""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, TypeChecker, validators
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

__all__ = [
    "SUBSET",
    "component_schema",
    "documented_statuses",
    "operation_for",
    "validate_component",
    "validate_response",
]

SUBSET = Path(__file__).parent / "data" / "github" / "openapi-subset.json"
"""The copy of github-openapi-subset.json (see PROVENANCE.md next to it)."""

_BASE = "urn:github-openapi-subset"
_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_SLASHED = frozenset({"ref", "branch"})
"""Path parameters whose values may contain "/" (git ref names, branch names)."""
_COMBINATORS = ("allOf", "anyOf", "oneOf")
_SHOWN_ERRORS = 3
_SHOWN_CHARS = 120
_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})", re.ASCII
)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:", re.ASCII)


@cache
def _document() -> dict[str, Any]:
    """The subset, parsed once; callers must not mutate it."""
    loaded = json.loads(SUBSET.read_bytes())
    assert isinstance(loaded, dict)
    return loaded


# --- path matching -------------------------------------------------------------------------------


def _template_pattern(template: str) -> re.Pattern[str]:
    """A regex for a path template: `{ref}` and `{branch}` may span "/", other parameters not."""
    parts: list[str] = []
    for piece in re.split(r"(\{[^}]+\})", template):
        if piece.startswith("{") and piece.endswith("}"):
            parts.append(".+" if piece[1:-1] in _SLASHED else "[^/]+")
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts))


@cache
def _routes() -> tuple[tuple[re.Pattern[str], int, str], ...]:
    """(pattern, literal length, template) per path, most specific template first."""
    routes = [
        (_template_pattern(template), len(re.sub(r"\{[^}]+\}", "", template)), template)
        for template in _document()["paths"]
    ]
    return tuple(sorted(routes, key=lambda route: -route[1]))


def _operation(method: str, path: str) -> dict[str, Any] | None:
    """The operation object serving `method path`, or None."""
    concrete = path.partition("?")[0]
    verb = method.lower()
    for pattern, _, template in _routes():
        item = _document()["paths"][template]
        if verb in item and verb in _METHODS and pattern.fullmatch(concrete):
            operation = item[verb]
            assert isinstance(operation, dict)
            return operation
    return None


def operation_for(method: str, path: str) -> str | None:
    """The operationId for a concrete request path (no `/api/v3` prefix), or None if undocumented.

    A query string is ignored. When two templates match (`/commits/{ref}` and
    `/commits/{ref}/status`) the one with more literal text wins.
    """
    operation = _operation(method, path)
    return None if operation is None else str(operation["operationId"])


def _require_operation(method: str, path: str) -> dict[str, Any]:
    operation = _operation(method, path)
    if operation is None:
        raise AssertionError(
            f"{method.upper()} {path}: no operation in the OpenAPI subset matches; "
            "use validate_component() for endpoints the subset lacks"
        )
    return operation


def _status_key(key: str) -> int | str:
    return int(key) if key.isdigit() else key


def documented_statuses(method: str, path: str) -> list[int | str]:
    """The response statuses the operation documents, in document order (`default` as a string)."""
    operation = _require_operation(method, path)
    return [_status_key(key) for key in operation["responses"]]


# --- OpenAPI 3.0 schema -> JSON Schema 2020-12 ---------------------------------------------------


def _target(ref: str) -> Any:
    """The node a local `#/...` reference points at, in the raw document."""
    assert ref.startswith("#/"), f"only local references are supported, got {ref!r}"
    node: Any = _document()
    for token in ref[2:].split("/"):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


def _is_nullable(schema: Any) -> bool:
    """Whether an OpenAPI schema (or the component it references) says `nullable: true`."""
    if not isinstance(schema, dict):
        return False
    if schema.get("nullable") is True:
        return True
    ref = schema.get("$ref")
    return isinstance(ref, str) and _is_nullable(_target(ref))


def _allow_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` widened to accept null, the meaning of OpenAPI's `nullable: true`."""
    if "$ref" in schema or any(key in schema for key in _COMBINATORS):
        return {"anyOf": [{"type": "null"}, schema]}
    widened = dict(schema)
    kind = widened.get("type")
    if isinstance(kind, str):
        widened["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        widened["type"] = [*kind, "null"]
    enum = widened.get("enum")
    if isinstance(enum, list) and None not in enum:
        widened["enum"] = [*enum, None]
    return widened


def _exclusive_bounds(schema: dict[str, Any]) -> None:
    """OpenAPI 3.0 boolean `exclusiveMinimum`/`exclusiveMaximum` as 2020-12 numbers, in place."""
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        flag = schema.get(exclusive)
        if isinstance(flag, bool):
            del schema[exclusive]
            if flag and bound in schema:
                schema[exclusive] = schema.pop(bound)


def _translate(schema: Any) -> Any:
    """An OpenAPI 3.0 schema object as JSON Schema 2020-12 (refs absolute, annotations dropped)."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in {"nullable", "example", "examples"} or key.startswith("x-"):
            continue
        if key in {"properties", "patternProperties"}:
            out[key] = {name: _translate(sub) for name, sub in value.items()}
        elif key in {"items", "additionalProperties", "not"}:
            out[key] = _translate(value)
        elif key in _COMBINATORS:
            out[key] = [_translate(sub) for sub in value]
        elif key == "$ref":
            out[key] = _BASE + value
        else:
            out[key] = value
    _exclusive_bounds(out)
    # A null that several nullable oneOf branches accept would fail oneOf: accept it up front.
    nullable_branch = any(_is_nullable(sub) for sub in schema.get("oneOf", ()))
    return _allow_null(out) if schema.get("nullable") is True or nullable_branch else out


@cache
def _registry() -> Registry[Any]:
    """The translated component schemas, as `urn:github-openapi-subset#/components/schemas/…`."""
    schemas = {
        name: _translate(schema) for name, schema in _document()["components"]["schemas"].items()
    }
    resource = DRAFT202012.create_resource({"components": {"schemas": schemas}})
    registry: Registry[Any] = Registry().with_resources([(_BASE, resource)])
    return registry


# --- validation ----------------------------------------------------------------------------------


def _is_date_time(value: object) -> bool:
    """RFC 3339 as GitHub sends it: `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`, a real date and time."""
    if not isinstance(value, str):
        return True
    if not _DATE_TIME.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_uri(value: object) -> bool:
    """An absolute URI: a scheme, no whitespace (GitHub's `{/name}` URI templates pass)."""
    if not isinstance(value, str):
        return True
    return bool(_SCHEME.match(value)) and not any(char.isspace() for char in value)


def _strict_integer(_: TypeChecker, instance: object) -> bool:
    """JSON integers only: GitHub ids are never 1.0 or true."""
    return isinstance(instance, int) and not isinstance(instance, bool)


_FORMATS = FormatChecker(formats=())
_FORMATS.checks("date-time")(_is_date_time)
_FORMATS.checks("uri")(_is_uri)
_Validator: type[Validator] = validators.extend(  # type: ignore[no-untyped-call]  # (stubs)
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer),
)


def _leaf(error: ValidationError) -> ValidationError:
    """The most specific cause inside anyOf/oneOf, skipping the `null` branch of nullable fields."""
    while error.context:
        causes = [
            cause
            for cause in error.context
            if not (cause.validator == "type" and cause.validator_value == "null")
        ]
        picked = best_match(causes or error.context)
        if picked is None:
            break
        error = picked
    return error


def _shorten(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _describe(error: ValidationError) -> str:
    value = json.dumps(error.instance, default=repr)
    return f"  {error.json_path}: {_shorten(error.message)} (value: {_shorten(value)})"


def _position(error: ValidationError) -> list[tuple[int, str]]:
    """A sort key: instance order, array indexes numerically."""
    return [(part, "") if isinstance(part, int) else (-1, part) for part in error.absolute_path]


def _check(schema: dict[str, Any], body: Any, where: str) -> None:
    """Validate `body` against a translated schema; AssertionError naming the first errors."""
    validator = _Validator(schema, registry=_registry(), format_checker=_FORMATS)
    errors = sorted((_leaf(error) for error in validator.iter_errors(body)), key=_position)
    if errors:
        shown = "\n".join(_describe(error) for error in errors[:_SHOWN_ERRORS])
        more = (
            f"\n  … and {len(errors) - _SHOWN_ERRORS} more" if len(errors) > _SHOWN_ERRORS else ""
        )
        raise AssertionError(
            f"{where}: body does not match the schema ({len(errors)} error(s)):\n{shown}{more}"
        )


def _response(operation: dict[str, Any], status: int | str) -> dict[str, Any]:
    """The response object for `status` (else `default`), `$ref`s to components followed."""
    responses: dict[str, Any] = operation["responses"]
    key = str(status)
    if key not in responses and "default" not in responses:
        documented = ", ".join(responses)
        where = f"{operation['operationId']}: status {status}"
        raise AssertionError(f"{where} is not documented (documented: {documented})")
    response = responses.get(key, responses.get("default"))
    while isinstance(response, dict) and "$ref" in response:
        response = _target(response["$ref"])
    assert isinstance(response, dict)
    return response


def _decoded(body: object, media_type: str) -> object:
    """Raw bytes as JSON (or text for other media types), empty bytes as None; else as given."""
    if not isinstance(body, bytes | bytearray):
        return body
    if not body:
        return None
    if "json" not in media_type:
        return body.decode()
    try:
        return json.loads(body)
    except ValueError as error:
        raise AssertionError(f"body is not JSON ({error}): {_shorten(repr(body))}") from None


def validate_response(
    method: str, path: str, status: int, body: object, *, media_type: str = "application/json"
) -> None:
    """Assert that `body` (parsed JSON, or raw bytes) is what the subset documents for the request.

    A response documented without content (204, 304, …) requires `body` None or empty.
    """
    operation = _require_operation(method, path)
    where = f"{operation['operationId']} {status}"
    content = _response(operation, status).get("content")
    decoded = _decoded(body, media_type)
    if not content:
        shown = _shorten(json.dumps(decoded, default=repr))
        assert decoded is None or decoded == "", f"{where}: the spec documents no body, got {shown}"
        return
    if media_type not in content:
        raise AssertionError(f"{where}: no {media_type} content (documented: {', '.join(content)})")
    _check(_translate(content[media_type]["schema"]), decoded, where)


def component_schema(name: str) -> dict[str, Any]:
    """A copy of `components.schemas[name]` exactly as the OpenAPI document has it."""
    schemas = _document()["components"]["schemas"]
    if name not in schemas:
        raise KeyError(f"no component schema {name!r}; known: {', '.join(sorted(schemas))}")
    return copy.deepcopy(schemas[name])


def validate_component(name: str, body: object) -> None:
    """Assert that `body` matches `components.schemas[name]` (for endpoints the subset lacks)."""
    component_schema(name)  # a clear KeyError for an unknown name
    schema = {"$ref": f"{_BASE}#/components/schemas/{name}"}
    _check(schema, _decoded(body, "application/json"), f"schema {name}")
