"""Hypothesis helpers for the source tests: arbitrary JSON, mangled payloads, what adapters give."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from hypothesis import strategies as st

from promoter.core.events import parse_event
from promoter.sources.base import DeliveryError, Normalized

__all__ = ["check_outcome", "json_values", "outcome", "paths", "replaced"]

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
"""Any JSON value: null, booleans, numbers (no NaN), strings, and arrays and objects of them."""


def paths(value: Any) -> list[tuple[Any, ...]]:
    """Every path into `value`'s nested objects and arrays, the root `()` first."""
    found: list[tuple[Any, ...]] = [()]
    if isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, inner in items:
            found.extend((key, *path) for path in paths(inner))
    return found


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """A copy of `value` with the subtree at `path` replaced by `new` (`value` is unchanged)."""
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = replaced(value[path[0]], path[1:], new)
    return copy


def outcome(call: Callable[[], Normalized]) -> Normalized | DeliveryError:
    """What an adapter gives: a result or a rejection; any other exception fails the test."""
    try:
        return call()
    except DeliveryError as exc:
        return exc


def check_outcome(result: Normalized | DeliveryError, statuses: Collection[int]) -> None:
    """A rejection has a reason and one of `statuses`; a result only valid events and reasons."""
    if isinstance(result, DeliveryError):
        assert str(result).strip(), "a rejection without a reason"
        assert result.status in statuses, f"status {result.status} for: {result}"
        return
    for event in result.events:
        parse_event(event)
    assert all(reason.strip() for reason in result.ignored), "something ignored without a reason"
