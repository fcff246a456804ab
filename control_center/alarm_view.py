"""What the Alarms page shows and allows: the board as a table, and which actions an alarm accepts now.

The rules themselves are the engine's (:mod:`engine.alarm_acks`); here they are asked
*before* a click, so a button that would be refused is disabled with its reason beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pandas as pd
import streamlit as st

from control_center.ui import arrow_times
from engine.alarm_acks import MAX_COMMENT_CHARS, MAX_NAME_CHARS, Action, text_problem
from engine.alarm_board import AlarmStatus

#: The board's filter choices, in the order an operator works through them.
FILTERS: dict[str, tuple[AlarmStatus, ...]] = {
    "Needs action": (AlarmStatus.ACTIVE,),
    "Active (all)": (AlarmStatus.ACTIVE, AlarmStatus.ACKNOWLEDGED, AlarmStatus.SHELVED),
    "Acknowledged": (AlarmStatus.ACKNOWLEDGED,),
    "Shelved": (AlarmStatus.SHELVED,),
    "Cleared": (AlarmStatus.CLEARED,),
    "All": tuple(AlarmStatus),
}
#: Shelve durations offered.
SHELVE_FOR: dict[str, timedelta] = {"1 h": timedelta(hours=1), "4 h": timedelta(hours=4),
                                    "8 h": timedelta(hours=8), "24 h": timedelta(hours=24)}
#: Display columns of the board, in order (``history`` is rendered as a link).
COLUMNS = ("status", "well_id", "start_time", "duration", "peak_score", "history", "likely_cause",
           "likely_class_probability", "top_sensors", "explanation", "source_label", "acknowledged_by", "comment")

#: How the alarm columns are shown wherever an alarm table appears.
COLUMN_CONFIG = {
    "history": st.column_config.LinkColumn("History", display_text="open window"),
    "start_time": st.column_config.DatetimeColumn("Start (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "peak_score": st.column_config.NumberColumn("Peak score", format="%.3f"),
    "likely_class_probability": st.column_config.ProgressColumn("Probability", min_value=0.0, max_value=1.0),
    "well_id": "Well", "status": "Status", "duration": "Duration", "likely_cause": "Likely cause",
    "top_sensors": "Top sensors", "explanation": "What moved", "source_label": "Source label",
    "acknowledged_by": "Acknowledged by", "comment": "Latest comment",
}


def headline_table(top: pd.DataFrame) -> pd.DataFrame:
    """The Overview's few alarms, with durations in words."""
    return arrow_times(top.assign(duration=[_duration(s) for s in top["duration_seconds"]])[
        ["status", "well_id", "start_time", "duration", "peak_score", "history"]])


def board_table(board: pd.DataFrame, statuses: tuple[AlarmStatus, ...]) -> pd.DataFrame:
    """The board's rows of the chosen statuses, with the columns an operator reads."""
    shown = board[board["status"].isin([s.value for s in statuses])]
    return arrow_times(shown.assign(duration=[_duration(s) for s in shown["duration_seconds"]])[list(COLUMNS)])


def describe(alarm: pd.Series) -> str:
    """One line naming an alarm in a picker: well, start, status."""
    return f"{alarm['well_id']} · {pd.Timestamp(alarm['start_time']):%Y-%m-%d %H:%M:%S} UTC · {alarm['status']}"


@dataclass(frozen=True)
class Allowed:
    """Per action, None if it may be done now, else the reason it may not."""

    acknowledge: str | None
    shelve: str | None
    unshelve: str | None

    def reason(self, action: Action) -> str | None:
        return getattr(self, action.value)


def allowed_actions(alarm: pd.Series, operator: str, comment: str) -> Allowed:
    """Which actions the rules would accept for this alarm with this operator name and comment.

    What the alarm's state forbids is said first (it does not change with typing), then what
    is wrong with the input.
    """
    typed = text_problem("operator", operator, MAX_NAME_CHARS, required=True) or \
        text_problem("comment", comment, MAX_COMMENT_CHARS, required=False)
    acknowledged = alarm["acknowledged_by"]
    shelved = alarm["status"] == AlarmStatus.SHELVED
    return Allowed(
        acknowledge=(f"already acknowledged by {acknowledged}" if isinstance(acknowledged, str) else None) or typed,
        shelve=("only an active alarm can be shelved" if alarm["state"] != "active" else None)
        or ("already shelved" if shelved else None) or typed
        or ("say why in the comment" if not comment.strip() else None),
        unshelve=(None if shelved else "the alarm is not shelved") or typed,
    )


def summary(alarm: pd.Series) -> str:
    """What operators did about an alarm so far, in one line."""
    parts = []
    if isinstance(alarm["acknowledged_by"], str):
        parts.append(f"Acknowledged by {alarm['acknowledged_by']} at "
                     f"{pd.Timestamp(alarm['acknowledged_at']):%Y-%m-%d %H:%M} UTC")
    else:
        parts.append("Not acknowledged")
    if alarm["shelved_until"] is not None and not pd.isna(alarm["shelved_until"]):
        parts.append(f"shelved until {pd.Timestamp(alarm['shelved_until']):%Y-%m-%d %H:%M} UTC")
    if isinstance(alarm["comment"], str):
        parts.append(f"latest comment: “{alarm['comment']}”")
    return " · ".join(parts)


def _duration(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
