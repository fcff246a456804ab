"""Alarm diagnosis: the explanation, the likely type and its confidence, the classifier in the artifact,
events diagnosed at their peak across micro-batches, and no mute model from a small real data set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from engine.alarms import AlarmPolicy, close_all, update_alarms
from engine.diagnosis import MIN_PROBABILITY, Diagnoser, Evidence, classifier_inputs, explain
from engine.errors import InputError
from engine.features import FEATURE_KINDS, FEATURE_SENSORS, WellState, decode_states, encode_states
from engine.model import Model, load
from engine.readers import discover
from engine.schema import ANOMALY_EVENTS_SCHEMA, EVENT_TIME_TYPE
from ml.diagnosis_training import UNKNOWN, confusion_report
from ml.evaluate import evaluate
from ml.train_model import TrainingOptions, train

LEVEL_1M, LEVEL_10M, SPREAD = (FEATURE_KINDS.index(k) for k in ("level_1m", "level_10m", "spread_3m"))
P_TPT, T_TPT, QGL = (FEATURE_SENSORS.index(s) for s in ("p_tpt", "t_tpt", "qgl"))


def deviations(**moves: tuple[int, int, float]) -> np.ndarray:
    """One row's deviations (sensors x kinds) with the given (sensor, kind, value) moves, the rest quiet."""
    row = np.zeros((len(FEATURE_SENSORS), len(FEATURE_KINDS)))
    for sensor, kind, value in moves.values():
        row[sensor, kind] = value
    return row


def test_the_explanation_names_the_sensors_that_moved_strongest_first_with_direction_and_size() -> None:
    row = deviations(a=(P_TPT, LEVEL_10M, -4.1), b=(T_TPT, LEVEL_1M, 2.3), c=(QGL, LEVEL_1M, 1.2))
    assert explain(row) == ("P-TPT,T-TPT", "P-TPT ↓ 4.1 typical, T-TPT ↑ 2.3")


def test_a_noisier_sensor_is_explained_by_its_spread_and_a_quiet_row_by_nothing() -> None:
    row = deviations(a=(QGL, SPREAD, np.log(3.0)), b=(P_TPT, LEVEL_1M, 0.5))
    assert explain(row) == ("QGL", "QGL noisier ×3.0 typical")
    assert explain(deviations()) == (None, None)


class _Unsure:
    """A classifier that spreads its belief evenly over three classes."""

    classes_ = np.array([1, 2, 6])

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        return np.full((len(rows), 3), 1 / 3)


def test_a_low_confidence_type_is_unknown_but_keeps_its_probability_and_explanation() -> None:
    found = Diagnoser(_Unsure()).diagnose(deviations(a=(P_TPT, LEVEL_1M, -5.0)))
    assert MIN_PROBABILITY > 1 / 3
    assert found.likely_class is None and found.probability == pytest.approx(1 / 3, abs=1e-4)
    assert found.top_sensors == "P-TPT"


def scored(flags: list[int], scores: list[float]) -> pa.Table:
    n = len(flags)
    return pa.table({
        "well_id": pa.array(["W"] * n),
        "event_time": pa.array(np.arange(n) * 1000, pa.int64()).cast(EVENT_TIME_TYPE),
        "anomaly_score": pa.array(scores, pa.float64()),
        "anomaly_flag": pa.array(flags, pa.int8()),
        "class": pa.array([0] * n, pa.int16()),
        "model_version": pa.array(["v1"] * n),
    })


def test_an_event_is_diagnosed_at_its_peak_when_it_opens_and_again_at_a_higher_peak_in_a_later_batch() -> None:
    policy = AlarmPolicy(window_rows=10, min_flags=5, min_gap_seconds=30)
    first = np.stack([deviations(a=(P_TPT, LEVEL_1M, -3.0 - k / 10)) for k in range(20)])
    later = np.stack([deviations(a=(T_TPT, LEVEL_1M, 6.0)) for _ in range(20)])
    states = {"W": WellState()}
    (opened,) = update_alarms(scored([1] * 20, list(np.linspace(0.6, 0.7, 20))), states, policy,
                              Evidence(first, Diagnoser(None))).to_pylist()
    assert opened["state"] == "active" and opened["explanation"] == "P-TPT ↓ 4.9 typical"  # lands diagnosed
    assert states["W"].alarm.open.top_sensors == "P-TPT"
    assert states["W"].alarm.open.explanation == "P-TPT ↓ 4.9 typical"  # the peak is the last, strongest row
    states = decode_states(encode_states(states))  # the diagnosis survives the checkpoint
    assert states["W"].alarm.open.explanation == "P-TPT ↓ 4.9 typical"
    piece = scored([1] * 20, [0.9] * 20)
    piece = piece.set_column(1, "event_time", pa.array((20 + np.arange(20)) * 1000, pa.int64()).cast(EVENT_TIME_TYPE))
    update_alarms(piece, states, policy, Evidence(later, Diagnoser(None)))
    event = close_all(states).to_pylist()[0]
    assert event["top_sensors"] == "T-TPT" and event["explanation"] == "T-TPT ↑ 6.0 typical"
    assert event["likely_class"] is None  # no classifier given: no type, but still an explanation
    assert set(ANOMALY_EVENTS_SCHEMA.names) >= {"likely_class", "likely_class_probability", "top_sensors",
                                                "explanation"}


@pytest.fixture(scope="module")
def demo_model(demo_dir: Path) -> Model:
    return load(*train([demo_dir]), "demo model")


def test_the_classifier_lives_in_the_artifact_and_the_manifest_states_its_validation_and_the_prior(
        demo_model: Model) -> None:
    manifest = demo_model.manifest
    assert demo_model.classifier is not None
    diagnosis = manifest["diagnosis"]
    assert diagnosis["classifier"]["classes"] == [1, 2, 3, 4, 5, 6, 7, 8]  # the synthetic fleet's event types
    validation = diagnosis["cross_validation"]
    matrix = np.array(validation["matrix"])
    assert matrix.shape == (len(validation["labels"]),) * 2 and matrix.sum() == sum(diagnosis["rows_by_class"].values())
    assert validation["accuracy"] > 1 / len(diagnosis["rows_by_class"])  # better than guessing
    # 9 h of demo data is less than a threshold needs: the prior joined the baseline, and says why
    assert "settled normal" in manifest["prior"]["reason"] and manifest["prior"]["seed"] is not None
    assert manifest["checks"]["labeled_events"] > 0
    assert manifest["checks"]["expected_alarms_per_normal_hour"] <= manifest["false_alarms_per_hour_budget"] + 1e-9


def test_the_classifier_from_the_artifacts_arrays_gives_scikit_learns_probabilities_bit_for_bit(
        demo_model: Model) -> None:
    inputs = classifier_inputs(np.random.default_rng(0).normal(0, 3, (200, len(FEATURE_SENSORS), len(FEATURE_KINDS))))
    inputs[7, 3] = np.nan
    fitted = demo_model.fitted_classifier
    assert demo_model.classifier.predict_proba(inputs).tobytes() == fitted.predict_proba(inputs).tobytes()
    assert demo_model.classifier.classes_.tolist() == fitted.classes_.tolist()


def test_evaluation_names_the_likely_type_of_alarmed_events_and_counts_flagged_rows_apart(
        demo_model: Model, demo_dir: Path) -> None:
    report = evaluate(demo_model, [demo_dir])
    summary = report.summary_metrics
    assert summary["rows_detected"] >= summary["detected"]
    diagnosis = summary["diagnosis"]
    assert diagnosis["alarmed_events"] == sum(i.detected for i in report.instances)
    assert np.array(diagnosis["matrix"]).sum() == diagnosis["alarmed_events"]
    alarmed = [i for i in report.instances if i.detected]
    assert all(i.top_sensors for i in alarmed)
    named = [i for i in alarmed if i.likely_class is not None]
    assert named and all(i.likely_class_probability >= demo_model.diagnoser.min_probability for i in named)
    assert "diagnosis of alarmed events" in report.summary()


def test_without_the_prior_too_little_normal_data_is_refused_in_one_line(demo_dir: Path) -> None:
    with pytest.raises(InputError, match=r"settled normal .* needs at least 24 h") as caught:
        train([demo_dir], TrainingOptions(synthetic_prior=False))
    assert "\n" not in str(caught.value)


@pytest.mark.shared
def test_a_model_trained_on_a_small_real_data_set_alone_alarms_on_a_well_it_never_saw(sample_dir: Path) -> None:
    files = discover([sample_dir])
    unseen = [f.path for f in files if f.well_id == "WELL-00011"]
    payload, manifest = train([f.path for f in files if f.well_id != "WELL-00011"])
    assert manifest["prior"]["reason"]  # a few hours of real normal rows: the prior joined
    report = evaluate(load(payload, manifest, "small"), unseen)
    summary = report.summary_metrics
    assert summary["events"] == 13 and summary["detected_share"] >= 0.9
    assert summary["delay_median_s"] <= 120


def test_an_alarm_still_open_when_the_data_ends_counts_as_detected(demo_model: Model, demo_dir: Path,
                                                                   tmp_path: Path) -> None:
    source = next(f for f in discover([demo_dir]) if f.event_class == 2)
    frame = pd.read_parquet(source.path)
    onset = int(np.argmax(frame["class"].to_numpy(dtype=float, na_value=-1) == 102))
    cut = tmp_path / "2" / source.path.name
    cut.parent.mkdir()
    frame.iloc[:onset + 300].to_parquet(cut, engine="pyarrow", compression="brotli")  # ends 5 min into the event
    report = evaluate(demo_model, [cut])
    (instance,) = report.instances
    assert instance.detected and instance.delay_seconds <= 300
    assert [e["state"] for e in report.events if not e["false_alarm"]] == ["active"]  # counted while still active


def test_the_confusion_report_counts_unknown_apart_and_gives_precision_and_recall_per_class() -> None:
    truth = np.array([2, 2, 2, 2, 6, 6, 3])
    said = np.array([2, 2, UNKNOWN, 6, 6, 6, 2])
    report = confusion_report(truth, said)
    assert report["labels"] == [UNKNOWN, 2, 3, 6]
    assert report["matrix"] == [[0, 0, 0, 0], [1, 2, 0, 1], [0, 1, 0, 0], [0, 0, 0, 2]]
    assert report["per_class"]["2"] == {"support": 4, "precision": round(2 / 3, 4), "recall": 0.5}
    assert report["per_class"]["6"] == {"support": 2, "precision": round(2 / 3, 4), "recall": 1.0}
    assert report["per_class"]["3"]["recall"] == 0.0 and report["accuracy"] == round(4 / 7, 4)
