"""Consumer state blobs as S3 objects, next to the lake they describe.

A shard's state holds every well's feature, de-duplication and alarm memory: about a
kilobyte per well, so it cannot live in the DynamoDB lease item (400 KB at most, and every
renewal would rewrite it). Each checkpoint's state is one object,
``_consumer-state/<application>/<shard>/<ref>.zlib``, written once under a new name and
deleted when a later checkpoint replaces it (:mod:`engine.leases` keeps that order). One PUT
per checkpoint; DELETE requests are free.
"""

from __future__ import annotations

import zlib
from typing import Any

from botocore.exceptions import ClientError

from engine.backends.aws._errors import Resource, error_code, translated

__all__ = ["STATE_PREFIX", "S3StateObjects"]

STATE_PREFIX = "_consumer-state"
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


class S3StateObjects:
    """The state blobs of one consumer application in one bucket (zlib: the JSON is repetitive)."""

    def __init__(self, client: Any, bucket: Resource, application: str) -> None:
        self._s3 = client
        self._bucket = bucket
        self._prefix = f"{STATE_PREFIX}/{application}/"

    def key(self, shard_id: str, ref: str) -> str:
        return f"{self._prefix}{shard_id}/{ref}.zlib"

    def put(self, shard_id: str, ref: str, state: bytes) -> None:
        with translated(self._bucket):
            self._s3.put_object(Bucket=self._bucket.name, Key=self.key(shard_id, ref), Body=zlib.compress(state))

    def get(self, shard_id: str, ref: str) -> bytes | None:
        with translated(self._bucket):
            try:
                body = self._s3.get_object(Bucket=self._bucket.name, Key=self.key(shard_id, ref))["Body"].read()
            except ClientError as exc:
                if error_code(exc) in _MISSING:
                    return None
                raise
        return zlib.decompress(body)

    def delete(self, shard_id: str, ref: str) -> None:
        with translated(self._bucket):
            self._s3.delete_object(Bucket=self._bucket.name, Key=self.key(shard_id, ref))
