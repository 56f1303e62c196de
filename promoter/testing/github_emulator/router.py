"""Routes as GitHub documents them, the request context handlers get and what they answer."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

from promoter.testing.github_emulator.faults import Fault

__all__ = [
    "DOCS",
    "ApiError",
    "Ctx",
    "HookEvent",
    "Reply",
    "Route",
    "Router",
    "not_found",
    "unprocessable",
]

DOCS = "https://docs.github.com/rest"
WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})
# Path parameters that may contain slashes (refs and branch names).
_GREEDY = frozenset({"ref", "branch", "name"})


@dataclass(frozen=True)
class HookEvent:
    """A webhook to deliver once the request is answered."""

    event: str
    payload: dict[str, Any]


@dataclass
class Ctx:
    """One API request as handlers see it."""

    world: Any
    method: str
    path: str
    params: dict[str, str]
    query: Mapping[str, str]
    body: Any
    login: str
    api: str
    html: str
    now: float
    route: Route
    caller: Any = None
    fault: Fault | None = None
    hooks: list[HookEvent] = field(default_factory=list)

    def param(self, name: str) -> str:
        """A path parameter, URL-decoded."""
        return self.params[name]

    def number(self, name: str) -> int:
        """An integer path parameter; 404 when it is not one."""
        value = self.params[name]
        if not value.isdigit():
            raise not_found()
        return int(value)

    def doc(self) -> str:
        """The documentation URL of this request's operation."""
        return f"{DOCS}/{self.route.doc}" if self.route.doc else DOCS


@dataclass
class Reply:
    """What a handler answers: status, JSON body (None: empty) and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """An error answer in GitHub's shape (basic-error, validation-error or its simple form)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: list[Any] | None = None,
        doc: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.doc = doc
        self.headers = dict(headers or {})

    def body(self, default_doc: str) -> dict[str, Any]:
        """The JSON body: message, errors (if any), documentation_url and status as a string."""
        out: dict[str, Any] = {"message": self.message}
        if self.errors is not None:
            out["errors"] = self.errors
        out["documentation_url"] = self.doc or default_doc
        out["status"] = str(self.status)
        return out


def not_found(message: str = "Not Found") -> ApiError:
    """GitHub's 404."""
    return ApiError(404, message)


def unprocessable(message: str = "Validation Failed", /, **error: Any) -> ApiError:
    """A 422 validation-error; with keyword arguments, one entry in `errors`."""
    return ApiError(422, message, errors=[error] if error else None)


Handler = Callable[[Ctx], Reply]
Auth = Literal["user", "jwt"]


@dataclass(frozen=True)
class Route:
    """One operation: method, GitHub's path template, handler and documentation anchor."""

    method: str
    template: str
    handler: Handler
    doc: str = ""
    auth: Auth = "user"
    charged: bool = True

    @property
    def name(self) -> str:
        """`METHOD template`, as recorded on calls."""
        return f"{self.method} {self.template}"

    @property
    def write(self) -> bool:
        """Whether the operation counts as content creation."""
        return self.method in WRITES

    def pattern(self) -> re.Pattern[str]:
        """The regex matching raw (still quoted) request paths of this route."""

        def group(match: re.Match[str]) -> str:
            name = match.group(1)
            body = ".*" if name in _GREEDY else "[^/]+"
            return f"(?P<{name}>{body})"

        return re.compile("^" + re.sub(r"\{(\w+)\}", group, self.template) + "$")


class Router:
    """Matches method and raw path to a route; first registered wins."""

    def __init__(self, routes: list[Route]) -> None:
        self._routes = [(route, route.pattern()) for route in routes]

    def match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
        """The route and its decoded path parameters, or None."""
        for route, pattern in self._routes:
            if route.method != method:
                continue
            found = pattern.match(raw_path)
            if found:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}
        return None
