"""Operators' handling of alarm events: acknowledge, shelve, unshelve, each with who, when and why.

An *acknowledgement* says an operator has seen an alarm and owns it; it is given once and
stays (ISA-18.2's acknowledged state), whether the alarm is still active or has cleared.
*Shelving* takes an active alarm off the operator's list for a limited time (known work on
the well, a nuisance alarm) and needs a reason; it ends by itself when the time runs out or
when an operator unshelves it. Every action is kept, in order, as the event's log: the
latest ones decide the alarm's state, the rest is its audit trail.

The rules live here once; a backend stores one log per event and replaces it only if it
still has the length the writer read (a conditional write), so two operators acting on one
alarm at once never lose an action: the second re-reads and its action is judged again.
"""

from __future__ import annotations

import enum
import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from engine.errors import InputError

#: Longest a shelve may last: a shelved alarm must come back on its own.
MAX_SHELVE = timedelta(hours=24)
MAX_NAME_CHARS = 80
MAX_COMMENT_CHARS = 500
#: How often an action is judged again when another operator's action got in first.
_ATTEMPTS = 3


class Action(enum.StrEnum):
    ACKNOWLEDGE = "acknowledge"
    SHELVE = "shelve"
    UNSHELVE = "unshelve"


@dataclass(frozen=True)
class AlarmAction:
    """One operator action on one alarm event."""

    action: Action
    by: str
    at: datetime
    comment: str = ""
    #: For a shelve: when the alarm comes back by itself.
    until: datetime | None = None

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        data["until"] = None if self.until is None else self.until.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, object]) -> AlarmAction:
        until = data.get("until")
        return cls(Action(str(data["action"])), str(data["by"]), datetime.fromisoformat(str(data["at"])),
                   str(data.get("comment") or ""), None if until is None else datetime.fromisoformat(str(until)))


@dataclass(frozen=True)
class AlarmHandling:
    """Everything operators did to one event, oldest first, and what it amounts to at a moment."""

    event_id: str
    log: tuple[AlarmAction, ...] = ()

    @property
    def acknowledgement(self) -> AlarmAction | None:
        return next((a for a in self.log if a.action == Action.ACKNOWLEDGE), None)

    def shelved_until(self, now: datetime) -> datetime | None:
        """When the current shelve ends, or None if the alarm is not shelved at ``now``."""
        last = next((a for a in reversed(self.log) if a.action in (Action.SHELVE, Action.UNSHELVE)), None)
        if last is None or last.action == Action.UNSHELVE or last.until is None or last.until <= now:
            return None
        return last.until


def encode_log(log: tuple[AlarmAction, ...]) -> str:
    """A log as the JSON text both stores keep."""
    return json.dumps([action.to_json() for action in log])


def decode_log(raw: str | bytes) -> tuple[AlarmAction, ...]:
    return tuple(AlarmAction.from_json(item) for item in json.loads(raw))


class AlarmAckStore(ABC):
    """Record operator actions on alarm events, judged by the rules above."""

    # -- storage primitives -------------------------------------------------------
    @abstractmethod
    def _read(self, event_id: str) -> tuple[AlarmAction, ...]:
        """One event's log (empty if nobody acted on it)."""

    @abstractmethod
    def _read_all(self) -> dict[str, tuple[AlarmAction, ...]]:
        """Every event's log that has at least one action."""

    @abstractmethod
    def _write(self, event_id: str, log: tuple[AlarmAction, ...], expected_length: int) -> bool:
        """Store ``log`` only if the stored log still has ``expected_length`` actions; False otherwise."""

    # -- the rules ----------------------------------------------------------------
    def handling(self, event_id: str) -> AlarmHandling:
        return AlarmHandling(event_id, self._read(event_id))

    def all_handling(self) -> dict[str, AlarmHandling]:
        """Every event someone acted on, by event id."""
        return {event_id: AlarmHandling(event_id, log) for event_id, log in self._read_all().items()}

    def acknowledge(self, event_id: str, by: str, comment: str = "", now: datetime | None = None) -> AlarmAction:
        """Acknowledge an alarm (once: a second acknowledgement is refused, naming the first)."""
        return self._record(event_id, Action.ACKNOWLEDGE, by, comment, now, None)

    def shelve(self, event_id: str, by: str, comment: str, duration: timedelta,
               now: datetime | None = None) -> AlarmAction:
        """Shelve an alarm for ``duration`` (at most :data:`MAX_SHELVE`); the reason is required."""
        if not timedelta(0) < duration <= MAX_SHELVE:
            raise InputError(f"shelve duration must be more than 0 and at most {MAX_SHELVE.total_seconds() / 3600:g} h")
        if not comment.strip():
            raise InputError("comment: say why the alarm is shelved")
        return self._record(event_id, Action.SHELVE, by, comment, now, duration)

    def unshelve(self, event_id: str, by: str, comment: str = "", now: datetime | None = None) -> AlarmAction:
        """Put a shelved alarm back on the list before its time is up."""
        return self._record(event_id, Action.UNSHELVE, by, comment, now, None)

    def _record(self, event_id: str, kind: Action, by: str, comment: str, now: datetime | None,
                duration: timedelta | None) -> AlarmAction:
        for field, value, limit, required in (("operator", by, MAX_NAME_CHARS, True),
                                              ("comment", comment, MAX_COMMENT_CHARS, False)):
            if problem := text_problem(field, value, limit, required):
                raise InputError(problem)
        by, comment = " ".join(by.split()), " ".join(comment.split())
        if not event_id:
            raise InputError("event_id: no alarm chosen")
        at = now or datetime.now(UTC)
        action = AlarmAction(kind, by, at, comment, None if duration is None else at + duration)
        for _ in range(_ATTEMPTS):
            current = AlarmHandling(event_id, self._read(event_id))
            _judge(current, action)
            if self._write(event_id, (*current.log, action), len(current.log)):
                return action
        raise InputError(f"alarm {event_id} is being handled by someone else right now; reload and try again")


def _judge(current: AlarmHandling, action: AlarmAction) -> None:
    """Refuse an action the alarm's current handling does not allow, saying who did what."""
    if action.action == Action.ACKNOWLEDGE and (first := current.acknowledgement) is not None:
        raise InputError(f"alarm {current.event_id} was already acknowledged by {first.by} at "
                         f"{first.at.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
    shelved = current.shelved_until(action.at)
    if action.action == Action.SHELVE and shelved is not None:
        raise InputError(f"alarm {current.event_id} is already shelved until {shelved:%Y-%m-%d %H:%M} UTC")
    if action.action == Action.UNSHELVE and shelved is None:
        raise InputError(f"alarm {current.event_id} is not shelved")


def text_problem(field: str, value: str, limit: int, required: bool) -> str | None:
    """What is wrong with a text an operator typed (runs of spaces count as one), or None."""
    text = " ".join(value.split())
    if required and not text:
        return f"{field}: required"
    if len(text) > limit:
        return f"{field}: at most {limit} characters (got {len(text)})"
    return None
