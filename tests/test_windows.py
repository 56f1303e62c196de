"""Deployment windows: open/closed and next opening across weekends, DST changes and zones."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from promoter.core.windows import WindowSpec, is_open, next_opening, parse_clock

AMS = "Europe/Amsterdam"  # CET (UTC+1); CEST (UTC+2) from 29 Mar 2026 to 25 Oct 2026
NYC = "America/New_York"  # EST (UTC-5); EDT (UTC-4) from 8 Mar 2026 to 1 Nov 2026
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)

OFFICE = WindowSpec(frozenset({MON, TUE, WED, THU}), time(9), time(16), AMS)
NIGHT = WindowSpec(frozenset({FRI}), time(22), time(2), AMS)  # Friday 22:00 to Saturday 02:00
EVENING = WindowSpec(frozenset({MON}), time(20), None, AMS)  # Monday 20:00 to 24:00
SUNDAY = WindowSpec(frozenset({SUN}), time(9), time(10), AMS)
NEW_YORK = WindowSpec(frozenset({MON, TUE, WED, THU, FRI}), time(9), time(17), NYC)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_parse_clock_reads_hh_mm() -> None:
    assert parse_clock("09:00") == time(9, 0)
    assert parse_clock("23:59") == time(23, 59)
    assert parse_clock("00:00", allow_24=True) == time(0, 0)


def test_parse_clock_reads_24_00_as_none_only_when_allowed() -> None:
    assert parse_clock("24:00", allow_24=True) is None
    with pytest.raises(ValueError, match="hours 00-23"):
        parse_clock("24:00")


@pytest.mark.parametrize(
    "text", ["9:00", "25:00", "23:60", "24:01", "ab:cd", "0900", "09:00:00", " 09:00", "", "-1:00"]
)
def test_parse_clock_rejects_malformed_times(text: str) -> None:
    with pytest.raises(ValueError, match=r"^invalid time"):
        parse_clock(text, allow_24=True)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(utc(2026, 1, 5, 8, 30), True, id="winter-mon-08:30Z-is-09:30-CET"),
        pytest.param(utc(2026, 1, 5, 7, 30), False, id="winter-mon-07:30Z-is-08:30-CET"),
        pytest.param(utc(2026, 3, 30, 7, 30), True, id="summer-mon-07:30Z-is-09:30-CEST"),
        pytest.param(utc(2026, 3, 30, 6, 30), False, id="summer-mon-06:30Z-is-08:30-CEST"),
        pytest.param(utc(2026, 1, 5, 8, 0), True, id="winter-opening-instant"),
        pytest.param(utc(2026, 1, 5, 7, 59), False, id="winter-minute-before-opening"),
        pytest.param(utc(2026, 1, 5, 14, 59), True, id="winter-last-minute"),
        pytest.param(utc(2026, 1, 5, 15, 0), False, id="winter-16:00-CET-end-is-exclusive"),
        pytest.param(utc(2026, 3, 30, 13, 59), True, id="summer-last-minute"),
        pytest.param(utc(2026, 3, 30, 14, 0), False, id="summer-16:00-CEST-end-is-exclusive"),
        pytest.param(utc(2026, 1, 9, 10, 0), False, id="friday-not-a-window-day"),
        pytest.param(utc(2026, 1, 11, 10, 0), False, id="sunday-not-a-window-day"),
    ],
)
def test_office_window_open_in_amsterdam_local_time(now: datetime, expected: bool) -> None:
    assert is_open([OFFICE], now) is expected


def test_no_windows_means_always_open_and_no_next_opening() -> None:
    now = utc(2026, 1, 10, 3, 0)
    assert is_open([], now) is True
    assert next_opening([], now) is None


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(utc(2026, 1, 8, 15), utc(2026, 1, 12, 8), id="thu-close-to-mon-winter"),
        pytest.param(utc(2026, 3, 26, 15), utc(2026, 3, 30, 7), id="over-spring-forward-weekend"),
        pytest.param(utc(2026, 10, 22, 14), utc(2026, 10, 26, 8), id="over-fall-back-weekend"),
        pytest.param(utc(2026, 1, 5, 6), utc(2026, 1, 5, 8), id="later-the-same-morning"),
        pytest.param(utc(2026, 1, 5, 9), utc(2026, 1, 6, 8), id="while-open-the-next-day"),
        pytest.param(utc(2026, 1, 5, 8), utc(2026, 1, 6, 8), id="strictly-after-now"),
    ],
)
def test_office_window_next_opening(now: datetime, expected: datetime) -> None:
    assert next_opening([OFFICE], now) == expected


def test_next_opening_is_09_00_local_on_both_sides_of_dst() -> None:
    opening = next_opening([OFFICE], utc(2026, 3, 26, 15))
    assert opening is not None
    local = opening.astimezone(ZoneInfo(AMS))
    assert (local.weekday(), local.hour, local.minute, local.utcoffset()) == (
        MON,
        9,
        0,
        timedelta(hours=2),
    )


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(utc(2026, 3, 28, 12), utc(2026, 3, 29, 7), id="spring-forward-sunday"),
        pytest.param(utc(2026, 10, 24, 12), utc(2026, 10, 25, 8), id="fall-back-sunday"),
    ],
)
def test_window_on_the_dst_sunday_itself(now: datetime, expected: datetime) -> None:
    assert next_opening([SUNDAY], now) == expected
    assert is_open([SUNDAY], expected)
    assert not is_open([SUNDAY], expected + timedelta(hours=1))


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(utc(2026, 1, 9, 21), True, id="fri-22:00-CET-opens"),
        pytest.param(utc(2026, 1, 10, 0), True, id="sat-01:00-CET-still-open"),
        pytest.param(utc(2026, 1, 10, 0, 59), True, id="sat-01:59-CET-last-minute"),
        pytest.param(utc(2026, 1, 10, 1), False, id="sat-02:00-CET-closed"),
        pytest.param(utc(2026, 1, 9, 20, 59), False, id="fri-21:59-CET-not-yet"),
        pytest.param(utc(2026, 1, 10, 22), False, id="sat-23:00-saturday-is-no-start-day"),
        pytest.param(utc(2026, 7, 10, 23), True, id="summer-sat-01:00-CEST-open"),
    ],
)
def test_overnight_window_spans_midnight(now: datetime, expected: bool) -> None:
    assert is_open([NIGHT], now) is expected


def test_overnight_window_next_opening_is_next_friday() -> None:
    assert next_opening([NIGHT], utc(2026, 1, 10, 1)) == utc(2026, 1, 16, 21)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(utc(2026, 1, 12, 18, 59), False, id="mon-19:59-CET"),
        pytest.param(utc(2026, 1, 12, 19), True, id="mon-20:00-CET"),
        pytest.param(utc(2026, 1, 12, 22, 59), True, id="mon-23:59-CET"),
        pytest.param(utc(2026, 1, 12, 23), False, id="tue-00:00-CET"),
        pytest.param(utc(2026, 3, 30, 21, 59), True, id="mon-23:59-CEST"),
        pytest.param(utc(2026, 3, 30, 22), False, id="tue-00:00-CEST"),
    ],
)
def test_end_of_24_00_closes_at_local_midnight(now: datetime, expected: bool) -> None:
    assert is_open([EVENING], now) is expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(utc(2026, 1, 12, 14), True, id="mon-09:00-EST"),
        pytest.param(utc(2026, 1, 12, 13, 59), False, id="mon-08:59-EST"),
        pytest.param(utc(2026, 1, 12, 21, 59), True, id="mon-16:59-EST"),
        pytest.param(utc(2026, 1, 12, 22), False, id="mon-17:00-EST"),
        pytest.param(utc(2026, 3, 9, 13), True, id="mon-09:00-EDT-after-us-dst"),
        pytest.param(utc(2026, 3, 9, 12, 59), False, id="mon-08:59-EDT"),
    ],
)
def test_new_york_window_open(now: datetime, expected: bool) -> None:
    assert is_open([NEW_YORK], now) is expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(utc(2026, 3, 6, 22), utc(2026, 3, 9, 13), id="over-us-spring-forward"),
        pytest.param(utc(2026, 10, 30, 21), utc(2026, 11, 2, 14), id="over-us-fall-back"),
    ],
)
def test_new_york_window_next_opening(now: datetime, expected: datetime) -> None:
    assert next_opening([NEW_YORK], now) == expected


def test_several_windows_open_at_the_earliest_opening() -> None:
    friday_noon = utc(2026, 1, 9, 12)  # Amsterdam office closed on Fridays; New York opens 14:00Z
    assert not is_open([OFFICE, NEW_YORK], friday_noon)
    assert next_opening([OFFICE, NEW_YORK], friday_noon) == utc(2026, 1, 9, 14)
    assert is_open([OFFICE, NEW_YORK], utc(2026, 1, 9, 14))


# --- properties ---

ZONES = [
    "UTC",
    AMS,
    NYC,
    "Australia/Lord_Howe",  # 30-minute DST shift
    "Pacific/Chatham",  # UTC+12:45 / +13:45
    "Asia/Kolkata",  # UTC+5:30, no DST
    "America/St_Johns",  # UTC-3:30 / -2:30
]
# Start times in 02:00-03:59 can fall in a DST gap; the gap case has its own test below.
starts = st.builds(
    time,
    st.integers(0, 23).filter(lambda h: h not in (2, 3)),
    st.sampled_from([0, 15, 30, 45]),
)
ends = st.none() | st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
window_specs = st.builds(
    WindowSpec,
    days=st.frozensets(st.integers(0, 6), min_size=1),
    start=starts,
    end=ends,
    timezone=st.sampled_from(ZONES),
)
DST_EDGES = [utc(2026, 3, 8, 7), utc(2026, 3, 29, 1), utc(2026, 10, 25, 1), utc(2026, 11, 1, 6)]
instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
) | st.builds(
    lambda edge, minutes: edge + timedelta(minutes=minutes),
    st.sampled_from(DST_EDGES),
    st.integers(-8 * 1440, 8 * 1440),
)


@given(st.lists(window_specs, min_size=1, max_size=3), instants)
def test_closed_now_means_next_opening_is_later_and_open(
    windows: list[WindowSpec], now: datetime
) -> None:
    assume(not is_open(windows, now))
    opening = next_opening(windows, now)
    assert opening is not None
    assert opening > now
    assert is_open(windows, opening)
    before = opening - timedelta(seconds=1)
    if before >= now:
        assert not is_open(windows, before)


@given(st.lists(window_specs, min_size=1, max_size=3), instants)
def test_next_opening_is_a_window_start_in_local_time(
    windows: list[WindowSpec], now: datetime
) -> None:
    opening = next_opening(windows, now)
    assert opening is not None
    assert opening > now
    assert is_open(windows, opening)
    assert any(
        opening.astimezone(ZoneInfo(w.timezone)).time() == w.start
        and opening.astimezone(ZoneInfo(w.timezone)).weekday() in w.days
        for w in windows
    )


# --- regressions: defects found by these tests and fixed ---


def test_window_inside_the_dst_gap_opens_the_next_week() -> None:
    gap = WindowSpec(frozenset({SUN}), time(2), time(3), AMS)  # 02:00-03:00 skipped on 29 Mar
    opening = next_opening([gap], utc(2026, 3, 28, 12))
    assert opening is not None
    assert is_open([gap], opening)
    assert opening == utc(2026, 4, 5, 0)  # Sunday 5 April 02:00 CEST


def test_parse_clock_rejects_non_ascii_digits() -> None:
    with pytest.raises(ValueError, match="invalid time"):
        parse_clock("\uff10\uff19:\uff10\uff10")
