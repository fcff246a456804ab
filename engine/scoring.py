"""Observations in, lake rows out: features, model scores and the derived columns.

The consumer calls this on every micro-batch and ``engine score`` on a whole file, so a
file scored in one go gives exactly what the stream writes for the same rows. Alongside the
rows, :func:`score_and_explain` hands over the per-sensor deviations they were scored from,
which the alarms read to diagnose an event at its peak (:mod:`engine.diagnosis`).
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from engine import arrow_numpy
from engine.diagnosis import Diagnoser, Evidence
from engine.features import FEATURE_KINDS, FEATURE_SENSORS, WellState, model_inputs, sensor_deviations
from engine.model import Model
from engine.schema import PRESSURE_COLUMN, TEMPERATURE_COLUMN, WELL_DATA_SCHEMA, conform

#: Features and scores are computed this many rows at a time: the feature code's intermediates
#: grow with the rows it sees at once, and slices keep a consumer's memory flat whatever its batch
#: size. Slicing changes no number, since the per-well state carries across slices exactly.
SLICE_ROWS = 8192
_INGEST_TIME_TYPE = WELL_DATA_SCHEMA.field("ingest_time").type


def score_observations(observations: pa.Table, states: dict[str, WellState], model: Model | None) -> pa.Table:
    """Rows of ``well_data`` for observations; ``states`` carry each well's memory forward.

    Without a model the rows still land, with null scores, so no data waits on training.
    """
    return score_and_explain(observations, states, model)[0]


def score_and_explain(observations: pa.Table, states: dict[str, WellState],
                      model: Model | None) -> tuple[pa.Table, Evidence]:
    """Rows of ``well_data`` as :func:`score_observations`, and the evidence alarms diagnose from."""
    diagnoser = model.diagnoser if model is not None else Diagnoser(None)
    # Each slice's deviations go straight into the batch's evidence (float32 halves it): no
    # per-slice copy and no concatenation of them all afterwards.
    evidence = np.empty((observations.num_rows, len(FEATURE_SENSORS), len(FEATURE_KINDS)), dtype=np.float32)
    if observations.num_rows <= SLICE_ROWS:
        return _score_slice(observations, states, model, evidence), Evidence(evidence, diagnoser)
    pieces = [_score_slice(observations.slice(start, SLICE_ROWS), states, model, evidence[start:start + SLICE_ROWS])
              for start in range(0, observations.num_rows, SLICE_ROWS)]
    return pa.concat_tables(pieces), Evidence(evidence, diagnoser)


def _score_slice(observations: pa.Table, states: dict[str, WellState], model: Model | None,
                 evidence: np.ndarray) -> pa.Table:
    """The slice's rows of ``well_data``; its deviations are written into ``evidence``."""
    deviations = sensor_deviations(observations, states)
    evidence[...] = deviations
    features = model_inputs(deviations)
    if model is None:
        scores = pa.nulls(observations.num_rows, pa.float64())
        flags = pa.nulls(observations.num_rows, pa.int8())
        version = pa.nulls(observations.num_rows, pa.string())
    else:
        raw_scores, raw_flags = model.score(features)
        # Built from their buffers: ``pa.array`` and ``pa.scalar`` would import pandas.
        scores, flags = arrow_numpy.array(raw_scores), arrow_numpy.array(raw_flags, pa.int8())
        version = arrow_numpy.repeated_strings([model.version], [observations.num_rows])  # no str per row
    now = time.time_ns() // 1_000_000  # epoch milliseconds, as the consumer stamps dead letters
    extra = {
        "pressure": observations[PRESSURE_COLUMN],
        "temperature": observations[TEMPERATURE_COLUMN],
        "anomaly_score": scores,
        "anomaly_flag": flags,
        "model_version": version,
        "ingest_time": arrow_numpy.array(np.full(observations.num_rows, now, dtype=np.int64), _INGEST_TIME_TYPE),
    }
    table = observations
    for name, column in extra.items():
        table = table.append_column(name, column)
    return conform(table, WELL_DATA_SCHEMA)
