"""Training: settled normal rows only, a threshold within both false-alarm budgets, a complete manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.alarms import AlarmPolicy
from engine.errors import InputError
from engine.features import FEATURE_NAMES
from engine.model import load
from ml.train_model import RECOVERY_SECONDS, TrainingOptions, calibrate, recovering, train, well_features


@pytest.fixture(scope="module")
def trained(demo_dir: Path) -> tuple[bytes, dict[str, object]]:
    return train([demo_dir])


def test_the_manifest_states_threshold_budgets_policy_and_training_data(trained: tuple[bytes, dict]) -> None:
    payload, manifest = trained
    model = load(payload, manifest, "trained")
    assert manifest["features"] == list(FEATURE_NAMES)
    assert manifest["threshold"] == model.threshold
    assert manifest["false_alarm_rate"] == TrainingOptions().false_alarm_rate
    assert manifest["false_alarms_per_hour_budget"] == TrainingOptions().false_alarms_per_hour
    assert AlarmPolicy.from_manifest(manifest) == TrainingOptions().alarm_policy
    calibration = manifest["calibration"]
    assert calibration["flagged_row_share"] <= manifest["false_alarm_rate"]
    assert calibration["alarm_events"] <= max(1.0, manifest["false_alarms_per_hour_budget"]
                                              * calibration["normal_hours"])
    rows = manifest["training"]["rows_by_well_and_class"]
    assert set(rows) == {"WELL-00001", "WELL-00002", "WELL-00003"}
    assert all("0" in by_class for by_class in rows.values())
    own_normal_rows = manifest["training"]["normal_rows_used"] - manifest["training"]["prior_normal_rows"]
    assert 0 < own_normal_rows < sum(c["0"] for c in rows.values())  # warm-up, recovery out


def test_only_settled_normal_rows_are_learned(demo_dir: Path) -> None:
    for well in well_features([demo_dir]):
        settled = well.settled_normal()
        assert not settled[well.labels != 0].any()
        event_rows = np.flatnonzero(well.labels > 0)
        if event_rows.size:  # the hour after the last event row is still recovery
            after = (well.times > well.times[event_rows[-1]]) & (
                well.times <= well.times[event_rows[-1]] + RECOVERY_SECONDS * 1000)
            assert not settled[after].any()


def test_recovering_marks_the_hour_after_each_event_row() -> None:
    times = np.arange(0, 4 * 3600, 600) * 1000
    labels = np.zeros(len(times), dtype=np.int64)
    labels[3] = 5
    expected = (times >= times[3]) & (times <= times[3] + RECOVERY_SECONDS * 1000)
    assert np.array_equal(recovering(times, labels), expected)


def test_calibration_raises_the_threshold_until_the_event_budget_holds() -> None:
    rng = np.random.default_rng(0)
    hours = 20
    scores = rng.normal(0.4, 0.02, hours * 3600)
    for hour in range(0, hours, 2):  # ten bursts of high scores: ten alarms if the threshold is below them
        scores[hour * 3600: hour * 3600 + 30] = 0.6 + 0.001 * hour
    times = np.arange(len(scores)) * 1000
    stretches = np.zeros(len(scores), dtype=np.int64)
    strict = calibrate(scores, times, stretches, TrainingOptions(false_alarms_per_hour=0.1))
    loose = calibrate(scores, times, stretches, TrainingOptions(false_alarms_per_hour=1.0))
    assert loose.threshold < 0.6 and loose.events == 10  # ten alarms in twenty hours fit 1 per hour
    assert strict.events <= 2 and strict.threshold > loose.threshold
    assert strict.row_rate <= TrainingOptions().false_alarm_rate


def test_with_a_prior_the_event_budget_also_holds_on_the_users_own_rows() -> None:
    rng = np.random.default_rng(1)
    own_hours, prior_hours = 4, 40
    scores = rng.normal(0.4, 0.02, (own_hours + prior_hours) * 3600)
    for hour in range(own_hours):  # the user's well: an alarm-sized burst every hour; the prior's wells: quiet
        scores[hour * 3600: hour * 3600 + 30] = 0.6
    times = np.arange(len(scores)) * 1000
    stretches = (np.arange(len(scores)) >= own_hours * 3600).astype(np.int64)
    pooled = calibrate(scores, times, stretches, TrainingOptions())
    own = calibrate(scores, times, stretches, TrainingOptions(), own_rows=own_hours * 3600)
    assert pooled.threshold < 0.6 and pooled.events == 4  # 4 alarms fit 0.25 per hour over 44 h
    assert own.threshold >= 0.6  # but 4 in the user's 4 h break its budget of one


def test_too_little_normal_data_is_refused(tmp_path: Path, sample_dir: Path) -> None:
    with pytest.raises(InputError, match="settled normal"):
        train([sample_dir / "3"], TrainingOptions(synthetic_prior=False))  # severe slugging only: no normal row
