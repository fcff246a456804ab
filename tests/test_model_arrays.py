"""The model artifact's tree arrays: a consumer scores without scikit-learn, old artifacts still load,
tampered or inconsistent arrays are refused.

Bit-identity with scikit-learn on a trained model is checked where the rest of the scoring is
(``test_bit_identical_paths.py`` for the forest, ``test_ml_diagnosis.py`` for the classifier);
here the same is checked on small fitted estimators, with missing values.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesClassifier, IsolationForest

from engine import model_signing
from engine.backend import open_backend
from engine.config import Settings
from engine.diagnosis import classifier_inputs
from engine.errors import ModelError
from engine.features import FEATURE_KINDS, FEATURE_NAMES, FEATURE_SENSORS
from engine.lake import COMPACTED_PREFIX
from engine.model import ARRAYS_FORMAT, dump, load, pickle_only
from engine.producer import Producer, ReplayOptions
from engine.readers import discover
from engine.stream import OutgoingRecord

REPO = Path(__file__).resolve().parents[1]
CLASSIFIER_WIDTH = classifier_inputs(np.zeros((1, len(FEATURE_SENSORS), len(FEATURE_KINDS)))).shape[1]


def fitted() -> tuple[IsolationForest, ExtraTreesClassifier]:
    rng = np.random.default_rng(3)
    forest = IsolationForest(n_estimators=12, random_state=0).fit(rng.normal(size=(300, len(FEATURE_NAMES))))
    inputs = rng.normal(size=(400, CLASSIFIER_WIDTH)).astype(np.float32)
    inputs[rng.random(inputs.shape) < 0.05] = np.nan  # the classifier learns where missing values go
    classifier = ExtraTreesClassifier(n_estimators=7, min_samples_leaf=3, random_state=0).fit(
        inputs, rng.integers(1, 4, 400))
    return forest, classifier


@pytest.fixture(scope="module")
def artifact() -> tuple[bytes, dict[str, Any]]:
    forest, classifier = fitted()
    # every row above the threshold and every type named: a consumer opens alarms and diagnoses them
    return dump(forest, -1e9, {"training": {"rows": 300}, "diagnosis": {"min_probability": 0.0}}, classifier)


def rows(width: int, n: int = 2000) -> np.ndarray:
    x = np.random.default_rng(9).normal(0, 2, (n, width))
    x[np.random.default_rng(10).random(x.shape) < 0.02] = np.nan
    return x


def test_scores_and_class_probabilities_from_the_arrays_are_scikit_learns_bit_for_bit(artifact) -> None:
    model = load(*artifact, "small")
    assert artifact[1]["format"] == ARRAYS_FORMAT
    x = rows(len(FEATURE_NAMES))
    assert model.score(x)[0].tobytes() == (-model.estimator.score_samples(x)).tobytes()
    inputs = rows(CLASSIFIER_WIDTH, 300)
    assert model.classifier is not None
    assert model.classifier.predict_proba(inputs).tobytes() == model.fitted_classifier.predict_proba(inputs).tobytes()
    assert model.classifier.classes_.tolist() == model.fitted_classifier.classes_.tolist()
    with pytest.raises(ValueError, match="rows of 14 columns"):
        model.score(x[:, :5])


def test_an_artifact_from_before_the_arrays_loads_by_unpickling_and_says_so(caplog, artifact) -> None:
    old_payload, old_manifest = pickle_only(*artifact)
    content = joblib.load(io.BytesIO(old_payload))  # a bare joblib pickle, as releases before the arrays wrote
    assert set(content) == {"estimator", "threshold", "classifier"} and "format" not in old_manifest
    with caplog.at_level(logging.WARNING, logger="petrostream.models"):
        old = load(old_payload, old_manifest, "old model")
    assert "old model: an artifact from before tree arrays; unpickling it" in caplog.text
    new = load(*artifact, "new model")
    x, inputs = rows(len(FEATURE_NAMES)), rows(CLASSIFIER_WIDTH, 100)
    assert old.score(x)[0].tobytes() == new.score(x)[0].tobytes() and old.threshold == new.threshold
    assert old.classifier.predict_proba(inputs).tobytes() == new.classifier.predict_proba(inputs).tobytes()
    assert old.estimator.n_estimators == new.estimator.n_estimators == 12  # the fitted objects, on demand


def _members(payload: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(payload)) as archive:
        return {name: archive[name] for name in archive.files}


def _archive(members: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **members)
    return buffer.getvalue()


def _resigned(payload: bytes, manifest: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """What the trainer's key would sign for other bytes (to reach the checks after the signature)."""
    fields = {k: v for k, v in manifest.items() if k != "signature"}
    return payload, model_signing.sign(payload, {**fields, "sha256": hashlib.sha256(payload).hexdigest()})


def test_tampered_arrays_are_refused_before_anything_is_read(artifact) -> None:
    payload, manifest = artifact
    members = _members(payload)
    members["forest.values"] = members["forest.values"] * 0.5  # every score shifted
    tampered = _archive(members)
    with pytest.raises(ModelError, match=r"^m: sha256 .* refusing a tampered or corrupt model"):
        load(tampered, manifest, "m")
    rehashed = {**manifest, "sha256": hashlib.sha256(tampered).hexdigest()}
    with pytest.raises(ModelError, match=r"^m: model signature does not verify"):
        load(tampered, rehashed, "m")
    with pytest.raises(ModelError, match=r"^m: model signature does not verify"):  # the format is signed too
        load(payload, {**manifest, "format": None}, "m")


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m.__setitem__("forest.right", np.where(m["forest.right"] > 0, 10**9, -1)),
     "forest tree arrays are inconsistent"),
    (lambda m: m.__setitem__("classifier.feature", m["classifier.feature"] + 1000),
     "classifier tree arrays are inconsistent"),
    (lambda m: m.pop("forest.threshold"), "forest tree arrays lack 'forest.threshold'"),
    (lambda m: m.__setitem__("forest.values", m["forest.values"].astype(np.float32)), "values is float32"),
    (lambda m: m.pop("sklearn.joblib"), "lacks its scikit-learn pickle"),
])
def test_signed_but_inconsistent_arrays_get_a_clear_error(artifact, change, message: str) -> None:
    members = _members(artifact[0])
    change(members)
    with pytest.raises(ModelError, match=rf"^m: .*{message}"):
        load(*_resigned(_archive(members), artifact[1]), "m")


def test_an_archive_that_is_not_one_and_an_unknown_format_are_refused(artifact) -> None:
    payload, manifest = artifact
    truncated = payload[: len(payload) // 2]
    with pytest.raises(ModelError, match=r"^m: the artifact's tree arrays do not read"):
        load(*_resigned(truncated, manifest), "m")
    with pytest.raises(ModelError, match=r"^m: artifact format 'tree-arrays-9' is not one this release reads"):
        load(*_resigned(payload, {**manifest, "format": "tree-arrays-9"}), "m")
    assert zipfile.is_zipfile(io.BytesIO(payload))


#: Runs the consumer's command in this process, then reports what it imported.
_CONSUME_AND_LIST_MODULES = """
import json, sys
from engine.cli import main
code = main(["consume", "--exit-when-idle", "0"])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def consume_in_a_fresh_process(home: Path) -> tuple[set[str], str]:
    env = {**os.environ, "PETROSTREAM_HOME": str(home), "PETROSTREAM_BACKEND": "local"}
    done = subprocess.run([sys.executable, "-c", _CONSUME_AND_LIST_MODULES], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, done.stderr
    return set(report["modules"]), done.stderr


def test_a_consumer_loads_the_model_without_importing_scikit_learn_or_scipy(tmp_path: Path, artifact) -> None:
    open_backend(Settings(home=tmp_path)).models.publish(*artifact)
    modules, log = consume_in_a_fresh_process(tmp_path)
    assert "scoring with model v" in log  # the model was loaded (and verified) ...
    assert not {m for m in modules if m.split(".")[0] in ("sklearn", "joblib")}  # ... from its arrays alone
    assert not {m for m in modules if m.split(".")[0] == "scipy"}


#: A consumer reading one record per batch, so that a short stream makes enough lake files for the
#: compaction on its way out (and runs of rows short enough for the merge's take); what it imported.
_CONSUME_IN_SMALL_BATCHES = """
import json, sys, threading
from engine.backend import open_backend
from engine.consumer import Consumer, ConsumerOptions
stats = Consumer(open_backend(), ConsumerOptions(idle_exit_seconds=0, read_bytes=1)).run(threading.Event())
print(json.dumps({"batches": stats.batches, "dead_letters": stats.dead_letters, "modules": sorted(sys.modules)}))
"""


def test_a_consumer_scores_diagnoses_and_compacts_without_scikit_learn_or_pandas(tmp_path: Path, demo_dir: Path,
                                                                                  artifact) -> None:
    """Nor pandas: pyarrow imports it (0.2-0.25 CPU s, 48 MB) at the first ``pa.array``, ``pa.scalar``
    or ``to_numpy``, so the consumer's path, dead letters included, converts through
    :mod:`engine.arrow_numpy` instead."""
    backend = open_backend(Settings(home=tmp_path))
    backend.models.publish(*artifact)
    Producer(backend, discover([demo_dir]), ReplayOptions(speed=0, max_rows=3000, rows_per_record=300)).run(
        threading.Event())
    backend.stream.put_records([OutgoingRecord("WELL-X", b"\x02corrupt")])  # and a dead letter
    env = {**os.environ, "PETROSTREAM_HOME": str(tmp_path), "PETROSTREAM_BACKEND": "local"}
    done = subprocess.run([sys.executable, "-c", _CONSUME_IN_SMALL_BATCHES], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["batches"] > 8 and report["dead_letters"] == 1  # one record each
    modules = set(report["modules"])
    assert not {m for m in modules if m.split(".")[0] in ("sklearn", "joblib", "scipy", "pandas")}  # features in C too
    assert list((tmp_path / "lake").rglob(f"{COMPACTED_PREFIX}*.parquet"))  # the batches were merged on the way out
    scored = backend.sql.query("SELECT count(*) AS n, count(anomaly_score) AS scored FROM well_data")
    assert scored.iloc[0]["n"] == scored.iloc[0]["scored"] == 3000
    named = backend.sql.query("SELECT count(likely_class) AS named FROM anomaly_events")
    assert named.iloc[0]["named"] > 0  # alarms opened and the classifier named their type


def test_the_aws_backend_a_consumer_opens_on_ecs_imports_no_pandas() -> None:
    """Athena's results become DataFrames, but a consumer only opens the backend: pandas is imported
    where the results are converted, not with the module (0.2-0.25 CPU s and 48 MB of every task's start)."""
    code = "import sys\nimport engine.backends.aws, engine.consumer\nprint('pandas' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                          check=True)
    assert done.stdout.strip() == "False"
