"""Each well's rows of a batch, found in one pass.

A micro-batch, a replay window or a scored slice interleaves many wells, and most per-well work
(features, de-duplication marks, alarms, stream records) needs each well's rows in their order.
Comparing the well column with every well costs wells x rows; one stable sort of the
dictionary codes costs rows x log(rows) and gives every well's rows at once, in the same order
as a per-well filter would.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine import arrow_numpy


@dataclass(frozen=True)
class WellRows:
    """Row positions grouped by well: well ``i``'s rows are ``order[bounds[i]:bounds[i + 1]]``."""

    wells: list[str]
    order: np.ndarray
    bounds: list[int]
    #: Whether the rows already came grouped (``order`` is then 0, 1, 2, ...).
    grouped: bool

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        """``(well, its row positions in increasing order)``, wells in order of first appearance."""
        for index, well in enumerate(self.wells):
            yield well, self.order[self.bounds[index]:self.bounds[index + 1]]


def well_rows(well_ids: pa.Array | pa.ChunkedArray) -> WellRows:
    """Group the positions of a ``well_id`` column by well (wells in order of first appearance)."""
    column = well_ids.combine_chunks() if isinstance(well_ids, pa.ChunkedArray) else well_ids
    encoded = pc.dictionary_encode(column)
    codes = arrow_numpy.values(encoded.indices)
    grouped = not np.any(codes[1:] < codes[:-1])
    order = np.arange(len(codes)) if grouped else np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(encoded.dictionary) + 1)).tolist()
    return WellRows(encoded.dictionary.to_pylist(), order, bounds, grouped)
