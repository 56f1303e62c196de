"""Deployment windows: is one open now, and when does the next one open (time zones and DST)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["DAYS", "WindowSpec", "is_open", "next_opening", "parse_clock"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SEARCH_DAYS = 9


@dataclass(frozen=True)
class WindowSpec:
    """Open from `start` to `end` local time on each of `days`.

    `days` are start days; an `end` at or before `start` spans midnight; None means 24:00.
    """

    days: frozenset[int]
    start: time
    end: time | None
    timezone: str


def parse_clock(text: str, *, allow_24: bool = False) -> time | None:
    """Parse `HH:MM`; `24:00` gives None when `allow_24`; raise ValueError otherwise."""
    parts = text.split(":")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() and len(p) == 2 for p in parts):  # noqa: PLR2004
        raise ValueError(f"invalid time {text!r}: use HH:MM, e.g. 09:00")
    hour, minute = int(parts[0]), int(parts[1])
    if allow_24 and (hour, minute) == (24, 0):
        return None
    if hour > 23 or minute > 59:  # noqa: PLR2004
        raise ValueError(f"invalid time {text!r}: hours 00-23, minutes 00-59")
    return time(hour, minute)


def _local(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """The instant `clock` on `day` in `zone`; a clock time skipped by DST maps past the gap."""
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def _spans(window: WindowSpec, around: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The window's open spans (UTC) whose start day is in the days around `around`."""
    zone = ZoneInfo(window.timezone)
    today = around.astimezone(zone).date()
    for delta in range(-1, _SEARCH_DAYS):
        day = today + timedelta(days=delta)
        if day.weekday() not in window.days:
            continue
        start = _local(day, window.start, zone)
        if window.end is None:
            end = _local(day + timedelta(days=1), time(0, 0), zone)
        elif window.end <= window.start:
            end = _local(day + timedelta(days=1), window.end, zone)
        else:
            end = _local(day, window.end, zone)
        if start < end:  # a window that falls entirely in a DST gap does not exist that day
            yield start, end


def is_open(windows: Sequence[WindowSpec], now: datetime) -> bool:
    """True when no windows are declared or `now` falls in any of them."""
    if not windows:
        return True
    return any(start <= now < end for w in windows for start, end in _spans(w, now))


def next_opening(windows: Sequence[WindowSpec], now: datetime) -> datetime | None:
    """The first instant after `now` at which a window opens, or None without windows."""
    starts = [start for w in windows for start, _ in _spans(w, now) if start > now]
    return min(starts) if starts else None
