"""The model artifact: an Isolation Forest, its threshold, the diagnosis classifier, and a manifest vouching for them.

The artifact (manifest ``"format": "tree-arrays-1"``) is a NumPy ``.npz`` archive: the trees of
the forest and of the classifier as plain arrays (:mod:`engine.tree_walk`), which is all a
consumer scores and diagnoses from, read without pickle, scikit-learn or scipy (importing
those cost most of a worker's start-up); and, as one more array of bytes, the joblib pickle of
the fitted scikit-learn objects, unpickled only when something asks for them (tests and
benches comparing with scikit-learn, analysis in a notebook). Artifacts from before the arrays (no ``format``: a joblib
file) still load, by unpickling, with a log line.

Loading a pickle runs code, and wrong arrays would score wrongly, so the trainer signs the
artifact's bytes and manifest (:mod:`engine.model_signing`) and the signature, the sha256 and
the manifest's feature list and library versions are all checked *before* a byte is read: a
tampered, unsigned, corrupt or incompatible model is refused with a :class:`ModelError` and
never scores anything.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import platform
import zipfile
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
from engine.forest_scores import ForestScorer, forest_arrays
from engine.tree_classifier import TreeClassifier, classifier_arrays

log = logging.getLogger("petrostream.models")

MANIFEST_SUFFIX = ".manifest.json"
#: The manifest's ``format`` of an artifact holding the trees as arrays (none: a bare joblib pickle).
ARRAYS_FORMAT = "tree-arrays-1"
#: The member of the archive holding the joblib pickle of the fitted scikit-learn objects.
_PICKLE = "sklearn.joblib"

# scikit-learn and joblib are imported where a model is built or unpickled, not with this
# module: every command opens a backend (whose model store imports this), importing
# scikit-learn costs seconds of start-up, and a consumer scores from the arrays without it.


def library_versions() -> dict[str, str]:
    return {"python": platform.python_version(), "scikit-learn": _sklearn_version(), "numpy": np.__version__}


def _sklearn_version() -> str:
    return metadata.version("scikit-learn")


@dataclass(frozen=True)
class Model:
    """A loaded, verified model: scores feature rows, higher = more anomalous, and diagnoses alarms.

    ``classifier`` names an alarm's likely event type (:mod:`engine.diagnosis`); models
    trained before it existed have none and still explain which sensors moved. Both score from
    arrays; the fitted scikit-learn objects (:attr:`estimator`, :attr:`fitted_classifier`) are
    unpickled from ``pickled`` only when asked for.
    """

    forest: ForestScorer
    threshold: float
    manifest: dict[str, Any]
    classifier: TreeClassifier | None
    pickled: bytes

    @property
    def diagnoser(self) -> Diagnoser:
        """The alarm diagnoser, with the confidence cut-off training chose for this classifier."""
        cutoff = (self.manifest.get("diagnosis") or {}).get("min_probability", MIN_PROBABILITY)
        return Diagnoser(self.classifier, float(cutoff))

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", "unpublished"))

    @cached_property
    def _fitted(self) -> dict[str, Any]:
        import joblib

        return joblib.load(io.BytesIO(self.pickled))

    @property
    def estimator(self) -> Any:
        """The fitted ``IsolationForest`` (unpickled on first use: imports scikit-learn)."""
        return self._fitted["estimator"]

    @property
    def fitted_classifier(self) -> Any | None:
        """The fitted diagnosis classifier, None if the model has none (unpickled on first use)."""
        return self._fitted.get("classifier")

    def score(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Anomaly scores and 0/1 flags (score above the threshold) for feature rows.

        The scores are the forest's ``score_samples``, negated, bit for bit (:mod:`engine.forest_scores`).
        """
        if features.shape[0] == 0:
            return np.empty(0), np.empty(0, dtype=np.int8)
        scores = -self.forest.score_samples(features)
        return scores, (scores > self.threshold).astype(np.int8)


def dump(estimator: Any, threshold: float, summary: dict[str, Any],
         classifier: Any | None = None) -> tuple[bytes, dict[str, Any]]:
    """Serialise a trained estimator and its diagnosis classifier: their trees as arrays and their pickle,
    in the one archive the manifest vouches for; the manifest comes back signed with the trainer's key."""
    import joblib

    pickled = io.BytesIO()
    joblib.dump({"estimator": estimator, "threshold": threshold, "classifier": classifier}, pickled, compress=3)
    arrays = {**forest_arrays(estimator), **(classifier_arrays(classifier) if classifier is not None else {}),
              _PICKLE: np.frombuffer(pickled.getvalue(), dtype=np.uint8)}
    archive = io.BytesIO()
    np.savez_compressed(archive, **arrays)
    payload = archive.getvalue()
    manifest = {
        **summary,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "format": ARRAYS_FORMAT,
        "features": list(FEATURE_NAMES),
        "feature_version": FEATURE_VERSION,
        "threshold": threshold,
        "libraries": library_versions(),
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
    form = manifest.get("format")
    if form == ARRAYS_FORMAT:
        arrays, pickled = _read_archive(payload, source)
    elif form is None:
        log.warning("%s: an artifact from before tree arrays; unpickling it with scikit-learn "
                    "(a model trained by this release starts consumers faster)", source)
        arrays, pickled = _arrays_of_pickle(payload, source), payload
    else:
        raise ModelError(f"{source}: artifact format {form!r} is not one this release reads; use a newer release")
    try:
        return Model(ForestScorer.from_arrays(arrays), float(manifest["threshold"]), manifest,
                     TreeClassifier.from_arrays(arrays), pickled)
    except (ModelError, KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{source}: {exc}") from None


def pickle_only(payload: bytes, manifest: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """The same model as releases before tree arrays wrote it (its joblib pickle alone, a manifest
    without ``format``), signed again: what an A/B benchmark publishes for a checkout of such a release."""
    pickled = _read_archive(payload, "model")[1]
    earlier = {k: v for k, v in manifest.items()
               if k not in ("format", model_signing.SIGNATURE_FIELD, *model_signing.STORE_LABELS)}
    return pickled, model_signing.sign(pickled, {**earlier, "sha256": hashlib.sha256(pickled).hexdigest()})


def _read_archive(payload: bytes, source: str) -> tuple[dict[str, np.ndarray], bytes]:
    """The tree arrays and the pickle's bytes of a ``tree-arrays`` artifact, read without unpickling."""
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{source}: the artifact's tree arrays do not read ({exc})") from None
    pickled = arrays.pop(_PICKLE, None)
    if pickled is None or pickled.dtype != np.uint8:
        raise ModelError(f"{source}: the artifact lacks its scikit-learn pickle")
    return arrays, pickled.tobytes()


def _arrays_of_pickle(payload: bytes, source: str) -> dict[str, np.ndarray]:
    """The tree arrays of an old (pickle-only) artifact, from its unpickled estimators."""
    import joblib

    try:
        content = joblib.load(io.BytesIO(payload))
        classifier = content.get("classifier")
        return {**forest_arrays(content["estimator"]),
                **(classifier_arrays(classifier) if classifier is not None else {})}
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
