"""The model signing key in AWS KMS: the trainer's role signs, every other role only verifies.

The key is asymmetric (``ECC_NIST_P256``, ``SIGN_VERIFY``); its private half never leaves
KMS, and the key policy (``infra/kms.tf``) lets only the model signers call ``kms:Sign``.
Consumers and the portal verify locally with the public half, fetched once per process with
``kms:GetPublicKey``, so loading a model costs no KMS call. The 32-byte digest is sent as a
``RAW`` message (KMS hashes it once more with SHA-256), which stays far below KMS's 4 KiB
message limit whatever the manifest holds.
"""

from __future__ import annotations

from typing import Any

import boto3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from engine.backends.aws._config import DEFAULT_REGION, client_config
from engine.backends.aws._errors import Resource, translated
from engine.errors import ModelError
from engine.model_signing import ModelKey

__all__ = ["KmsModelKey"]

_ALGORITHM = "ECDSA_SHA_256"


class KmsModelKey(ModelKey):
    """A KMS asymmetric key named by id, ARN or ``alias/…``."""

    algorithm = "kms-ecdsa-p256-sha256"

    def __init__(self, key_id: str, client: Any = None) -> None:
        self._client = client
        self._resource = Resource("KMS key", key_id, "PETROSTREAM_MODEL_KEY")
        self._public: ec.EllipticCurvePublicKey | None = None

    @property
    def _kms(self) -> Any:
        """A client of the standard AWS environment (region, endpoint, credentials), made at first use."""
        if self._client is None:
            session = boto3.session.Session()
            self._client = session.client("kms", region_name=session.region_name or DEFAULT_REGION,
                                          config=client_config())
        return self._client

    @property
    def key_id(self) -> str:
        return f"kms:{self._resource.name}"

    def sign(self, digest: bytes) -> bytes:
        with translated(self._resource):
            answer = self._kms.sign(KeyId=self._resource.name, Message=digest, MessageType="RAW",
                                    SigningAlgorithm=_ALGORITHM)
        return bytes(answer["Signature"])

    def verifies(self, digest: bytes, signature: bytes) -> bool:
        try:
            self._public_key().verify(signature, digest, ec.ECDSA(hashes.SHA256()))
            return True
        except InvalidSignature:
            return False

    def _public_key(self) -> ec.EllipticCurvePublicKey:
        if self._public is None:
            with translated(self._resource):
                answer = self._kms.get_public_key(KeyId=self._resource.name)
            if answer.get("KeyUsage") != "SIGN_VERIFY" or _ALGORITHM not in answer.get("SigningAlgorithms", []):
                raise ModelError(f"{self._resource}: not an ECC_NIST_P256 signing key")
            public = serialization.load_der_public_key(bytes(answer["PublicKey"]))
            if not isinstance(public, ec.EllipticCurvePublicKey):
                raise ModelError(f"{self._resource}: not an elliptic-curve key")
            self._public = public
        return self._public
