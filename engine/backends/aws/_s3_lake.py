"""The lake on S3: Parquet in the curated bucket, date partitions registered in Glue.

Layout (Athena reads everything under a registered partition's location)::

    <table>/date=YYYY-MM-DD/<batch key>.parquet         a batch's rows of that date
    <table>/date=YYYY-MM-DD/compacted-<digest>.parquet  many final batches merged
    _manifests/<table>/<batch key>.json                 the files a batch (or merge) owns
    _locks/<table>.json                                 held while a worker compacts the table

A batch's data keys are derived from its batch key, so a retry overwrites what the lost
attempt wrote in each partition. The attempt may also have written partitions the retry
does not (different rows), so the batch's manifest lists its files and is written *before*
the data, carrying every file an earlier attempt may have left (``stale``); those are
deleted after the new data is in. A crash at any point leaves a manifest that names every
file the batch may own, and the retry cleans up after it.

Compaction merges a partition's final batches into one file under a table-wide lock (a
conditional S3 write, taken over once it expires). The merged file's manifest is written
first with the members it replaces, then the merged data, then the members are retired;
a compaction interrupted half way is rolled forward (merged data present) or back (absent)
by the next one. S3 has no multi-object transaction: a query running during those few
hundred milliseconds can see a merged row twice, or a retried batch's old rows of another
date (the local backend's SQLite manifest swaps atomically; an Iceberg table would here).

Firehose, not this lake, copies the raw stream into the raw bucket.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from engine.backends.aws._errors import Resource, error_code, translated
from engine.backends.aws._glue import GlueCatalog
from engine.lake import COMPACT_MIN_FILES, COMPACTED_PREFIX, CompactionReport, Lake, parquet_options
from engine.schema import LAKE_TABLES, PARTITION_COLUMN

__all__ = ["S3Lake"]

MANIFESTS = "_manifests"
LOCKS = "_locks"
#: A compaction lock older than this is taken over (its holder is presumed dead).
LOCK_SECONDS = 600.0
_CONFLICT = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


@dataclass(frozen=True)
class _File:
    partition: str
    rows: int


@dataclass
class _Manifest:
    """Files a batch owns (key -> partition, rows), files it may have left behind, members it merged."""

    files: dict[str, _File]
    stale: list[str] = field(default_factory=list)
    replaces: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps({"files": {k: asdict(f) for k, f in self.files.items()}, "stale": self.stale,
                           "replaces": self.replaces}, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> _Manifest:
        data = json.loads(raw)
        return cls({k: _File(**f) for k, f in data["files"].items()}, data.get("stale", []),
                   data.get("replaces", {}))


class S3Lake(Lake):
    """Lake tables in one bucket, catalogued in Glue."""

    def __init__(self, client: Any, bucket: Resource, catalog: GlueCatalog) -> None:
        self._s3 = client
        self._bucket = bucket
        self._catalog = catalog
        self._cache: dict[str, tuple[str, bytes]] = {}
        self._owner = uuid.uuid4().hex

    @staticmethod
    def data_key(table: str, partition: str, stem: str) -> str:
        return f"{table}/{PARTITION_COLUMN}={partition}/{stem}.parquet"

    # -- writing --------------------------------------------------------------------
    def _write_partitions(self, table: str, batch_key: str, parts: dict[str, pa.Table]) -> None:
        manifest_key = _manifest_key(table, batch_key)
        previous = self._get_manifest(manifest_key)
        if not parts and previous is None:
            return  # nothing to write, nothing to replace
        files = {self.data_key(table, partition, batch_key): _File(partition, rows.num_rows)
                 for partition, rows in parts.items()}
        left = set(previous.files) | set(previous.stale) if previous else set()
        stale = sorted(left - set(files))
        self._catalog.add_partitions(table, parts)
        self._put_manifest(manifest_key, _Manifest(files, stale))
        for partition, rows in parts.items():
            self._put_parquet(table, self.data_key(table, partition, batch_key), rows)
        if stale:
            self._delete(stale)
            self._put_manifest(manifest_key, _Manifest(files))

    def row_count(self, table: str) -> int:
        return sum(f.rows for manifest in self._manifests(table).values() for f in manifest.files.values())

    # -- compaction -----------------------------------------------------------------
    def compact(self, table: str, is_final: Callable[[str], bool]) -> CompactionReport:
        lock = self._lock(table)
        if lock is None:
            return CompactionReport(0, 0, 0)  # another worker is compacting this table
        try:
            manifests = self._manifests(table)
            for stem, manifest in list(manifests.items()):
                if manifest.replaces:
                    self._finish_merge(table, stem, manifest, manifests)
            members: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
            for batch_key, manifest in manifests.items():
                if is_final(batch_key):
                    for key, file in manifest.files.items():
                        members[file.partition].append((batch_key, key, file.rows))
            before = after = 0
            for partition, group in sorted(members.items()):
                if len(group) >= COMPACT_MIN_FILES:
                    self._merge(table, partition, sorted(group), manifests)
                    before, after = before + len(group), after + 1
            return CompactionReport(after, before, after)
        finally:
            self._unlock(table, lock)

    def _merge(self, table: str, partition: str, group: list[tuple[str, str, int]],
               manifests: dict[str, _Manifest]) -> None:
        """Replace a partition's files of final batches (in batch-key order) by one file."""
        schema = LAKE_TABLES[table].schema
        merged = pa.concat_tables([self._get_parquet(key).cast(schema) for _, key, _ in group])
        digest = hashlib.sha256("\n".join(sorted(key for _, key, _ in group)).encode()).hexdigest()[:20]
        stem = f"{COMPACTED_PREFIX}{digest}"
        intent = _Manifest({self.data_key(table, partition, stem): _File(partition, merged.num_rows)},
                           replaces={batch_key: key for batch_key, key, _ in group})
        self._put_manifest(_manifest_key(table, stem), intent)
        self._put_parquet(table, self.data_key(table, partition, stem), merged)
        manifests[stem] = intent
        self._finish_merge(table, stem, intent, manifests)

    def _finish_merge(self, table: str, stem: str, merged: _Manifest, manifests: dict[str, _Manifest]) -> None:
        """Retire the members of a merge whose data is in; undo a merge whose data never arrived."""
        if not all(self._exists(key) for key in merged.files):
            self._delete([_manifest_key(table, stem)])
            del manifests[stem]
            return
        for batch_key, key in merged.replaces.items():
            member = manifests.get(batch_key)
            if member is not None and key in member.files:
                del member.files[key]
                if member.files or member.stale:
                    self._put_manifest(_manifest_key(table, batch_key), member)
                else:
                    self._delete([_manifest_key(table, batch_key)])
                    del manifests[batch_key]
        self._delete(list(merged.replaces.values()))
        merged.replaces = {}
        self._put_manifest(_manifest_key(table, stem), merged)

    def _lock(self, table: str) -> str | None:
        """Take the table's compaction lock (or one that expired); its ETag, or None if it is held."""
        key = f"{LOCKS}/{table}.json"
        body = json.dumps({"owner": self._owner, "expires_at": time.time() + LOCK_SECONDS}).encode()
        with translated(self._bucket):
            try:
                return self._s3.put_object(Bucket=self._bucket.name, Key=key, Body=body, IfNoneMatch="*")["ETag"]
            except ClientError as exc:
                if error_code(exc) not in _CONFLICT:
                    raise
            try:
                held = self._s3.get_object(Bucket=self._bucket.name, Key=key)
                if json.loads(held["Body"].read())["expires_at"] > time.time():
                    return None
                return self._s3.put_object(Bucket=self._bucket.name, Key=key, Body=body,
                                           IfMatch=held["ETag"])["ETag"]
            except ClientError as exc:
                if error_code(exc) in _CONFLICT | _MISSING:
                    return None  # released or taken over meanwhile; try again next time
                raise

    def _unlock(self, table: str, etag: str) -> None:
        with translated(self._bucket):
            try:
                self._s3.delete_object(Bucket=self._bucket.name, Key=f"{LOCKS}/{table}.json", IfMatch=etag)
            except ClientError as exc:
                if error_code(exc) not in _CONFLICT | _MISSING:
                    raise

    # -- objects --------------------------------------------------------------------
    def _manifests(self, table: str) -> dict[str, _Manifest]:
        """Batch key -> manifest for every batch of a table (unchanged ones read from the cache)."""
        prefix = f"{MANIFESTS}/{table}/"
        listed = dict(self._list(prefix))
        found = {}
        for key, etag in listed.items():
            cached = self._cache.get(key)
            manifest = _Manifest.from_json(cached[1]) if cached and cached[0] == etag else self._get_manifest(key)
            if manifest is not None:  # else deleted since the listing
                found[key[len(prefix):-len(".json")]] = manifest
        self._cache = {k: v for k, v in self._cache.items() if not k.startswith(prefix) or k in listed}
        return found

    def _list(self, prefix: str) -> Iterator[tuple[str, str]]:
        with translated(self._bucket):
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket.name, Prefix=prefix):
                for entry in page.get("Contents", []):
                    yield entry["Key"], entry["ETag"]

    def _get_manifest(self, key: str) -> _Manifest | None:
        with translated(self._bucket):
            try:
                response = self._s3.get_object(Bucket=self._bucket.name, Key=key)
            except ClientError as exc:
                if error_code(exc) in _MISSING:
                    return None
                raise
            raw = response["Body"].read()
        self._cache[key] = (response["ETag"], raw)
        return _Manifest.from_json(raw)

    def _put_manifest(self, key: str, manifest: _Manifest) -> None:
        with translated(self._bucket):
            self._s3.put_object(Bucket=self._bucket.name, Key=key, Body=manifest.to_json(),
                                ContentType="application/json")

    def _put_parquet(self, table: str, key: str, rows: pa.Table) -> None:
        buffer = io.BytesIO()
        schema = LAKE_TABLES[table].schema
        pq.write_table(rows.cast(schema), buffer, **parquet_options(schema))
        with translated(self._bucket):
            self._s3.put_object(Bucket=self._bucket.name, Key=key, Body=buffer.getvalue(),
                                ContentType="application/vnd.apache.parquet")

    def _get_parquet(self, key: str) -> pa.Table:
        with translated(self._bucket):
            body = self._s3.get_object(Bucket=self._bucket.name, Key=key)["Body"].read()
        return pq.read_table(io.BytesIO(body))

    def _exists(self, key: str) -> bool:
        with translated(self._bucket):
            try:
                self._s3.head_object(Bucket=self._bucket.name, Key=key)
            except ClientError as exc:
                if error_code(exc) in _MISSING:
                    return False
                raise
        return True

    def _delete(self, keys: list[str]) -> None:
        """Delete objects (1,000 per call, S3's limit); keys already gone are fine."""
        with translated(self._bucket):
            for start in range(0, len(keys), 1000):
                response = self._s3.delete_objects(Bucket=self._bucket.name, Delete={
                    "Objects": [{"Key": key} for key in keys[start:start + 1000]], "Quiet": True})
                if errors := response.get("Errors"):
                    raise ClientError({"Error": {"Code": errors[0].get("Code", ""),
                                                 "Message": errors[0].get("Message", "")}}, "DeleteObjects")


def _manifest_key(table: str, batch_key: str) -> str:
    return f"{MANIFESTS}/{table}/{batch_key}.json"
