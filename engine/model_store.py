"""The model store: published versions, one active, and a history to roll back along.

Publishing, activating and rolling back are explicit; consumers poll
:meth:`ModelStore.active_version` (a tiny read) and load a new version when it changes. The
rules live here once; a backend stores named blobs and nothing else.

Whatever the store holds is untrusted: a version is published only if its signature verifies
(:mod:`engine.model_signing`), every load verifies it again, and a missing or corrupt blob is
a :class:`ModelError` naming it — never an exception that kills a consumer or the listing.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from engine.errors import ModelError

if TYPE_CHECKING:  # engine.model imports the feature code and a signature check a replay never runs
    from engine.model import Model

log = logging.getLogger("petrostream.models")

_POINTER = "ACTIVE.json"
_ARTIFACT = "model.joblib"
_MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ModelVersion:
    """A published version as listed to a user."""

    version: str
    published_at: str
    threshold: float
    active: bool
    summary: dict[str, Any]
    #: Why the version cannot be used (its manifest is missing or corrupt); None when it reads.
    problem: str | None = None


class ModelStore(ABC):
    """Versions under ``<version>/model.joblib`` + ``<version>/manifest.json``, pointer in ``ACTIVE.json``."""

    # -- storage primitives -------------------------------------------------------
    @abstractmethod
    def _put(self, key: str, data: bytes) -> None:
        """Store a blob (atomically replacing one of the same key)."""

    @abstractmethod
    def _get(self, key: str) -> bytes | None:
        """A blob, or None if there is none under that key."""

    @abstractmethod
    def _version_names(self) -> list[str]:
        """Names of the published versions."""

    # -- rules --------------------------------------------------------------------
    def publish(self, payload: bytes, manifest: dict[str, Any], activate: bool = True, source: str = "model") -> str:
        """Store a new version (verified first, so an unsigned, tampered or broken model is never
        published); ``source`` names what is published (a file) in the one-line refusal."""
        from engine.model import load

        load(payload, manifest, source)
        stamp = datetime.now(UTC)
        version = f"v{stamp:%Y%m%dT%H%M%S}-{manifest['sha256'][:8]}"
        manifest = {**manifest, "version": version, "published_at": stamp.isoformat(timespec="seconds")}
        self._put(f"{version}/{_ARTIFACT}", payload)
        self._put(f"{version}/{_MANIFEST}", json.dumps(manifest, indent=2, sort_keys=True).encode())
        if activate:
            self.activate(version)
        return version

    def versions(self) -> list[ModelVersion]:
        """Every published version; one whose manifest does not read is listed with its problem."""
        active = self.active_version()
        return [self._listed(name, name == active) for name in sorted(self._version_names())]

    def _listed(self, name: str, active: bool) -> ModelVersion:
        try:
            manifest = self._manifest(name)
            training = manifest.get("training")
            return ModelVersion(name, str(manifest.get("published_at", "")), float(manifest["threshold"]), active,
                                training if isinstance(training, dict) else {})
        except (ModelError, KeyError, TypeError, ValueError) as exc:
            problem = str(exc) if isinstance(exc, ModelError) else f"model {name}: manifest has no usable threshold"
            return ModelVersion(name, "", float("nan"), active, {}, problem=problem)

    def active_version(self) -> str | None:
        """The active version; None when none is, or when the pointer is corrupt (logged: consumers keep
        their model, pages and ``models list`` still show the versions, ``activate`` repairs it)."""
        try:
            history = self._history()
        except ModelError as exc:
            log.error("%s", exc)
            return None
        return history[-1] if history else None

    def activate(self, version: str) -> None:
        """Make ``version`` the active one (this also repairs a corrupt pointer)."""
        if version not in self._version_names():
            raise ModelError(f"no published model version {version!r}")
        try:
            earlier = self._history()
        except ModelError:
            earlier = []
        history = [v for v in earlier if v != version] + [version]
        self._put(_POINTER, json.dumps({"history": history}).encode())

    def rollback(self) -> str:
        """Re-activate the version that was active before the current one."""
        history = self._history()
        if len(history) < 2:
            raise ModelError("nothing to roll back to: fewer than two versions were ever active")
        self._put(_POINTER, json.dumps({"history": history[:-1]}).encode())
        return history[-2]

    def load(self, version: str) -> Model:
        """Load and verify a version; raises :class:`ModelError` if it is tampered or missing."""
        payload = self._get(f"{version}/{_ARTIFACT}")
        if payload is None:
            raise ModelError(f"model {version}: artifact missing from the store")
        from engine.model import load

        return load(payload, self._manifest(version), f"model {version}")

    def load_active(self) -> Model | None:
        version = self.active_version()
        return self.load(version) if version else None

    def _manifest(self, version: str) -> dict[str, Any]:
        raw = self._get(f"{version}/{_MANIFEST}")
        if raw is None:
            raise ModelError(f"model {version}: manifest missing from the store")
        from engine.model import parse_manifest

        return parse_manifest(raw, f"model {version}")

    def _history(self) -> list[str]:
        raw = self._get(_POINTER)
        if not raw:
            return []
        try:
            history = json.loads(raw)["history"]
        except (ValueError, TypeError, KeyError):
            history = None
        if not isinstance(history, list) or not all(isinstance(v, str) for v in history):
            raise ModelError(f"{_POINTER} of the model store is corrupt; `models activate VERSION` rewrites it")
        return history
