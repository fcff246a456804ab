"""Leave-wells-out evaluation: train on some wells, evaluate on wells the model never saw.

An operator adds wells the model was not trained on, so that is what the numbers must
describe. Wells are dealt round-robin into folds; each fold's model is trained (with the
production training code and options) on the other wells' files and evaluated on the
fold's wells through the streaming path of :mod:`ml.evaluate`; the folds' results pool into
one report (scores compare through their margins over each fold's threshold).

Run: ``python -m ml.cross_validation --data DIR [DIR...] [--folds K] [--also-train DIR...] [--report FILE]``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from engine import model as model_artifact
from engine.errors import InputError, PetroStreamError
from engine.readers import discover
from ml.evaluate import EvaluationReport, stream_wells
from ml.train_model import TrainingOptions, files_by_well, train

Progress = Callable[[int, int, str], None]


def leave_wells_out(data: Sequence[Path], folds: int | None = None, options: TrainingOptions | None = None,
                    progress: Progress | None = None, also_train: Sequence[Path] = ()) -> EvaluationReport:
    """Pooled evaluation of ``folds`` models (default: one per well), each tested on wells it never saw.

    ``also_train`` adds files every fold trains on and none is tested on (another fleet's
    history, say); a file found there and in ``data`` is refused, since a fold would see it.
    """
    options = options or TrainingOptions()
    by_well = files_by_well(discover(data))
    if len(by_well) < 2:
        raise InputError(f"leave-wells-out needs at least 2 wells, found {len(by_well)} under "
                         f"{', '.join(map(str, data))}")
    extra = [f.path for f in discover(also_train)] if also_train else []
    tested = {f.path.resolve() for group in by_well.values() for f in group}
    shared = sorted(str(p) for p in extra if p.resolve() in tested)
    if shared:
        raise InputError(f"{shared[0]}: in both --data and --also-train; a fold would train on its test data")
    wells = sorted(by_well)
    count = min(folds or len(wells), len(wells))
    groups = [wells[k::count] for k in range(count)]
    parts, fold_notes = [], []
    for k, test_wells in enumerate(groups):
        train_files = [f.path for w in wells if w not in test_wells for f in by_well[w]] + extra
        try:
            payload, manifest = train(train_files, options)
        except InputError as exc:  # the other wells hold too little normal data for a model
            fold_notes.append({"test_wells": test_wells, "skipped": str(exc)})
            continue
        model = model_artifact.load(payload, manifest, f"fold {k + 1}")
        parts.append(stream_wells(model, [f for w in test_wells for f in by_well[w]]))
        fold_notes.append({"test_wells": test_wells, "threshold": model.threshold,
                           "training_normal_rows": manifest["training"]["normal_rows_used"]})
        if progress:
            progress(k + 1, count, ", ".join(test_wells))
    meta = {"protocol": "leave-wells-out", "data": [str(p) for p in data], "folds": fold_notes,
            "also_train": [str(p) for p in also_train],
            "options": {"false_alarm_rate": options.false_alarm_rate,
                        "false_alarms_per_hour": options.false_alarms_per_hour}}
    return EvaluationReport.build(parts, meta)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.cross_validation", description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", required=True, help="3W files or folders")
    parser.add_argument("--folds", type=int, help="number of folds (default: one per well)")
    parser.add_argument("--also-train", nargs="+", default=[], help="files or folders every fold also trains on")
    parser.add_argument("--report", help="write the pooled report (JSON + HTML) here")
    args = parser.parse_args(argv)
    try:
        report = leave_wells_out([Path(p) for p in args.data], args.folds,
                                 progress=lambda done, total, name: print(f"fold {done}/{total}: {name}",
                                                                          file=sys.stderr),
                                 also_train=[Path(p) for p in args.also_train])
    except PetroStreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    if args.report:
        report.write(Path(args.report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
