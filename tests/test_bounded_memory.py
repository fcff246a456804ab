"""Inputs that decompress to millions of rows are refused before they are decompressed.

Each crafted input is a few hundred KB to a few MB on disk and declares tens of millions of
rows (constant columns compress to almost nothing). Each is fed to the real entry point in a
subprocess whose peak RSS is measured; without the size checks these took the process to many
GB (issue 11: 23.6 GB for the 40M-row replay).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine import codec
from engine.errors import InputError
from engine.schema import OBSERVATION_SCHEMA

REPO = Path(__file__).resolve().parents[1]
#: Peak RSS a refusal may take: the interpreter with pandas, pyarrow and scikit-learn imported,
#: plus a little. Reading any of these inputs would take gigabytes.
PEAK_LIMIT_MB = 450


def constant_3w_parquet(path: Path, rows: int, block: int = 1_000_000) -> Path:
    """A 3W 2.0 instance of ``rows`` identical rows, written one row group at a time."""
    table = pa.table({"timestamp": pa.array(np.zeros(block, dtype="datetime64[ns]")),
                      "P-PDG": pa.array(np.full(block, 1.5)), "class": pa.array(np.zeros(block, dtype=np.int64))})
    with pq.ParquetWriter(path, table.schema, compression="zstd") as writer:
        for _ in range(rows // block):
            writer.write_table(table)
    return path


def constant_record(rows: int, block: int = 1_000_000) -> bytes:
    """A version-1 stream record (format byte + Parquet) declaring ``rows`` identical observations: records
    already in a stream are read in that format, so it must stay bounded."""
    columns = {f.name: pa.nulls(block, f.type) for f in OBSERVATION_SCHEMA}
    columns["well_id"] = pa.array(["WELL-00001"] * block, pa.string())
    columns["event_time"] = pa.array(np.zeros(block, dtype="datetime64[ms]")).cast(OBSERVATION_SCHEMA.field(
        "event_time").type)
    table = pa.table(columns, schema=OBSERVATION_SCHEMA)
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, OBSERVATION_SCHEMA, compression="zstd") as writer:
        for _ in range(rows // block):
            writer.write_table(table)
    return bytes([codec.PARQUET_VERSION]) + sink.getvalue().to_pybytes()


def run_measured(code: str, env: dict[str, str] | None = None) -> tuple[dict[str, object], int]:
    """Run ``code`` in a fresh interpreter; it sets ``result``; return it and the peak RSS in MB."""
    # VmHWM is this process's own peak (getrusage's ru_maxrss would carry pytest's over fork and exec).
    wrapper = ("import json, re\nresult = None\n" + code +
               "\npeak = int(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1))"
               "\nprint(json.dumps({'result': result, 'peak_mb': peak // 1024}))")
    done = subprocess.run([sys.executable, "-c", wrapper], cwd=REPO, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return answer["result"], int(answer["peak_mb"])


def run_cli_measured(home: Path, *args: str) -> tuple[int, str, int]:
    """``python -m engine ARGS`` in a fresh process: exit code, stderr and peak RSS in MB."""
    result, peak = run_measured(
        "import contextlib, io\nfrom engine.cli import main\nerr = io.StringIO()\n"
        f"with contextlib.redirect_stderr(err):\n    code = main({list(args)!r})\n"
        "result = [code, err.getvalue()]",
        {"PETROSTREAM_HOME": str(home), "PETROSTREAM_BACKEND": "local"})
    code, stderr = result
    return int(code), str(stderr), peak


def test_a_40_million_row_instance_replays_in_bounded_memory(tmp_path: Path) -> None:
    crafted = constant_3w_parquet(tmp_path / "WELL-00001_20240101000000.parquet", 40_000_000)
    assert crafted.stat().st_size < 2_000_000 and pq.ParquetFile(crafted).metadata.num_rows == 40_000_000
    code, stderr, peak = run_cli_measured(tmp_path / "home", "replay", "--data", str(crafted), "--speed", "0")
    assert code == 0, stderr
    # Every row was read (in chunks); one timestamp means one observation, as read_instance would keep.
    assert "replay finished: 1/40,000,000 rows" in stderr
    assert peak < PEAK_LIMIT_MB, f"peak RSS {peak} MB"


def test_a_40_million_row_instance_is_refused_where_a_file_is_read_whole(tmp_path: Path) -> None:
    crafted = constant_3w_parquet(tmp_path / "WELL-00001_20240101000000.parquet", 40_000_000)
    code, stderr, peak = run_cli_measured(tmp_path / "home", "train", "--data", str(crafted),
                                          "--model-out", str(tmp_path / "m.joblib"))
    lines = [line for line in stderr.strip().splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1, stderr
    assert str(crafted) in lines[0] and "40,000,000 rows" in lines[0] and "PETROSTREAM_MAX_FILE_ROWS" in lines[0]
    assert peak < PEAK_LIMIT_MB, f"peak RSS {peak} MB"


def test_a_small_record_that_decodes_to_20_million_rows_is_refused_before_decompressing(tmp_path: Path) -> None:
    record = constant_record(20_000_000)
    assert len(record) < 2_000_000
    (tmp_path / "record").write_bytes(record)
    result, peak = run_measured(
        "from engine import codec\nfrom engine.errors import InputError\n"
        f"payload = open({str(tmp_path / 'record')!r}, 'rb').read()\n"
        "try:\n    codec.decode(payload)\nexcept InputError as exc:\n    result = str(exc)")
    assert "declares 20,000,000 rows" in str(result)
    assert peak < PEAK_LIMIT_MB, f"peak RSS {peak} MB"


def test_a_small_record_of_todays_format_that_decompresses_to_a_gigabyte_is_refused(tmp_path: Path) -> None:
    # 8,192 zstd frames of 128 KiB of zeros, one after another, decompress to 1 GiB from 100 KB or so.
    frames = pa.Codec("zstd").compress(bytes(128 * 2**10), asbytes=True) * 8_192
    truthful = bytes([codec.FORMAT_VERSION]) + (20_000_000).to_bytes(4, "little") + (2**30 - 1).to_bytes(4, "little")
    lying = bytes([codec.FORMAT_VERSION]) + (10).to_bytes(4, "little") + (4_096).to_bytes(4, "little")
    (tmp_path / "truthful").write_bytes(truthful + frames)
    (tmp_path / "lying").write_bytes(lying + frames)
    assert len(frames) < 1_000_000
    result, peak = run_measured(
        "from engine import codec\nfrom engine.errors import InputError\nresult = []\n"
        "for name in ('truthful', 'lying'):\n"
        f"    payload = open({str(tmp_path)!r} + '/' + name, 'rb').read()\n"
        "    try:\n        codec.decode(payload)\n    except InputError as exc:\n        result.append(str(exc))")
    assert "declares 20,000,000 rows" in result[0], result  # refused from the header
    assert result[1].startswith("corrupt record"), result  # decompressed into the declared 4 KB, which it overflows
    assert peak < PEAK_LIMIT_MB, f"peak RSS {peak} MB"


def test_records_up_to_the_cap_decode_and_one_row_more_is_refused() -> None:
    assert codec.decode(constant_record(codec.MAX_RECORD_ROWS, block=codec.MAX_RECORD_ROWS)).num_rows == \
        codec.MAX_RECORD_ROWS
    with pytest.raises(InputError, match="declares 100,001 rows"):
        codec.decode(constant_record(codec.MAX_RECORD_ROWS + 1, block=codec.MAX_RECORD_ROWS + 1))


def test_an_upload_declaring_40_million_rows_is_refused_from_its_footer_and_leaves_nothing(tmp_path: Path) -> None:
    crafted = constant_3w_parquet(tmp_path / "crafted.parquet", 40_000_000)
    home = tmp_path / "home"
    result, peak = run_measured(
        "from pathlib import Path\nfrom engine.data_sources import save_upload\nfrom engine.errors import InputError\n"
        f"data = Path({str(crafted)!r}).read_bytes()\n"
        "try:\n"
        f"    save_upload(Path({str(home)!r}), 'WELL-00009_20240101000000.parquet', data)\n"
        "except InputError as exc:\n    result = str(exc)")
    assert str(result).startswith("WELL-00009_20240101000000.parquet: 40,000,000 rows"), result
    assert peak < PEAK_LIMIT_MB, f"peak RSS {peak} MB"
    assert [p for p in home.rglob("*") if p.is_file()] == []

