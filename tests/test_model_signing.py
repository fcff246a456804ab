"""Model protection: only artifacts signed with the trainer's key are unpickled, by any path.

The attack of issue 11: a pickle that runs a shell command, placed beside a manifest whose
sha256 was recomputed for it. Every way a model enters (``models publish FILE``, the store,
``load_file``) must refuse it before a byte is unpickled — the marker file it would create
proves it never ran.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from engine import model_signing
from engine.backend import open_backend
from engine.config import Settings
from engine.errors import ModelError
from engine.features import FEATURE_NAMES
from engine.model import dump, load, load_file, read_file, save_file

REPO = Path(__file__).resolve().parents[1]


class RunsAShellCommand:
    """What an attacker pickles: unpickling it calls ``os.system``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def genuine() -> tuple[bytes, dict[str, Any]]:
    estimator = IsolationForest(n_estimators=5, random_state=0).fit(
        np.random.default_rng(0).normal(size=(64, len(FEATURE_NAMES))))
    return dump(estimator, 0.5, {"training": {"rows": 64}})


def malicious(marker: Path) -> bytes:
    buffer = io.BytesIO()
    joblib.dump({"estimator": RunsAShellCommand(marker), "threshold": 0.5}, buffer)
    return buffer.getvalue()


def with_sha(payload: bytes, manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest an attacker writes: the hash recomputed for the bytes they swapped in."""
    return {**manifest, "sha256": hashlib.sha256(payload).hexdigest()}


def publish_cli(home: Path, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", "models", "publish", str(path)], cwd=REPO,
                          env={**os.environ, "PETROSTREAM_HOME": str(home), "PETROSTREAM_BACKEND": "local"},
                          capture_output=True, text=True, timeout=120)


def test_the_key_file_is_created_readable_by_its_owner_only(tmp_path: Path) -> None:
    key = model_signing.KeyFile(tmp_path / "keys" / "trainer.key")
    payload, manifest = genuine()
    signed = model_signing.sign(payload, manifest, key)
    assert stat.S_IMODE(key.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.path.parent.stat().st_mode) == 0o700
    model_signing.verify(payload, signed, "model", key)  # the public half alone verifies
    assert b"PRIVATE" not in key.public_path.read_bytes()


def test_a_pickle_that_runs_a_command_is_refused_by_models_publish_before_unpickling(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    _, manifest = genuine()
    evil = malicious(marker)
    attempts = {
        "unsigned": {k: v for k, v in with_sha(evil, manifest).items() if k != "signature"},
        "signature-of-other-bytes": with_sha(evil, manifest),
        "signed-by-the-attackers-own-key": model_signing.sign(
            evil, with_sha(evil, manifest), model_signing.KeyFile(tmp_path / "attacker.key")),
    }
    store = open_backend(Settings(home=tmp_path / "home")).models
    for name, forged in attempts.items():
        path = tmp_path / name / "model.joblib"
        save_file(path, evil, forged)
        with pytest.raises(ModelError, match=rf"^{path}: (unsigned|model signature)"):
            load_file(path)
        with pytest.raises(ModelError, match=rf"^{path}: (unsigned|model signature)"):
            store.publish(*read_file(path), source=str(path))
        assert not marker.exists(), f"{name}: the pickle ran"
    # The reproduction, through the command line: one line naming the file, exit 2, nothing ran.
    path = tmp_path / "signature-of-other-bytes" / "model.joblib"
    result = publish_cli(tmp_path / "home", path)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"error: {path}: model signature does not verify with {manifest['signature']['key']}; "
        "refusing a tampered model or one signed by another key"]
    assert not marker.exists() and store.versions() == []


def test_every_manifest_field_the_consumer_uses_is_signed() -> None:
    payload, manifest = genuine()
    load(payload, manifest, "genuine")
    for field, value in [("threshold", 99.0), ("alarm_policy", {"min_rows": 1}), ("features", ["pressure"]),
                         ("feature_version", 999), ("training", {"rows": 1})]:
        with pytest.raises(ModelError, match="signature does not verify"):
            load(payload, {**manifest, field: value}, "edited")
    # The labels a store adds are not part of what the trainer vouches for.
    load(payload, {**manifest, "version": "v1", "published_at": "2026-01-01T00:00:00+00:00"}, "published")


def test_a_signed_model_published_from_a_file_loads_in_a_fresh_process(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    save_file(path, *genuine())
    result = publish_cli(tmp_path / "home", path)
    assert result.returncode == 0, result.stderr
    store = open_backend(Settings(home=tmp_path / "home")).models
    assert store.load_active().threshold == 0.5


def test_a_store_object_rewritten_by_someone_with_write_access_is_refused(tmp_path: Path) -> None:
    store = open_backend(Settings(home=tmp_path)).models
    version = store.publish(*genuine())
    marker = tmp_path / "pwned"
    evil = malicious(marker)
    folder = tmp_path / "models" / version
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "model.joblib").write_bytes(evil)
    (folder / "manifest.json").write_text(json.dumps(with_sha(evil, manifest)))
    with pytest.raises(ModelError, match=f"model {version}: model signature does not verify"):
        store.load(version)
    assert not marker.exists()


def test_no_trusted_key_means_nothing_loads(tmp_path: Path) -> None:
    payload, manifest = genuine()
    with pytest.raises(ModelError, match=r"^downloaded\.joblib: no model signing key at "):
        model_signing.verify(payload, manifest, "downloaded.joblib", model_signing.KeyFile(tmp_path / "absent.key"))
    assert not (tmp_path / "absent.key").exists()  # verifying never creates a key


def test_the_key_setting_picks_a_file_or_kms(tmp_path: Path) -> None:
    assert model_signing.open_key(str(tmp_path / "k")).key_id == f"file:{tmp_path / 'k'}"
    assert model_signing.open_key("").key_id == f"file:{model_signing.default_key_file()}"
    assert model_signing.open_key("kms:alias/petrostream-model-signing").key_id == \
        "kms:alias/petrostream-model-signing"


def test_on_aws_a_kms_signed_model_is_published_and_one_signed_by_another_key_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.backends.aws._kms_key import KmsModelKey
    from tests.backends import aws_account, aws_client

    with aws_account():
        kms = aws_client("kms")
        ours = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/petrostream-model-signing", TargetKeyId=ours)
        other = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        symmetric = kms.create_key()["KeyMetadata"]["KeyId"]
        monkeypatch.setenv("PETROSTREAM_MODEL_KEY", "kms:alias/petrostream-model-signing")
        model_signing.open_key.cache_clear()
        try:
            backend = open_backend(Settings(backend="aws", home=tmp_path))
            payload, manifest = genuine()  # trained through the code that signs: KMS Sign
            assert manifest["signature"]["key"] == "kms:alias/petrostream-model-signing"
            version = backend.models.publish(payload, manifest)
            assert backend.models.load(version).threshold == 0.5
            forged = model_signing.sign(payload, manifest, KmsModelKey(other))
            with pytest.raises(ModelError, match="signature does not verify"):
                backend.models.publish(payload, forged, source="forged.joblib")
            with pytest.raises(ModelError, match="not an ECC_NIST_P256 signing key"):
                model_signing.verify(payload, manifest, "model", KmsModelKey(symmetric))
        finally:
            model_signing.open_key.cache_clear()


def test_a_signing_key_other_users_can_read_is_refused(tmp_path: Path) -> None:
    key = model_signing.KeyFile(tmp_path / "trainer.key")
    payload, manifest = genuine()
    model_signing.sign(payload, manifest, key)
    key.path.chmod(0o644)
    with pytest.raises(ModelError, match=r"readable by other users \(mode 0644\)"):
        model_signing.sign(payload, manifest, key)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trainer.key", "trainer.key.pub"]  # nothing staged left
