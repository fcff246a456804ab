"""Two consumer workers against one, on a stream long enough for the split to matter.

Run: ``.venv/bin/python bench/bench_workers.py [--wells 16] [--hours 36] [--rounds 2] [--baseline CHECKOUT]``

Fills one local stream with ``engine replay --speed 0``, then, on copies of it, alternates
``engine consume --exit-when-idle`` with one worker and ``consume --workers 2`` (with
``--baseline``, the other checkout's code in the same alternation). Besides wall times it
samples the lease table every 50 ms, which gives measures the machine's load does not move:

* **time to an even split**: from the moment the second worker's heartbeat appears to the first
  moment two workers hold their fair share each (counts within one), and how many ownership
  changes follow it (a balancer that thrashes keeps moving leases);
* **who did the work**: records committed by each worker (checkpoint advances it made, counted
  in the stream): the best speed-up that split allows is 1 / the busier worker's share;
* **CPU seconds per worker** (user + system, every process sampled): on two otherwise idle
  cores each worker has a core, so ``two_vs_one_by_cpu`` (one worker's CPU seconds over the
  busier of two workers') is what two workers would gain there, start-up and contention
  included, whatever else runs on the machine now.

The per-shard work depends on how the wells hash onto the shards (MD5, as Kinesis routes),
so ``--wells`` decides how even a count split of the shards can be.
"""

from __future__ import annotations

import bisect
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_performance import dataset, fresh_home, publish_for, run_timed  # noqa: E402
from bench_pipeline import _engine  # noqa: E402

from bench.report import alternating_parser, machine, report  # noqa: E402
from engine.producer import count_rows  # noqa: E402
from engine.readers import discover  # noqa: E402
from ml.train_model import train  # noqa: E402

IDLE_EXIT_SECONDS = 0.5


@dataclass
class LeaseLog:
    """What the lease table showed over a run, sampled."""

    samples: list[tuple[float, dict[str, tuple[str | None, int]]]] = field(default_factory=list)
    #: When the workers table first showed two live workers.
    second_worker_at: float | None = None

    def watch(self, db_path: Path, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                with sqlite3.connect(db_path, timeout=1) as db:
                    rows = db.execute("SELECT shard_id, owner, COALESCE(checkpoint, 0) FROM leases").fetchall()
                    (workers,) = db.execute("SELECT COUNT(*) FROM workers WHERE expires_at >= ?",
                                            (time.time(),)).fetchone()
                now = time.perf_counter()
                self.samples.append((now, {s: (o, int(c)) for s, o, c in rows}))
                if workers >= 2 and self.second_worker_at is None:
                    self.second_worker_at = now
            except sqlite3.OperationalError:
                pass  # busy or not created yet
            stop.wait(0.05)

    def even_at(self) -> float | None:
        """When two distinct owners first held every lease, with counts within one."""
        for t, leases in self.samples:
            counts = Counter(o for o, _ in leases.values())
            if None not in counts and len(counts) == 2 and max(counts.values()) - min(counts.values()) <= 1:
                return t
        return None

    def moves_after(self, since: float) -> int:
        """Ownership changes after ``since`` (while both workers run)."""
        moves, previous = 0, None
        for t, leases in self.samples:
            owners = {s: o for s, (o, _) in leases.items()}
            if previous is not None and t > since:
                moves += sum(1 for s, o in owners.items() if o and previous.get(s) and o != previous[s])
            previous = owners
        return moves

    def records_by_worker(self, stream_db: Path) -> dict[str, int]:
        """Records each worker committed: each sampled checkpoint advance, credited to the owner seen."""
        with sqlite3.connect(stream_db) as db:
            sequences = {}
            for shard, seq in db.execute("SELECT shard_id, sequence_number FROM records ORDER BY sequence_number"):
                sequences.setdefault(shard, []).append(seq)

        done: Counter[str] = Counter()
        last: dict[str, int] = {}
        for _, leases in self.samples:
            for shard, (owner, checkpoint) in leases.items():
                before = last.get(shard, 0)
                if checkpoint > before and owner:
                    seqs = sequences.get(shard, [])
                    done[owner] += bisect.bisect_right(seqs, checkpoint) - bisect.bisect_right(seqs, before)
                last[shard] = max(before, checkpoint)
        return dict(done)


def watch_cpu(pid: int, stop: threading.Event, cpu: dict[int, float]) -> None:
    """CPU seconds (user + system) of a process and its children, last seen per process."""
    import psutil

    root = psutil.Process(pid)
    while not stop.is_set():
        try:
            for process in [root, *root.children(recursive=True)]:
                times = process.cpu_times()
                cpu[process.pid] = times.user + times.system
        except psutil.Error:
            pass  # one ended between the listing and the reading
        stop.wait(0.1)


def consume(stream_home: Path, root: Path, repo: Path, workers: int, model: tuple[bytes, dict]) -> dict[str, object]:
    home = root / f"run-{time.monotonic_ns()}"
    shutil.copytree(stream_home, home)
    publish_for(home, repo, *model)
    log, stop, cpu = LeaseLog(), threading.Event(), {}
    watcher = threading.Thread(target=log.watch, args=(home / "stream.sqlite", stop))
    watcher.start()
    process = _engine(home, "consume", "--workers", str(workers), "--exit-when-idle", str(IDLE_EXIT_SECONDS),
                      repo=repo)
    started = time.perf_counter()
    cpu_watcher = threading.Thread(target=watch_cpu, args=(process.pid, stop, cpu))
    cpu_watcher.start()
    code = process.wait()
    seconds = time.perf_counter() - started
    stop.set()
    watcher.join()
    cpu_watcher.join()
    if code:
        sys.exit(f"consume --workers {workers} exited with {code}")
    # a worker's CPU seconds: what its wall time would be on a core of its own
    worker_cpu = sorted((v for pid, v in cpu.items() if pid != process.pid or workers == 1), reverse=True)
    result: dict[str, object] = {"seconds": round(seconds - IDLE_EXIT_SECONDS, 2),
                                 "load_average": round(os.getloadavg()[0], 1),
                                 "worker_cpu_s": [round(v, 1) for v in worker_cpu[:workers]]}
    by_worker = log.records_by_worker(home / "stream.sqlite")
    if workers == 2:
        second, even = log.second_worker_at, log.even_at()
        total = sum(by_worker.values())
        result.update({
            "second_worker_after_s": None if second is None else round(second - started, 2),
            "even_split_after_second_worker_s": None if even is None or second is None else round(even - second, 2),
            "lease_moves_after_even_split": None if even is None else log.moves_after(even),
            "busier_worker_share": round(max(by_worker.values()) / total, 3) if total else None,
        })
    shutil.rmtree(home)
    return result


def main() -> None:
    parser = alternating_parser(__doc__.splitlines()[0], rounds=2)
    parser.add_argument("--wells", type=int, default=16)
    parser.add_argument("--hours", type=float, default=36.0)
    args = parser.parse_args()
    engines = {"this": REPO} if args.baseline is None else {"baseline": args.baseline.resolve(), "this": REPO}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = dataset(args.data_dir or root, "workers", args.wells, args.hours)
        rows = count_rows(discover([data]))
        payload, manifest = train([f.path for f in discover([data])[:8]])  # a model; its quality is not measured
        stream_home = fresh_home(root, payload, manifest)
        replay = run_timed(stream_home, ["replay", "--data", str(data), "--speed", "0"], REPO)
        if replay.exit_code:
            sys.exit("replay failed")
        runs: dict[str, dict[str, list[dict[str, object]]]] = {e: {"one": [], "two": []} for e in engines}
        for _ in range(args.rounds):
            for label, repo in engines.items():
                runs[label]["one"].append(consume(stream_home, root, repo, 1, (payload, manifest)))
                runs[label]["two"].append(consume(stream_home, root, repo, 2, (payload, manifest)))
    summary = {}
    for label, both in runs.items():
        one = statistics.median(r["seconds"] for r in both["one"])
        two = statistics.median(r["seconds"] for r in both["two"])
        # on two idle cores each worker gets one: the run lasts as long as the busier worker's CPU
        one_cpu = statistics.median(r["worker_cpu_s"][0] for r in both["one"])
        two_cpu = statistics.median(r["worker_cpu_s"][0] for r in both["two"])
        summary[label] = {"one_worker_rows_per_s": round(rows / one), "two_workers_rows_per_s": round(rows / two),
                          "two_vs_one": round(one / two, 2),
                          "two_vs_one_by_cpu": round(one_cpu / two_cpu, 2), "runs": both}
    result = {"machine": machine(),
              "wells": args.wells, "hours": args.hours, "rows": rows, **summary}
    report(result, args.out)


if __name__ == "__main__":
    main()
