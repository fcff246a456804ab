"""Peak memory of hostile inputs through the real entry points, each in a fresh process.

    .venv/bin/python bench/bench_hostile_inputs.py

The inputs of issue 11: a 3W Parquet instance of 40 million identical rows (about 0.5 MB on
disk) replayed and trained on, and a stream record of 1.4 MB that declares 20 million rows.
Each runs in its own interpreter; the peak is that process's ``VmHWM`` (Linux), compared with
an interpreter that only imports the same modules. Prints a table and writes
bench/results/hostile_inputs.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_bounded_memory import constant_3w_parquet, constant_record  # noqa: E402

_PEAK = ("\nimport re\nprint('PEAK', int(re.search(r'VmHWM:\\s+(\\d+) kB', "
         "open('/proc/self/status').read()).group(1)) // 1024)")


def peak_mb(code: str, home: Path) -> tuple[int, str]:
    """Run ``code`` in a fresh interpreter; its peak RSS in MB and the last line it printed to stderr."""
    done = subprocess.run([sys.executable, "-c", code + _PEAK], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PETROSTREAM_HOME": str(home), "PETROSTREAM_BACKEND": "local"})
    peak = next(int(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("PEAK"))
    return peak, (done.stderr.strip().splitlines() or [""])[-1][:110]


def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="hostile-"))
    instance = constant_3w_parquet(folder / "WELL-00001_20240101000000.parquet", 40_000_000)
    record = folder / "record"
    record.write_bytes(constant_record(20_000_000))
    cases = {
        "imports only": "import engine.cli, engine.producer, engine.data_sources, ml.train_model",
        "replay of the 40M-row instance (streamed)":
            f"from engine.cli import main\nmain(['replay', '--data', {str(instance)!r}, '--speed', '0'])",
        "train on it (refused from the footer)":
            f"from engine.cli import main\nmain(['train', '--data', {str(instance)!r}, "
            f"'--model-out', {str(folder / 'm.joblib')!r}])",
        "decode the 20M-row record (refused)":
            "from engine import codec\nfrom engine.errors import InputError\n"
            f"try:\n    codec.decode(open({str(record)!r}, 'rb').read())\nexcept InputError as exc:\n"
            "    import sys\n    print(exc, file=sys.stderr)",
    }
    results = {"instance_bytes": instance.stat().st_size, "record_bytes": record.stat().st_size, "peaks_mb": {}}
    print(f"instance: {results['instance_bytes']:,} bytes, 40,000,000 rows; "
          f"record: {results['record_bytes']:,} bytes, 20,000,000 rows")
    print(f"{'case':45} {'peak MB':>8}  outcome")
    for name, code in cases.items():
        peak, outcome = peak_mb(code, folder / "home")
        results["peaks_mb"][name] = peak
        print(f"{name:45} {peak:>8}  {outcome}")
    out = ROOT / "bench" / "results" / "hostile_inputs.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
