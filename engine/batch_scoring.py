"""``engine score``: one file through exactly the consumer's feature and scoring code."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from engine.model import load_file
from engine.readers import read_instance
from engine.scoring import score_observations

OUTPUT_COLUMNS = ("event_time", "well_id", "anomaly_score", "anomaly_flag")


def score_file(model_path: Path, input_path: Path, output_path: Path) -> int:
    """Score every observation of an instance file; return how many rows were written."""
    model = load_file(model_path)
    observations = read_instance(input_path)
    rows = score_observations(observations, {}, model).select(list(OUTPUT_COLUMNS))
    output_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(rows, output_path)
    return rows.num_rows
