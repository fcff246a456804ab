"""Streaming evaluation and leave-wells-out: the real scoring path, alarms, per-class metrics, reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import InputError
from engine.model import Model, load
from ml.cross_validation import leave_wells_out
from ml.evaluate import evaluate
from ml.train_model import train


@pytest.fixture(scope="module")
def demo_model(demo_dir: Path) -> Model:
    return load(*train([demo_dir]), "demo model")


def test_leave_wells_out_on_demo_data_catches_the_transients_without_paging_all_day(demo_dir: Path,
                                                                                    tmp_path: Path) -> None:
    report = leave_wells_out([demo_dir], folds=3)
    summary = report.summary_metrics
    assert [f["test_wells"] for f in report.meta["folds"]] == [["WELL-00001"], ["WELL-00002"], ["WELL-00003"]]
    assert summary["events"] >= 3 and summary["detected_share"] >= 0.66
    assert summary["false_alarms_per_hour"] <= 1.0
    assert summary["roc_auc"] > 0.8
    text = report.summary()
    assert "false alarms" in text and "delay after onset" in text
    report.write(tmp_path / "cv.json")
    saved = json.loads((tmp_path / "cv.json").read_text())
    assert {"summary", "classes", "instances", "events", "curves"} <= set(saved)
    assert "plotly" in (tmp_path / "cv.html").read_text()


@pytest.mark.shared
def test_a_model_trained_on_demo_data_alarms_on_the_real_dhsv_closures(demo_model: Model, sample_dir: Path) -> None:
    report = evaluate(demo_model, [sample_dir])
    by_class = {row["class"]: row for row in report.classes}
    assert by_class[2]["events"] == 14 and by_class[6]["events"] == 2
    summary = report.summary_metrics
    assert summary["events"] == 16 and summary["detected_share"] >= 0.9
    assert summary["delay_median_s"] <= 300
    assert summary["false_alarms"] <= 2 and summary["normal_hours"] > 8


def test_extra_training_data_may_not_contain_the_tested_files(demo_dir: Path) -> None:
    with pytest.raises(InputError, match="in both --data and --also-train"):
        leave_wells_out([demo_dir], folds=3, also_train=[demo_dir / "0"])
