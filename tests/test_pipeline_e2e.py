"""The whole pipeline through the real command line: separate processes, real SQLite, DuckDB, files.

demo-data -> train -> replay -> consume -> query, then the same under a ``kill -9`` of the
consumer, with two consumer processes, and with SIGTERM.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from engine.backend import open_backend
from engine.config import Settings
from engine.readers import discover
from engine.schema import WELL_DATA_TABLE
from engine.stream import shard_index
from tests.polling import wait_for

REPO = Path(__file__).resolve().parents[1]


def cli(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "engine", *args], cwd=REPO, env=_env(home),
                            capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"engine {args[0]} failed ({result.returncode}): {result.stderr[-2000:]}")
    return result


def start(home: Path, *args: str, shards: int = 4) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "engine", *args], cwd=REPO, env=_env(home, shards),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _env(home: Path, shards: int = 4) -> dict[str, str]:
    # Short leases so a killed worker's shards are taken over in seconds, not the default 20.
    return {**os.environ, "PETROSTREAM_HOME": str(home), "PETROSTREAM_BACKEND": "local",
            "PETROSTREAM_LEASE_SECONDS": "4", "PETROSTREAM_SHARDS": str(shards)}


def lake_counts(home: Path) -> tuple[int, int]:
    """(rows, distinct (well_id, event_time)) in well_data, through the query command."""
    out = cli(home, "query", "SELECT count(*) AS n, count(DISTINCT concat(well_id, CAST(event_time AS varchar))) "
                             "AS d FROM well_data", "--format", "json").stdout
    row = json.loads(out)[0]
    return int(row["n"]), int(row["d"])


def total_rows(data: Path) -> int:
    return sum(pq.ParquetFile(f.path).metadata.num_rows for f in discover([data]))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("e2e-demo")
    cli(folder, "demo-data", "--out", str(folder / "data"), "--wells", "4", "--hours", "3", "--seed", "5")
    return folder / "data"


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Path:
    """A home whose model store holds one published model, trained once for the module."""
    folder = tmp_path_factory.mktemp("e2e-trained")
    cli(folder, "train", "--data", str(data))
    return folder


@pytest.fixture
def home(tmp_path: Path, trained_home: Path) -> Path:
    """A fresh home (empty stream and lake) with the module's published model."""
    shutil.copytree(trained_home / "models", tmp_path / "models")
    return tmp_path


def test_every_replayed_row_lands_exactly_once_and_scores_match_batch_scoring(
        home: Path, data: Path, tmp_path: Path) -> None:
    replayed = cli(home, "replay", "--data", str(data), "--speed", "0")
    assert "finished" in replayed.stderr + replayed.stdout
    cli(home, "consume", "--exit-when-idle", "2")
    expected = total_rows(data)
    assert lake_counts(home) == (expected, expected)

    flagged = pd.read_csv(io.StringIO(cli(home, "query", "SELECT * FROM well_data WHERE anomaly_flag = 1").stdout))
    assert len(flagged) > 0 and set(flagged["anomaly_flag"]) == {1}
    averages = cli(home, "query", "SELECT well_id, AVG(pressure) FROM well_data GROUP BY well_id", "--format", "json")
    assert len(json.loads(averages.stdout)) == 4

    # `score` on a well's first file (no history before it, as in the stream) gives exactly what landed.
    backend = open_backend(Settings(home=home))
    model_file = home / "models" / backend.models.active_version() / "model.joblib"
    (model_file.parent / "model.joblib.manifest.json").write_bytes((model_file.parent / "manifest.json").read_bytes())
    instance = min(discover([data]), key=lambda f: f.path.name)
    output = tmp_path / "s.parquet"
    cli(home, "score", "--model", str(model_file), "--input", str(instance.path), "--output", str(output))
    batch = pq.read_table(output).to_pandas()
    landed = backend.sql.query(
        "SELECT event_time, well_id, anomaly_score, anomaly_flag FROM well_data "
        "WHERE well_id = ? AND event_time BETWEEN ? AND ? ORDER BY event_time",
        [instance.well_id, batch["event_time"].min(), batch["event_time"].max()])
    assert len(landed) == len(batch)
    assert (landed["anomaly_score"].to_numpy() == batch["anomaly_score"].to_numpy()).all()
    assert (landed["anomaly_flag"].to_numpy() == batch["anomaly_flag"].to_numpy()).all()


def test_kill_9_of_the_consumer_mid_stream_loses_and_duplicates_nothing(home: Path, data: Path) -> None:
    producer = start(home, "replay", "--data", str(data), "--speed", "1500")  # 3 h of data in ~7 s
    consumer = start(home, "consume")
    backend = open_backend(Settings(home=home))
    deadline = time.monotonic() + 60
    while backend.lake.row_count(WELL_DATA_TABLE) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    consumer.send_signal(signal.SIGKILL)
    consumer.wait(timeout=30)
    landed_at_kill = backend.lake.row_count(WELL_DATA_TABLE)
    assert producer.wait(timeout=120) == 0
    assert 0 < landed_at_kill < total_rows(data)  # the kill really happened mid-stream
    cli(home, "consume", "--exit-when-idle", "1")  # waits for the dead worker's leases to expire, takes them
    assert lake_counts(home) == (total_rows(data), total_rows(data))


def test_two_consumer_processes_share_the_shards_and_land_every_row_once(home: Path, data: Path) -> None:
    """Leases split the shards evenly, whatever rows they carry. On four shards the demo's wells leave
    shard 1 empty, so a worker could briefly hold only that one when the replay starts; on two shards,
    both carrying wells, two owners means each worker has rows to land."""
    assert {shard_index(f.well_id, 2) for f in discover([data])} == {0, 1}
    workers = [start(home, "consume", shards=2) for _ in range(2)]
    backend = open_backend(Settings(home=home, shard_count=2))
    wait_for(lambda: len({lease.owner for lease in backend.leases.leases() if lease.owner}) == 2, seconds=90)
    cli(home, "replay", "--data", str(data), "--speed", "0")
    wait_for(lambda: backend.lake.row_count(WELL_DATA_TABLE) >= total_rows(data), seconds=90)
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    outputs = [w.communicate(timeout=60)[0] for w in workers]
    landed = [int(out.split(": ")[1].split(" rows")[0].replace(",", "")) for out in outputs]
    assert all(n > 0 for n in landed), outputs  # both workers did real work
    assert sum(landed) == total_rows(data)
    assert lake_counts(home) == (total_rows(data), total_rows(data))


def test_sigterm_finishes_the_batch_checkpoints_and_releases_the_leases(home: Path, data: Path) -> None:
    cli(home, "replay", "--data", str(data), "--speed", "0")
    consumer = start(home, "consume")
    backend = open_backend(Settings(home=home))
    deadline = time.monotonic() + 60
    while backend.lake.row_count(WELL_DATA_TABLE) < total_rows(data) and time.monotonic() < deadline:
        time.sleep(0.2)
    consumer.send_signal(signal.SIGTERM)
    assert consumer.wait(timeout=60) == 0
    status = json.loads(cli(home, "status", "--json").stdout)
    assert status["total_lag"] == 0 and status["workers"] == []
    assert all(shard["owner"] is None for shard in status["shards"])


def test_replay_resumes_without_gaps_or_duplicates(home: Path, data: Path) -> None:
    first = cli(home, "replay", "--data", str(data), "--speed", "0", "--max-rows", "10000")
    assert "stopped" in first.stderr and "resume" in first.stdout
    cli(home, "replay", "--data", str(data), "--speed", "0")
    backend = open_backend(Settings(home=home))
    assert backend.replays.latest().sent_rows == total_rows(data)
    cli(home, "consume", "--exit-when-idle", "2")
    status = json.loads(cli(home, "status", "--json").stdout)
    assert status["lake_rows"] == total_rows(data)
    # a replay that finished sends nothing more when run again
    cli(home, "replay", "--data", str(data), "--speed", "0")
    assert status["dead_letters"] == 0 and backend.stream.backlog(backend.stream.shard_ids()[0], None) >= 0


@pytest.mark.parametrize(("args", "message"), [
    (("query", "SELEC nothing"), "SELEC"),
    (("train", "--data", "/nonexistent/folder"), "no such file or folder"),
    (("score", "--model", "/nonexistent.joblib", "--input", "x.csv", "--output", "y.parquet"), "no such model file"),
    (("replay", "--data", "/nonexistent"), "no such file or folder"),
])
def test_bad_input_exits_non_zero_with_one_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = cli(tmp_path, *args, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1]
    assert "Traceback" not in result.stderr


def test_a_tampered_model_file_is_refused_on_the_command_line(home: Path, data: Path, tmp_path: Path) -> None:
    model = tmp_path / "m.joblib"
    cli(home, "train", "--data", str(data), "--model-out", str(model))
    model.write_bytes(model.read_bytes() + b"x")
    result = cli(home, "score", "--model", str(model), "--input", str(discover([data])[0].path),
                 "--output", str(tmp_path / "o.parquet"), check=False)
    assert result.returncode == 2 and "sha256" in result.stderr


def test_model_lifecycle_on_the_command_line(home: Path, data: Path, tmp_path: Path) -> None:
    model = tmp_path / "candidate.joblib"
    cli(home, "train", "--data", str(data), "--model-out", str(model))
    first = open_backend(Settings(home=home)).models.active_version()
    time.sleep(1.1)  # versions are stamped to the second
    published = cli(home, "models", "publish", str(model)).stdout.split()[-1]
    assert open_backend(Settings(home=home)).models.active_version() == published != first
    assert f"* {published}" in cli(home, "models").stdout
    assert cli(home, "models", "rollback").stdout.split()[-1] == first
    cli(home, "models", "activate", published)
    assert open_backend(Settings(home=home)).models.active_version() == published
    refused = cli(home, "models", "activate", "v-nope", check=False)
    assert refused.returncode == 2 and "no published model version" in refused.stderr
