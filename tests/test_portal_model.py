"""The Model page acts: training makes a candidate, Publish makes a version, Activate and Roll back
move the active one, Evaluate reports detection, and bad data choices are messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.backend import Backend
from tests.portal_homes import open_home, open_page, with_demo_data

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Backend:
    """A home with demo data and no model."""
    monkeypatch.setenv("PETROSTREAM_BACKEND", "local")
    monkeypatch.setenv("PETROSTREAM_HOME", str(tmp_path))
    with_demo_data(tmp_path)
    return open_home(tmp_path)


def train_and_publish(at: AppTest, seed: int) -> AppTest:
    at.number_input(key="train-seed").set_value(seed)
    at.number_input(key="train-trees").set_value(20)
    at.button(key="model-train").click().run(timeout=180)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(m.value.startswith("**Candidate**") for m in at.markdown)
    at.button(key="model-publish").click().run()
    assert not at.exception and not at.error
    return at


def test_train_publish_activate_and_roll_back(home: Backend) -> None:
    at = open_page("model")
    assert home.models.versions() == []

    train_and_publish(at, seed=1)
    (first,) = [v.version for v in home.models.versions()]
    assert home.models.active_version() == first
    assert any(f"Published {first}" in s.value for s in at.success)
    assert list(at.dataframe[0].value["version"]) == [first]
    (confusion,) = [d.value for d in at.dataframe if "recall" in d.value.columns]  # the alarm classifier's
    assert "2 spurious closure of DHSV" in confusion.index and "unknown" in confusion.columns
    assert any("synthetic fleet" in w.value for w in at.warning)  # 9 h of demo data: the prior joined
    assert not any(m.value.startswith("**Candidate**") for m in at.markdown)  # published: no longer a candidate

    train_and_publish(at, seed=2)
    second = next(v.version for v in home.models.versions() if v.version != first)
    assert home.models.active_version() == second

    at.selectbox(key="model-pick").set_value(first)
    at.button(key="model-activate").click().run()
    assert home.models.active_version() == first
    assert any(f"{first} is active" in s.value for s in at.success)
    assert at.dataframe[0].value.set_index("version").loc[first, "active"] == "✓"

    at.button(key="model-rollback").click().run()
    assert home.models.active_version() == second
    assert any(f"Rolled back to {second}" in s.value for s in at.success)


def test_publishing_can_leave_the_active_version_alone(home: Backend) -> None:
    at = open_page("model")
    train_and_publish(at, seed=1)
    active = home.models.active_version()
    at.number_input(key="train-seed").set_value(3)
    at.button(key="model-train").click().run(timeout=180)
    at.checkbox(key="publish-activate").uncheck()
    at.button(key="model-publish").click().run()
    assert len(home.models.versions()) == 2 and home.models.active_version() == active


def test_evaluation_of_a_published_version(home: Backend) -> None:
    at = open_page("model")
    train_and_publish(at, seed=1)
    version = home.models.active_version()
    at.selectbox(key="evaluate-subject").set_value(version)
    at.button(key="model-evaluate").click().run(timeout=180)
    assert not at.exception and not at.error, [e.value for e in at.error]
    labels = [m.label for m in at.metric]
    assert {"Transient events alarmed", "False alarms per hour", "ROC-AUC / PR-AUC"} <= set(labels)
    assert any(f"Evaluation of {version}" in c.value for c in at.caption)
    assert len(at.get("plotly_chart")) >= 2  # detection per class, delays (and ROC/PR when both labels occur)
    assert any(c.value.startswith("Likely type of the first alarm") for c in at.caption)  # diagnosis vs labels


@pytest.mark.parametrize(("folder", "message"), [
    ("relative/path", "absolute path"), ("/no/such/folder", "outside the data folders"), ("/", "outside the data")])
def test_a_bad_folder_is_a_message(home: Backend, folder: str, message: str) -> None:
    at = open_page("model")
    at.radio(key="train-source").set_value("A folder of 3W files").run()
    at.text_input(key="train-folder").input(folder).run()
    assert not at.exception
    assert any(message in e.value for e in at.error)
    assert at.button(key="model-train").disabled


def test_a_real_3w_folder_can_be_chosen(home: Backend, sample_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PETROSTREAM_DATA_ROOTS", str(sample_dir.parent))
    at = open_page("model")
    at.radio(key="train-source").set_value("A folder of 3W files").run()
    at.text_input(key="train-folder").input(str(sample_dir)).run()
    assert not at.exception and not at.error
    assert any("file(s) of" in c.value for c in at.caption)
    assert not at.button(key="model-train").disabled


def test_an_uploaded_signed_model_is_published_and_a_malicious_one_refused_before_loading(
        home: Backend, tmp_path: Path) -> None:
    from engine.model import MANIFEST_SUFFIX
    from tests.test_model_signing import genuine, malicious, with_sha

    payload, manifest = genuine()
    at = open_page("model")
    at.file_uploader(key="model-upload").set_value([
        ("model.joblib", payload, "application/octet-stream"),
        (f"model.joblib{MANIFEST_SUFFIX}", json.dumps(manifest).encode(), "application/json")]).run()
    at.button(key="model-upload-publish").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    version = home.models.active_version()
    assert version is not None and any(f"Published model.joblib as {version}" in m.value for m in at.success)

    marker = tmp_path / "pwned"
    evil = malicious(marker)
    at.file_uploader(key="model-upload").set_value([
        ("evil.joblib", evil, "application/octet-stream"),
        (f"evil.joblib{MANIFEST_SUFFIX}", json.dumps(with_sha(evil, manifest)).encode(), "application/json")]).run()
    at.button(key="model-upload-publish").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith(
        "Publishing the uploaded model: evil.joblib: model signature does not verify with file:")
    assert errors[0].endswith("; refusing a tampered model or one signed by another key")
    assert not marker.exists() and home.models.active_version() == version


def test_a_corrupt_store_pointer_is_shown_and_repaired_from_the_page(home: Backend) -> None:
    from tests.test_model_signing import genuine

    version = home.models.publish(*genuine())
    (home.settings.home / "models" / "ACTIVE.json").write_text("{not json")
    at = open_page("model")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.selectbox(key="model-pick").value == version
    at.button(key="model-activate").click().run()
    assert not at.exception and home.models.active_version() == version
