"""Time ranges the way operators pick them in Grafana or PI Vision, and History's shareable links.

A link to History is the page ``history`` with the query parameters ``well``, ``from`` and ``to``
(ISO 8601, UTC) and optionally ``alarm`` (an ``event_id``): tiles and the map build it with
:func:`history_params`, and History reads it back with :func:`parse_params`. History adds
``live=<quick range>`` (``1h``, ``15min``…) to its own URL while it follows the newest data.
Plain functions, so the rules are tested without a browser.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from engine.errors import InputError

#: Quick ranges offered above every History chart, ending at "To".
QUICK_RANGES: dict[str, timedelta] = {
    "15 min": timedelta(minutes=15),
    "1 h": timedelta(hours=1),
    "6 h": timedelta(hours=6),
    "24 h": timedelta(hours=24),
    "7 d": timedelta(days=7),
}
AROUND_ALARM = "around this alarm"
CUSTOM = "custom"
#: "Around this alarm" shows the alarm with this share of its duration before and after it...
ALARM_MARGIN_SHARE = 0.5
#: ...but at least this much context on each side.
MIN_ALARM_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class TimeRange:
    """``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise InputError("a time range needs time zones")
        if self.end <= self.start:
            raise InputError("“From” must come before “To”")

    @property
    def span(self) -> tuple[datetime, datetime]:
        return self.start, self.end


def through(moment: datetime) -> datetime:
    """The exclusive "To", whole seconds as links carry it, that still includes ``moment`` (a newest reading)."""
    return moment.replace(microsecond=0) + timedelta(seconds=1)


def quick_range(name: str, to: datetime) -> TimeRange:
    """The quick range ``name`` ending exactly at ``to`` (the chosen "To" is never moved)."""
    return TimeRange(to - QUICK_RANGES[name], to)


def around(start: datetime, end: datetime) -> TimeRange:
    """An alarm's window with context on both sides, so its onset and recovery are visible."""
    margin = max((end - start) * ALARM_MARGIN_SHARE, MIN_ALARM_MARGIN)
    return TimeRange(start - margin, end + margin)


def iso_param(moment: datetime) -> str:
    """A timestamp as a link carries it: ISO 8601 in UTC, to the second, with a ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def history_params(well: str, window: TimeRange, alarm: str | None = None,
                   live: str | None = None) -> dict[str, str]:
    """The query parameters of a History link (the contract other pages build links with); ``live`` is the
    quick range History follows the newest data with."""
    params = {"well": well, "from": iso_param(window.start), "to": iso_param(window.end)}
    if alarm:
        params["alarm"] = alarm
    if live:
        params["live"] = live.replace(" ", "")
    return params


@dataclass(frozen=True)
class HistoryLink:
    """What a History URL asked for; any part may be missing."""

    well: str | None = None
    window: TimeRange | None = None
    alarm: str | None = None
    live: str | None = None  # a quick range's name


def parse_params(params: Mapping[str, str]) -> HistoryLink:
    """Read a History URL's parameters; a malformed one raises :class:`InputError` naming it."""
    start, end = (_parse_time(params, name) for name in ("from", "to"))
    if (start is None) != (end is None):
        raise InputError("a link needs both “from” and “to”, or neither")
    window = None
    if start is not None and end is not None:
        if end <= start:
            raise InputError(f"link parameter “to” ({iso_param(end)}) must come after “from” ({iso_param(start)})")
        window = TimeRange(start, end)
    return HistoryLink(params.get("well") or None, window, params.get("alarm") or None, _parse_live(params))


def _parse_live(params: Mapping[str, str]) -> str | None:
    text = (params.get("live") or "").replace(" ", "")
    names = {name.replace(" ", ""): name for name in QUICK_RANGES}
    if text and text not in names:
        raise InputError(f"link parameter “live” must be one of {', '.join(names)} (got {text[:20]!r})")
    return names.get(text)


def _parse_time(params: Mapping[str, str], name: str) -> datetime | None:
    text = (params.get(name) or "").strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise InputError(f"link parameter “{name}” is not an ISO 8601 time: {text[:40]!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
