"""Model signatures: only artifacts signed with the trainer's key are ever unpickled.

A model artifact is pickled code, so anyone who can write a model file or the model store
could otherwise run code in every consumer. The sha256 in the manifest catches corruption,
not tampering (whoever rewrites the file rewrites the hash), so the trainer signs the
artifact's bytes *and* its manifest, and every load verifies that signature before a single
byte is unpickled. The format of the artifact does not matter here: the signature covers its
bytes, whatever estimators they hold.

What is signed: a fixed context line, the artifact's sha256 and the canonical JSON (sorted
keys, no whitespace) of every manifest field except the signature itself and the two labels
a store adds when publishing (``version``, ``published_at``). The threshold, alarm policy,
features and training summary the consumer uses are therefore all covered.

Keys (``PETROSTREAM_MODEL_KEY``):

* unset or a path: an Ed25519 key file (default ``~/.config/petrostream/model-signing.key``),
  created on the first signature with mode 0600 in a 0700 folder, with its public half in
  ``<file>.pub``; verifying needs only the ``.pub`` file.
* ``kms:<key id, ARN or alias>``: an AWS KMS asymmetric key (``ECC_NIST_P256``,
  ``ECDSA_SHA_256``); signing calls KMS Sign (only the trainer's role may), verifying uses
  the key's public half from GetPublicKey, fetched once per process.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import stat
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from engine.config import Settings
from engine.errors import ModelError, PetroStreamError

SIGNATURE_FIELD = "signature"
#: Manifest fields a store adds when publishing; everything else is signed.
STORE_LABELS = frozenset({"version", "published_at"})
_CONTEXT = b"petrostream model signature v1\n"


def default_key_file() -> Path:
    """Where the local trainer's key lives: the user's home, outside any data or model folder."""
    return Path.home() / ".config" / "petrostream" / "model-signing.key"


def signed_digest(payload: bytes, manifest: dict[str, Any]) -> bytes:
    """The SHA-256 that a signature vouches for: artifact bytes and every signed manifest field."""
    fields = {k: v for k, v in manifest.items() if k != SIGNATURE_FIELD and k not in STORE_LABELS}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    return hashlib.sha256(_CONTEXT + hashlib.sha256(payload).hexdigest().encode() + b"\n" + canonical).digest()


class ModelKey(ABC):
    """A signing key: the trainer signs with it, consumers and stores verify with its public half."""

    algorithm: str

    @property
    @abstractmethod
    def key_id(self) -> str:
        """A name for the key that a manifest records (which key signed, for the error messages)."""

    @abstractmethod
    def sign(self, digest: bytes) -> bytes:
        """Sign a 32-byte digest."""

    @abstractmethod
    def verifies(self, digest: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's over ``digest``."""


class KeyFile(ModelKey):
    """An Ed25519 key in a file only its owner can read; the public half beside it in ``.pub``."""

    algorithm = "ed25519"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.public_path = path.with_name(path.name + ".pub")

    @property
    def key_id(self) -> str:
        return f"file:{self.path}"

    def sign(self, digest: bytes) -> bytes:
        return self._private_key().sign(digest)

    def verifies(self, digest: bytes, signature: bytes) -> bool:
        if not self.public_path.is_file():
            raise ModelError(f"no model signing key at {self.public_path}: only models signed by this "
                             "installation's trainer are loaded (train one, or set PETROSTREAM_MODEL_KEY)")
        public = serialization.load_pem_public_key(self.public_path.read_bytes())
        if not isinstance(public, Ed25519PublicKey):
            raise ModelError(f"{self.public_path}: not an Ed25519 public key")
        try:
            public.verify(signature, digest)
            return True
        except InvalidSignature:
            return False

    def _private_key(self) -> Ed25519PrivateKey:
        """The key, created on first use; like ssh, a key others may read is refused rather than used."""
        if not self.path.is_file():
            self._create()
        mode = stat.S_IMODE(self.path.stat().st_mode)
        if mode & 0o077:
            raise ModelError(f"{self.path}: the model signing key is readable by other users (mode {mode:04o}); "
                             "chmod 600 it, or make a new one and retrain")
        key = serialization.load_pem_private_key(self.path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ModelError(f"{self.path}: not an Ed25519 private key")
        return key

    def _create(self) -> None:
        """Write a new key pair; the private file appears complete and 0600 at once (a hard link of a
        finished file), and if another trainer made one first, theirs is kept."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        staged = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        try:
            os.link(staged, self.path)
        except FileExistsError:
            return
        finally:
            staged.unlink()
        self.public_path.write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def _kms_key(key_id: str) -> ModelKey:
    from engine.backends.aws._kms_key import KmsModelKey

    return KmsModelKey(key_id)


#: ``PETROSTREAM_MODEL_KEY`` scheme -> how to open such a key (no scheme: a key file path).
KEY_SCHEMES: dict[str, Callable[[str], ModelKey]] = {"kms": _kms_key}


@cache
def open_key(setting: str) -> ModelKey:
    """The key a ``PETROSTREAM_MODEL_KEY`` value names (empty: the default key file)."""
    scheme, _, rest = setting.partition(":")
    if rest and scheme in KEY_SCHEMES:
        return KEY_SCHEMES[scheme](rest)
    return KeyFile(Path(setting).expanduser() if setting else default_key_file())


def configured_key() -> ModelKey:
    """The key this process signs and verifies with, from the environment."""
    return open_key(Settings.from_env().model_key)


def sign(payload: bytes, manifest: dict[str, Any], key: ModelKey | None = None) -> dict[str, Any]:
    """The manifest with a signature over it and the artifact bytes."""
    key = key or configured_key()
    unsigned = {k: v for k, v in manifest.items() if k != SIGNATURE_FIELD}
    signature = key.sign(signed_digest(payload, unsigned))
    return {**unsigned, SIGNATURE_FIELD: {"algorithm": key.algorithm, "key": key.key_id,
                                          "value": base64.b64encode(signature).decode()}}


def verify(payload: bytes, manifest: dict[str, Any], source: str, key: ModelKey | None = None) -> None:
    """Raise :class:`ModelError` naming ``source`` unless the manifest carries our key's signature over both."""
    key = key or configured_key()
    block = manifest.get(SIGNATURE_FIELD)
    if not isinstance(block, dict) or not isinstance(block.get("value"), str):
        raise ModelError(f"{source}: unsigned model refused (only models signed by the trainer's key are loaded)")
    try:
        signature = base64.b64decode(block["value"], validate=True)
    except ValueError:
        raise ModelError(f"{source}: malformed model signature refused") from None
    try:
        verified = block.get("algorithm") == key.algorithm and key.verifies(signed_digest(payload, manifest), signature)
    except PetroStreamError as exc:  # no key to verify with, or KMS unreachable: still one line naming the file
        raise ModelError(f"{source}: {exc}") from None
    if not verified:
        raise ModelError(f"{source}: model signature does not verify with {key.key_id}; "
                         "refusing a tampered model or one signed by another key")
