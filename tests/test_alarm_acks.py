"""Operators' alarm actions: the rules, durability and concurrent operators, on every backend kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.alarm_acks import Action, AlarmAckStore
from engine.backend import Backend, open_backend
from engine.errors import InputError

NOW = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)
EVENT = "WELL-00001@1733346000000"


def test_an_acknowledgement_is_kept_durably_with_who_when_and_why_and_given_once(backend: Backend) -> None:
    backend.alarm_acks.acknowledge(EVENT, "  Ana   Souza ", "checking the  choke", now=NOW)
    reopened = open_backend(backend.settings).alarm_acks  # another process, or the portal after a restart
    ack = reopened.handling(EVENT).acknowledgement
    assert ack is not None and (ack.action, ack.by, ack.at, ack.comment) == (
        Action.ACKNOWLEDGE, "Ana Souza", NOW, "checking the choke")
    with pytest.raises(InputError, match="already acknowledged by Ana Souza at 2026-12-04 21:00 UTC"):
        reopened.acknowledge(EVENT, "Bruno", now=NOW + timedelta(minutes=1))
    assert reopened.handling("WELL-00002@1").acknowledgement is None
    assert set(reopened.all_handling()) == {EVENT}


def test_shelving_needs_a_reason_ends_by_itself_and_can_be_undone(backend: Backend) -> None:
    acks = backend.alarm_acks
    with pytest.raises(InputError, match="comment: say why"):
        acks.shelve(EVENT, "Ana", " ", timedelta(hours=1), now=NOW)
    with pytest.raises(InputError, match="at most 24 h"):
        acks.shelve(EVENT, "Ana", "valve work", timedelta(hours=25), now=NOW)
    with pytest.raises(InputError, match="not shelved"):
        acks.unshelve(EVENT, "Ana", now=NOW)
    acks.shelve(EVENT, "Ana", "valve work on the ANM", timedelta(hours=2), now=NOW)
    handling = acks.handling(EVENT)
    assert handling.shelved_until(NOW + timedelta(hours=1)) == NOW + timedelta(hours=2)
    assert handling.shelved_until(NOW + timedelta(hours=2)) is None  # back on the list by itself
    with pytest.raises(InputError, match="already shelved until 2026-12-04 23:00 UTC"):
        acks.shelve(EVENT, "Bruno", "again", timedelta(hours=1), now=NOW + timedelta(minutes=5))
    acks.unshelve(EVENT, "Bruno", "work finished", now=NOW + timedelta(minutes=30))
    log = acks.handling(EVENT).log
    assert [(a.action, a.by) for a in log] == [(Action.SHELVE, "Ana"), (Action.UNSHELVE, "Bruno")]
    assert acks.handling(EVENT).shelved_until(NOW + timedelta(minutes=31)) is None
    assert acks.handling(EVENT).acknowledgement is None  # shelving is not acknowledging


def test_who_is_required_and_texts_are_bounded(backend: Backend) -> None:
    with pytest.raises(InputError, match="operator: required"):
        backend.alarm_acks.acknowledge(EVENT, "   ", now=NOW)
    with pytest.raises(InputError, match="comment: at most 500 characters"):
        backend.alarm_acks.acknowledge(EVENT, "Ana", "x" * 501, now=NOW)
    assert backend.alarm_acks.all_handling() == {}


def test_two_operators_at_once_one_acknowledgement_and_the_other_told_who(
        backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    mine, theirs = backend.alarm_acks, open_backend(backend.settings).alarm_acks
    real_read = type(mine)._read
    reads = {"n": 0}

    def stale_first(self: AlarmAckStore, event_id: str) -> tuple[object, ...]:
        reads["n"] += 1
        if reads["n"] == 1:  # read before the other operator's write landed
            theirs.acknowledge(EVENT, "Bruno", "mine", now=NOW)
            return ()
        return real_read(self, event_id)

    monkeypatch.setattr(type(mine), "_read", stale_first)
    with pytest.raises(InputError, match="already acknowledged by Bruno"):
        mine.acknowledge(EVENT, "Ana", now=NOW)
    monkeypatch.setattr(type(mine), "_read", real_read)
    assert [a.by for a in mine.handling(EVENT).log] == ["Bruno"]
