"""Model versions as objects in the model bucket (``<version>/model.joblib`` + ``manifest.json``).

S3 replaces an object atomically, so a consumer polling ``ACTIVE.json`` reads either the old
pointer or the new one; the rules (verify before publish, history, roll back, refuse a
tampered artifact) are :class:`engine.model_store.ModelStore`'s.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from engine.backends.aws._errors import Resource, error_code, translated
from engine.model_store import ModelStore

__all__ = ["S3ModelStore"]

_MANIFEST_SUFFIX = "/manifest.json"


class S3ModelStore(ModelStore):
    """Blobs are objects of one bucket."""

    def __init__(self, client: Any, bucket: Resource) -> None:
        self._s3 = client
        self._bucket = bucket

    def _put(self, key: str, data: bytes) -> None:
        with translated(self._bucket):
            self._s3.put_object(Bucket=self._bucket.name, Key=key, Body=data)

    def _get(self, key: str) -> bytes | None:
        with translated(self._bucket):
            try:
                return self._s3.get_object(Bucket=self._bucket.name, Key=key)["Body"].read()
            except ClientError as exc:
                if error_code(exc) in ("NoSuchKey", "404"):
                    return None
                raise

    def _version_names(self) -> list[str]:
        names = []
        with translated(self._bucket):
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket.name):
                names += [entry["Key"].removesuffix(_MANIFEST_SUFFIX) for entry in page.get("Contents", [])
                          if entry["Key"].endswith(_MANIFEST_SUFFIX) and entry["Key"].count("/") == 1]
        return names
