"""The model artifact: an Isolation Forest, its threshold, the diagnosis classifier, and a manifest vouching for them.

The artifact is a joblib file; loading one runs pickle code, so the trainer signs its bytes
and manifest (:mod:`engine.model_signing`) and the signature, the sha256 and the manifest's
feature list and library versions are all checked *before* a byte is unpickled: a tampered,
unsigned, corrupt or incompatible model is refused with a :class:`ModelError` and never
scores anything.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
from dataclasses import dataclass
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from engine import model_signing
from engine.diagnosis import MIN_PROBABILITY, Diagnoser
from engine.errors import ModelError
from engine.features import FEATURE_NAMES, FEATURE_VERSION
from engine.forest_scores import ForestScorer

MANIFEST_SUFFIX = ".manifest.json"

# scikit-learn and joblib are imported where a model is built, loaded or scored, not with this
# module: every command opens a backend (whose model store imports this), and importing
# scikit-learn costs seconds of start-up that a producer or a query never needs.


def library_versions() -> dict[str, str]:
    return {"python": platform.python_version(), "scikit-learn": _sklearn_version(), "numpy": np.__version__}


def _sklearn_version() -> str:
    return metadata.version("scikit-learn")


@dataclass(frozen=True)
class Model:
    """A loaded, verified model: scores feature rows, higher = more anomalous, and diagnoses alarms.

    ``classifier`` names an alarm's likely event type (:mod:`engine.diagnosis`); models
    trained before it existed have none and still explain which sensors moved.
    """

    estimator: Any
    threshold: float
    manifest: dict[str, Any]
    classifier: Any | None = None

    @property
    def diagnoser(self) -> Diagnoser:
        """The alarm diagnoser, with the confidence cut-off training chose for this classifier."""
        cutoff = (self.manifest.get("diagnosis") or {}).get("min_probability", MIN_PROBABILITY)
        return Diagnoser(self.classifier, float(cutoff))

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", "unpublished"))

    @cached_property
    def _scorer(self) -> ForestScorer:
        return ForestScorer(self.estimator)

    def score(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Anomaly scores and 0/1 flags (score above the threshold) for feature rows.

        The scores are the forest's ``score_samples``, negated, bit for bit (:mod:`engine.forest_scores`).
        """
        if features.shape[0] == 0:
            return np.empty(0), np.empty(0, dtype=np.int8)
        scores = -self._scorer.score_samples(features)
        return scores, (scores > self.threshold).astype(np.int8)


def dump(estimator: Any, threshold: float, summary: dict[str, Any],
         classifier: Any | None = None) -> tuple[bytes, dict[str, Any]]:
    """Serialise a trained estimator (and its diagnosis classifier, in the same bytes the manifest vouches for);
    the manifest comes back signed with the trainer's key."""
    import joblib

    buffer = io.BytesIO()
    joblib.dump({"estimator": estimator, "threshold": threshold, "classifier": classifier}, buffer, compress=3)
    payload = buffer.getvalue()
    manifest = {
        "sha256": hashlib.sha256(payload).hexdigest(),
        "features": list(FEATURE_NAMES),
        "feature_version": FEATURE_VERSION,
        "threshold": threshold,
        "libraries": library_versions(),
        **summary,
    }
    return payload, model_signing.sign(payload, manifest)


def load(payload: bytes, manifest: dict[str, Any], source: str) -> Model:
    """Verify and load an artifact; ``source`` names it in error messages."""
    expected = manifest.get("sha256")
    actual = hashlib.sha256(payload).hexdigest()
    if expected != actual:
        raise ModelError(f"{source}: sha256 {actual[:12]}… does not match the manifest "
                         f"({str(expected)[:12]}…); refusing a tampered or corrupt model")
    model_signing.verify(payload, manifest, source)
    if manifest.get("features") != list(FEATURE_NAMES) or manifest.get("feature_version") != FEATURE_VERSION:
        raise ModelError(f"{source}: trained on other features (version {manifest.get('feature_version')}); "
                         "retrain it with this release")
    trained_with = manifest.get("libraries", {}).get("scikit-learn", "?")
    if trained_with.split(".")[:2] != _sklearn_version().split(".")[:2]:
        raise ModelError(f"{source}: trained with scikit-learn {trained_with}, this is {_sklearn_version()}")
    import joblib

    try:
        content = joblib.load(io.BytesIO(payload))
        return Model(content["estimator"], float(content["threshold"]), manifest, content.get("classifier"))
    except Exception as exc:
        raise ModelError(f"{source}: artifact does not load ({type(exc).__name__})") from exc


def manifest_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + MANIFEST_SUFFIX)


def save_file(path: Path, payload: bytes, manifest: dict[str, Any]) -> None:
    """Write ``path`` and ``path.manifest.json`` next to it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    manifest_path(path).write_text(json.dumps(manifest, indent=2, sort_keys=True))


def read_file(path: str | Path) -> tuple[bytes, dict[str, Any]]:
    """A model file's bytes and its manifest, unverified (:func:`load` or a store's publish verifies)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    sidecar = manifest_path(path)
    if not sidecar.is_file():
        raise ModelError(f"{path}: its manifest {sidecar.name} is missing")
    return path.read_bytes(), parse_manifest(sidecar.read_bytes(), str(sidecar))


def parse_manifest(raw: bytes, source: str) -> dict[str, Any]:
    """A manifest's JSON object, unverified; :class:`ModelError` naming ``source`` if it is not one."""
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise ModelError(f"{source}: manifest is not valid JSON") from None
    if not isinstance(manifest, dict):
        raise ModelError(f"{source}: manifest is not a JSON object")
    return manifest


def load_file(path: str | Path) -> Model:
    """Load a model file and its manifest from disk, verified."""
    return load(*read_file(path), str(path))
