"""Injected failures: scripted or random 5xx, rate limits, unknown mergeability and merge races."""

from __future__ import annotations

import random as _random
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

__all__ = ["KINDS", "Fault", "FaultKind", "Faults"]

FaultKind = Literal[
    "5xx", "5xx-after", "429", "secondary", "primary", "mergeable-null", "conflict", "base-modified"
]
KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
PULL_GET = "GET /repos/{owner}/{repo}/pulls/{pull_number}"
MERGE_PUT = "PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge"
# Kinds that only make sense on one route; the others apply to any API request.
_ONLY_ON: dict[str, str] = {
    "mergeable-null": PULL_GET,
    "conflict": MERGE_PUT,
    "base-modified": MERGE_PUT,
}


@dataclass(frozen=True)
class Fault:
    """One injected failure and its options (`status`, `retry_after`, `reset_in`)."""

    kind: FaultKind
    extra: Mapping[str, Any] = field(default_factory=dict)

    def option(self, name: str, default: int) -> int:
        """An integer option of the fault."""
        return int(self.extra.get(name, default))


@dataclass
class _Script:
    method: str
    pattern: str
    kind: FaultKind
    times: int | None
    extra: dict[str, Any]

    def matches(self, method: str, route: str | None, path: str) -> bool:
        if self.method not in ("*", method):
            return False
        template = route.split(" ", 1)[1] if route else None
        if self.pattern in (route, template):
            return True
        return re.search(self.pattern, path) is not None


def applicable(kind: str, route: str | None) -> bool:
    """Whether fault `kind` can be injected into a request of `route`."""
    only = _ONLY_ON.get(kind)
    return route is not None and (only is None or only == route)


class Faults:
    """What to inject into which API requests; git HTTP and control routes are never touched."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: list[_Script] = []
        self._rate = 0.0
        self._rng = _random.Random(0)  # noqa: S311 (reproducible fault injection, not security)
        self._kinds: tuple[FaultKind, ...] = ()

    def random(self, rate: float = 0.1, seed: int = 7, kinds: Iterable[str] = KINDS) -> Faults:
        """Inject one of `kinds` into a fraction `rate` of API requests, reproducibly by `seed`."""
        chosen = tuple(_kind(k) for k in kinds)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate must be within 0..1, got {rate}")
        with self._lock:
            self._rate = rate
            self._rng = _random.Random(seed)  # noqa: S311 (reproducible, not security)
            self._kinds = chosen
        return self

    def script(
        self, method: str, route_or_regex: str, kind: str, times: int | None = 1, **extra: Any
    ) -> Faults:
        """Inject `kind` into the next `times` requests (None: all) matching method and route.

        Args:
            method: HTTP method, or "*" for any.
            route_or_regex: A route template ("/repos/{owner}/{repo}/pulls" or with the method
                in front, as in `Call.route`), else a regex searched in the request path.
            kind: One of KINDS.
            times: How many requests to fail; None for every matching request.
            **extra: Options: `status` (5xx kinds, default 502), `retry_after` (429 and
                secondary, default 1), `reset_in` (primary, default 1).
        """
        script = _Script(method.upper(), route_or_regex, _kind(kind), times, dict(extra))
        with self._lock:
            self._scripts.append(script)
        return self

    def clear(self) -> Faults:
        """No more injected failures."""
        with self._lock:
            self._scripts.clear()
            self._rate = 0.0
            self._kinds = ()
        return self

    def configure(self, spec: Mapping[str, Any]) -> None:
        """Apply a JSON control request: {"clear": true, "random": {...}, "script": [...]}."""
        if spec.get("clear"):
            self.clear()
        if isinstance(spec.get("random"), Mapping):
            self.random(**spec["random"])
        scripts = spec.get("script", [])
        for item in [scripts] if isinstance(scripts, Mapping) else scripts:
            options = dict(item)
            self.script(
                options.pop("method", "*"),
                options.pop("route"),
                options.pop("kind"),
                options.pop("times", 1),
                **options,
            )

    def pick(self, method: str, route: str | None, path: str) -> Fault | None:
        """The fault to inject into this request, if any (scripts first, then random)."""
        with self._lock:
            for script in self._scripts:
                if applicable(script.kind, route) and script.matches(method, route, path):
                    if script.times is not None:
                        script.times -= 1
                        if script.times <= 0:
                            self._scripts.remove(script)
                    return Fault(script.kind, script.extra)
            if self._rate <= 0.0 or not self._kinds:
                return None
            if self._rng.random() >= self._rate:
                return None
            kinds = [k for k in self._kinds if applicable(k, route)]
            return Fault(self._rng.choice(kinds)) if kinds else None


def _kind(kind: str) -> FaultKind:
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
    return kind
