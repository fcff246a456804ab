"""The 3W benchmark-2 protocol: its window sampling, its eligibility rule, and a run on real and demo data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml.benchmark_3w import DETECTORS, MIN_NORMAL_ROWS, WINDOW_ROWS, protocol_windows, run_benchmark


def labels(normal: int, transient: int, steady: int, event: int = 2, unlabeled: int = 0) -> np.ndarray:
    return np.concatenate([np.zeros(normal), np.full(unlabeled, -1), np.full(transient, 100 + event),
                           np.full(steady, event)]).astype(np.int64)


def test_a_long_instance_gets_fifteen_normal_windows_nine_for_training_and_a_balanced_test() -> None:
    windows = protocol_windows(labels(3000, 1000, 4000), 2)
    assert len(windows.train) == 9 and windows.truth == [0] * 6 + [1] * 6
    assert windows.periods == ["normal"] * 6 + ["transient"] * 3 + ["steady"] * 3
    normal_starts = windows.train + windows.test[:6]
    assert normal_starts[-1] + WINDOW_ROWS == 3000  # the last normal window ends at the last normal row
    assert np.diff(normal_starts).tolist() == [WINDOW_ROWS] * 14
    assert windows.test[6] == 3000 - (WINDOW_ROWS - 1)  # the first transient window reaches 179 rows back
    assert all(3000 - WINDOW_ROWS < s < 4000 for s in windows.test[6:9])  # three from the transient
    assert all(s >= 4000 - (WINDOW_ROWS - 1) for s in windows.test[9:])  # three from the steady event


def test_short_normal_periods_give_overlapping_windows_and_too_short_ones_are_not_eligible() -> None:
    windows = protocol_windows(labels(MIN_NORMAL_ROWS, 2000, 0), 2)
    starts = windows.train + windows.test[:6]
    assert np.diff(starts).max() < WINDOW_ROWS and min(starts) >= 0
    assert windows.periods.count("transient") == 6  # no steady event: the transient provides all abnormal windows
    assert protocol_windows(labels(MIN_NORMAL_ROWS - 1, 2000, 2000), 2) is None


def test_the_demo_benchmark_runs_both_detectors_on_the_same_windows(demo_dir: Path) -> None:
    result = run_benchmark(demo_dir)
    assert len(result.instances) >= 3
    for instance in result.instances:
        assert set(instance.accuracy) == set(DETECTORS)
        assert instance.test_windows == 2 * (instance.test_windows // 2)  # balanced normal/abnormal
    summary = result.summary()
    assert summary["petrostream"]["mean"] > summary["reference"]["mean"]
    table = result.format_table()
    assert "reference" in table and "PetroStream" in table


@pytest.mark.shared
def test_the_real_sample_has_nine_eligible_dhsv_instances(sample_dir: Path) -> None:
    progress: list[tuple[int, int, str]] = []
    result = run_benchmark(sample_dir, progress=lambda *step: progress.append(step))
    assert len(result.instances) == 9
    assert {i.event_class for i in result.instances} == {2}
    assert all(Path(i.path).name.startswith("WELL-00011") for i in result.instances)
    assert progress[-1][:2] == (progress[-1][1], progress[-1][1])
    assert 0.5 <= result.summary()["reference"]["mean"] <= 0.9
    assert result.to_json()["summary"] == result.summary()
