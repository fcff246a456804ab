"""The time picker's rules and History's link contract, without a browser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from control_center import time_range
from control_center.time_range import TimeRange
from engine.errors import InputError

T = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_a_quick_range_ends_exactly_at_to() -> None:
    assert time_range.quick_range("6 h", T) == TimeRange(T - timedelta(hours=6), T)


def test_through_includes_a_reading_with_milliseconds_in_a_whole_second_bound() -> None:
    assert time_range.through(T + timedelta(milliseconds=250)) == T + timedelta(seconds=1)
    assert time_range.through(T) == T + timedelta(seconds=1)


@pytest.mark.parametrize(("duration", "margin"), [
    (timedelta(minutes=2), timedelta(minutes=5)),  # short alarms get at least 5 min either side
    (timedelta(hours=2), timedelta(hours=1))])  # long ones half their duration
def test_around_an_alarm_shows_context_either_side(duration: timedelta, margin: timedelta) -> None:
    assert time_range.around(T, T + duration) == TimeRange(T - margin, T + duration + margin)


def test_links_round_trip() -> None:
    window = TimeRange(T - timedelta(hours=1), T)
    params = time_range.history_params("WELL-1", window, "WELL-1@7", live="24 h")
    assert params == {"well": "WELL-1", "from": "2024-05-01T11:00:00Z", "to": "2024-05-01T12:00:00Z",
                      "alarm": "WELL-1@7", "live": "24h"}
    assert time_range.parse_params(params) == time_range.HistoryLink("WELL-1", window, "WELL-1@7", "24 h")


@pytest.mark.parametrize("text", ["2024-05-01T12:00:00Z", "2024-05-01T12:00:00+00:00", "2024-05-01T12:00:00 00:00",
                                  "2024-05-01T14:00:00+02:00", "2024-05-01T12:00:00"])
def test_link_times_are_read_as_utc_however_written(text: str) -> None:
    link = time_range.parse_params({"from": "2024-05-01T11:00:00Z", "to": text})
    assert link.window is not None and link.window.end == T


@pytest.mark.parametrize(("params", "message"), [
    ({"from": "2024-05-01T11:00:00Z"}, "both “from” and “to”"),
    ({"from": "2024-05-01T13:00:00Z", "to": "2024-05-01T12:00:00Z"}, "must come after"),
    ({"from": "noon", "to": "2024-05-01T12:00:00Z"}, "“from” is not an ISO 8601 time"),
])
def test_malformed_links_name_the_parameter(params: dict[str, str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        time_range.parse_params(params)


def test_a_window_must_have_time_zones_and_a_positive_length() -> None:
    with pytest.raises(InputError, match="time zones"):
        TimeRange(datetime(2024, 1, 1), datetime(2024, 1, 2))
    with pytest.raises(InputError, match="before"):
        TimeRange(T, T)
