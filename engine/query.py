"""The SQL port: every backend answers the same SQL text, written in Athena's (Trino) dialect.

Portal pages, the command line and users' own tools speak one dialect; a backend whose
engine speaks another (DuckDB) translates. Values from users travel as ``?`` parameters,
never spliced into the text.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the producer and consumer open a backend but never query: no pandas for them
    import pandas as pd


class QueryEngine(ABC):
    """Run Trino-dialect SQL over the lake tables and return a data frame."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[object] = ()) -> pd.DataFrame:
        """Run one statement; ``params`` fill its ``?`` placeholders in order."""

    @abstractmethod
    def newest_partition(self, table: str) -> str | None:
        """The newest ``date`` partition the catalog lists for a lake table (None when it has none).

        Read from the catalog, not the data, so it costs no scan: the portal anchors its bounded
        look-back windows (:mod:`engine.scan_window`) on it.
        """
