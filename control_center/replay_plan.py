"""What the Replay page's buttons would do, decided before they are clicked.

A button that cannot do anything useful is disabled with the reason next to it, rather than
clicked into an error, or worse into "Replay started" for a replay that sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import InputError
from engine.replay_control import ReplayControl, ReplayRequest
from engine.replay_log import FINISHED


@dataclass(frozen=True)
class Plan:
    """The resume button's label, what it would do, and why a button is disabled (None: enabled)."""

    resume_label: str
    summary: str
    invalid: str | None = None  # neither button can run: the reason
    blocked: str | None = None  # the resume button cannot run: the reason

    @classmethod
    def refused(cls, reason: str) -> Plan:
        return cls("Start replay", "", reason, reason)


def plan(control: ReplayControl, request: ReplayRequest) -> Plan:
    """Validate ``request`` and look up an earlier replay of the same files (what a start would resume)."""
    try:
        request = request.validated()
    except InputError as exc:
        return Plan.refused(_sentence(str(exc)))
    if control.state().running:
        return Plan.refused("A replay is running; stop it before starting another.")
    pace = "as fast as possible" if request.speed <= 0 else f"at {request.speed:g}× real time"
    limit = f", at most {request.max_rows:,} rows" if request.max_rows else ""
    stored = control.stored(request.files)
    if stored is None:
        return Plan("Start replay", f"Sends {len(request.files)} file(s) from their first row {pace}{limit}.")
    if stored.status == FINISHED:
        return Plan("Resume replay", "", blocked="These files were already replayed to their end, so resuming "
                                                 "would send nothing; replay them from the start instead.")
    share = stored.sent_rows / stored.total_rows if stored.total_rows else 0.0
    return Plan("Resume replay", f"Resumes after row {stored.sent_rows:,} of {stored.total_rows:,} ({share:.0%}, "
                                 f"{stored.status}) {pace}{limit}.")


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
