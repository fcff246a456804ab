"""Every SQL statement the portal issues, collected by running the engine functions its pages call.

The statements are not copied here: :func:`issue_all` calls each function of
``engine/insights.py``, ``engine/history.py``, ``engine/alarm_board.py`` and ``engine/bi.py``
the pages use, through a :class:`Recorder` that runs them on the real backend and keeps the
text and parameters of each. :func:`module_statements` lists the SQL text the modules define, so
a test can check that a statement added later is exercised here too.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType

import pandas as pd

from engine import alarm_board, bi, history, insights, scaling, well_registry
from engine.backend import Backend
from engine.query import QueryEngine

#: The modules whose statements the portal issues (well_registry and scaling issue none; listed so
#: a statement added to them is caught by :func:`module_statements`).
MODULES: tuple[ModuleType, ...] = (insights, history, alarm_board, bi, well_registry, scaling)


@dataclass(frozen=True)
class Statement:
    sql: str
    params: tuple[object, ...]


class Recorder(QueryEngine):
    """Runs every statement on ``engine`` and remembers it."""

    def __init__(self, engine: QueryEngine) -> None:
        self._engine = engine
        self.statements: list[Statement] = []

    def query(self, sql: str, params: Sequence[object] = ()) -> pd.DataFrame:
        self.statements.append(Statement(sql, tuple(params)))
        return self._engine.query(sql, params)

    def newest_partition(self, table: str) -> str | None:
        return self._engine.newest_partition(table)


def issue_all(backend: Backend, well_id: str, event_id: str, ddl: bool) -> list[Statement]:
    """Run every portal read (and, with ``ddl``, the Power BI view DDL, which needs Athena) once."""
    recorder = Recorder(backend.sql)
    now = datetime.now(UTC)
    insights.kpis(recorder, now)
    insights.live_wells(recorder, now)
    insights.alarms(recorder)
    insights.score_histogram(recorder, "any-version")
    for name in insights.EXECUTIVE_VIEWS:
        insights.executive_view(recorder, name)
    catalogue = history.wells(recorder)
    last = pd.Timestamp(catalogue.loc[catalogue["well_id"] == well_id, "last_event"].iloc[0]).to_pydatetime()
    history.sensors_of(recorder, well_id, last - timedelta(hours=1), last)
    history.history(recorder, well_id, last - timedelta(hours=1), last)
    history.find_alarm(recorder, event_id)
    alarm_board.alarm_headline(recorder, backend.alarm_acks, now)
    alarm_board.alarm_board(recorder, backend.alarm_acks, now)
    if ddl:
        bi.create_views(dataclasses.replace(backend, sql=recorder))
    return recorder.statements


def module_statements() -> dict[str, str]:
    """``module.NAME`` -> SQL text (a template, with its ``{...}`` fields) of every statement the modules define."""
    found = {}
    for module in MODULES:
        for name, value in vars(module).items():
            texts = value.items() if isinstance(value, dict) else [("", value)]
            for key, text in texts:
                if isinstance(text, str) and re.search(r"\bSELECT\b", text) and re.search(r"\bFROM\b", text):
                    found[f"{module.__name__}.{name}{'[' + key + ']' if key else ''}"] = text
    return found


def matches(template: str, statement: str) -> bool:
    """Whether ``statement`` is ``template`` with its ``{...}`` fields filled in."""
    parts = re.split(r"\{[^{}]*\}", template.replace("{{", "{").replace("}}", "}"))
    return re.search(".*?".join(re.escape(p.strip()) for p in parts), statement, re.S) is not None
