"""``python -m engine COMMAND``: the command line other tools and checks rely on.

Each command is a small function over the engine's API. Errors the engine raises on purpose
become one line on stderr and exit code 2; anything else exits 1 with a one-line message
(``PETROSTREAM_DEBUG=1`` adds the traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from engine.backend import Backend, open_backend, settings_from_env
from engine.errors import InputError, PetroStreamError
from engine.worker_environment import worker_environment

Handler = Callable[[argparse.Namespace], int]


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


class _ProgressLine:
    """One self-overwriting status line on a terminal; sparse plain lines in logs."""

    def __init__(self, every_seconds: float = 1.0) -> None:
        self._clock = time.monotonic
        self._tty = sys.stderr.isatty()
        self._every = every_seconds if self._tty else 10 * every_seconds
        self._next = 0.0

    def show(self, text: str, final: bool = False) -> None:
        if not final and self._clock() < self._next:
            return
        self._next = self._clock() + self._every
        if self._tty:
            print(f"\r\033[K{text}", end="\n" if final else "", file=sys.stderr, flush=True)
        else:
            print(text, file=sys.stderr, flush=True)


def _stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM, so long commands finish their step and exit cleanly."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        print(f"\n{signal.Signals(signum).name}: finishing the current step…", file=sys.stderr)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


# -- commands ---------------------------------------------------------------------------
def cmd_demo_data(args: argparse.Namespace) -> int:
    from engine.demo_data import generate

    out = Path(args.out)
    if out.is_dir() and any(out.rglob("*.parquet")):
        raise InputError(f"{out}: already holds instance files; pick an empty folder so runs do not mix")
    line = _ProgressLine()
    files = generate(out, wells=args.wells, hours=args.hours, seed=args.seed,
                     progress=lambda done, total: line.show(f"demo data: {done}/{total} files"))
    line.show(f"demo data: {len(files)} files", final=True)
    print(f"wrote {len(files)} instance files for {args.wells} wells under {args.out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from engine import model as model_artifact
    from ml.train_model import TrainingOptions, train

    line = _ProgressLine()
    options = TrainingOptions(false_alarm_rate=args.false_alarm_rate, prior_cache=settings_from_env().cache)
    payload, manifest = train(args.data, options,
                              progress=lambda done, total, what: line.show(f"training: {what} ({done}/{total})"))
    line.show("training done", final=True)
    rows = manifest["training"]["normal_rows_used"]
    checks, prior = manifest["checks"], manifest["prior"]
    if prior and prior.get("reason"):
        print(f"note: mixed in the built-in synthetic fleet as normal baseline: {prior['reason']}")
    print(f"expected alarms per normal hour: {checks['expected_alarms_per_normal_hour']:.2f}; labeled events in "
          f"the data that alarm: {checks['labeled_events_alarmed']} of {checks['labeled_events']}")
    if args.model_out:
        model_artifact.save_file(Path(args.model_out), payload, manifest)
        print(f"wrote {args.model_out} (+ manifest) trained on {rows:,} normal rows, "
              f"threshold {manifest['threshold']:.4f}")
    else:
        version = _backend().models.publish(payload, manifest)
        print(f"published and activated model {version} trained on {rows:,} normal rows")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from engine.batch_scoring import score_file

    rows = score_file(Path(args.model), Path(args.input), Path(args.output))
    print(f"scored {rows:,} rows of {args.input} into {args.output}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from engine.model import load_file
    from ml.evaluate import evaluate

    report = evaluate(load_file(args.model), [Path(p) for p in args.data])
    print(report.summary())
    if args.report:
        report.write(Path(args.report))
        print(f"report written to {args.report}")
    return 0


def cmd_benchmark_3w(args: argparse.Namespace) -> int:
    from ml.benchmark_3w import run_benchmark

    line = _ProgressLine()
    result = run_benchmark(Path(args.data), progress=lambda done, total, name: line.show(
        f"benchmark: {done}/{total} {name}"))
    line.show("benchmark done", final=True)
    print(result.format_table())
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from engine.producer import Producer, ReplayOptions
    from engine.readers import discover
    from engine.replay_log import AT_LIMIT, STOPPED, ReplayProgress

    files = discover(args.data)
    if not files:
        raise InputError(f"no 3W files (.parquet, .csv) under {', '.join(args.data)}")
    line = _ProgressLine()

    def show(progress: ReplayProgress) -> None:
        share = progress.sent_rows / progress.total_rows if progress.total_rows else 1.0
        line.show(f"replay: {progress.sent_rows:,}/{progress.total_rows:,} rows ({share:.0%}) "
                  f"at {progress.rate:,.0f} rows/s")

    producer = Producer(_backend(), files, ReplayOptions(speed=args.speed, max_rows=args.max_rows,
                                                         from_start=args.from_start), on_progress=show)
    result = producer.run(_stop_on_signals())
    line.show(f"replay {result.status}: {result.sent_rows:,}/{result.total_rows:,} rows", final=True)
    if result.status in (STOPPED, AT_LIMIT):
        print("run the same command again to resume where it stopped")
    return 0


def cmd_consume(args: argparse.Namespace) -> int:
    if args.workers > 1:
        return _run_worker_processes(args)
    from engine.consumer import Consumer, ConsumerOptions
    from engine.health import HealthSettings, serve_health

    backend = _backend()
    consumer = Consumer(backend, ConsumerOptions(idle_exit_seconds=args.exit_when_idle,
                                                 batch_seconds=backend.settings.batch_seconds,
                                                 poll_seconds=backend.idle_poll_seconds,
                                                 housekeeping_every_seconds=backend.housekeeping_seconds))
    health = HealthSettings.from_env()
    if health is not None:
        serve_health(health, consumer)
    stats = consumer.run(_stop_on_signals())
    print(f"consumer {consumer.worker_id}: {stats.rows_landed:,} rows landed in {stats.batches:,} batches, "
          f"{stats.duplicates_dropped:,} duplicates dropped, {stats.dead_letters:,} dead letters")
    return 0


def _run_worker_processes(args: argparse.Namespace) -> int:
    """Start N single-worker processes that split the shards through leases; wait for them all."""
    command = [sys.executable, "-m", "engine", "consume", "--workers", "1"]
    if args.exit_when_idle is not None:
        command += ["--exit-when-idle", str(args.exit_when_idle)]
    environment = worker_environment(os.environ, args.workers, os.cpu_count())
    children = [subprocess.Popen(command, env=environment) for _ in range(args.workers)]
    stop = _stop_on_signals()
    threading.Thread(target=lambda: (stop.wait(), [c.terminate() for c in children]), daemon=True).start()
    codes = [child.wait() for child in children]
    return max(codes)


def cmd_query(args: argparse.Namespace) -> int:
    frame = _backend().sql.query(args.sql)
    if args.format == "json":
        print(frame.to_json(orient="records", date_format="iso"))
    else:
        print(frame.to_csv(index=False), end="")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from engine.status import format_status, pipeline_status

    status = pipeline_status(_backend())
    print(json.dumps(status.to_dict(), indent=2, default=str) if args.json else format_status(status))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    store = _backend().models
    if args.action == "publish":
        from engine.model import read_file

        if not args.version:
            raise InputError("models publish needs a model FILE (written by `train --model-out FILE`)")
        print(f"published and activated {store.publish(*read_file(args.version), source=args.version)}")
    elif args.action == "activate":
        if not args.version:
            raise InputError("models activate needs a VERSION (see `python -m engine models list`)")
        store.activate(args.version)
        print(f"activated {args.version}")
    elif args.action == "rollback":
        print(f"rolled back to {store.rollback()}")
    else:
        for version in store.versions():
            detail = (f"UNUSABLE: {version.problem}" if version.problem else
                      f"published {version.published_at}  threshold {version.threshold:.4f}")
            print(f"{'*' if version.active else ' '} {version.version}  {detail}")
    return 0


def cmd_bi_views(args: argparse.Namespace) -> int:
    from engine.bi import create_views

    print(f"Athena views for Power BI: {', '.join(create_views(_backend()))} (created or replaced)")
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from engine.quickstart import quickstart

    quickstart(_backend(), Path(args.demo_dir) if args.demo_dir else None)
    return 0


def _backend() -> Backend:
    return open_backend()


# -- parser -------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="PetroStream engine")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    demo = command("demo-data", cmd_demo_data, "write synthetic 3W 2.0 instances")
    demo.add_argument("--out", required=True, help="folder to write class folders into")
    demo.add_argument("--wells", type=_positive_int, default=6)
    demo.add_argument("--hours", type=float, default=8.0, help="hours of data per well")
    demo.add_argument("--seed", type=int, default=7)

    train = command("train", cmd_train, "train the Isolation Forest on normal rows")
    train.add_argument("--data", nargs="+", required=True, help="3W files or folders")
    train.add_argument("--model-out", help="write the artifact here instead of publishing it")
    train.add_argument("--false-alarm-rate", type=float, default=0.005,
                       help="share of normal rows allowed above the threshold")

    score = command("score", cmd_score, "batch-score one instance file")
    score.add_argument("--model", required=True)
    score.add_argument("--input", required=True)
    score.add_argument("--output", required=True)

    evaluate = command("evaluate", cmd_evaluate, "detection metrics against the labels")
    evaluate.add_argument("--model", required=True)
    evaluate.add_argument("--data", nargs="+", required=True)
    evaluate.add_argument("--report", help="write the report (JSON) here")

    bench = command("benchmark-3w", cmd_benchmark_3w, "3W benchmark-2 protocol: reference vs ours")
    bench.add_argument("--data", required=True)

    replay = command("replay", cmd_replay, "replay files into the stream (resumable)")
    replay.add_argument("--data", nargs="+", required=True)
    replay.add_argument("--speed", type=_non_negative_float, default=1.0,
                        help="times real time; 0 = as fast as possible")
    replay.add_argument("--max-rows", type=_positive_int, help="stop after sending this many rows")
    replay.add_argument("--from-start", action="store_true",
                        help="forget where an earlier replay of the same files stopped and send them from their first "
                             "row (consumers drop rows the lake already holds)")

    consume = command("consume", cmd_consume, "consume the stream into the lake")
    consume.add_argument("--workers", type=_positive_int, default=1)
    consume.add_argument("--exit-when-idle", type=_non_negative_float, metavar="SECONDS",
                         help="exit once no record arrived for this long")

    query = command("query", cmd_query, "run SQL (Athena/Trino dialect)")
    query.add_argument("sql")
    query.add_argument("--format", choices=("csv", "json"), default="csv")

    status = command("status", cmd_status, "pipeline health")
    status.add_argument("--json", action="store_true")

    models = command("models", cmd_models, "list, publish, activate or roll back model versions")
    models.add_argument("action", choices=("list", "publish", "activate", "rollback"), nargs="?", default="list")
    models.add_argument("version", nargs="?", metavar="VERSION|FILE",
                        help="the version to activate, or the model file to publish")

    command("bi-views", cmd_bi_views, "create or replace the Power BI views in Athena (aws)")

    quick = command("quickstart", cmd_quickstart, "demo data, model and a first replay, all local")
    quick.add_argument("--demo-dir", help="where demo data lives (default: under PETROSTREAM_HOME)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    args = build_parser().parse_args(argv)
    try:
        settings_from_env()  # a bad setting stops every command here, before it does anything
        return args.handler(args)
    except PetroStreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("PETROSTREAM_DEBUG"):
            traceback.print_exc()
        print(f"error: unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
              "(set PETROSTREAM_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
