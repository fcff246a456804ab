"""The lake on S3: Parquet in the curated bucket, read by Athena through symlink manifests.

Layout::

    <table>/date=YYYY-MM-DD/<batch key>-<unique>.parquet   a batch's rows of that date
    <table>/date=YYYY-MM-DD/compacted-T<n>-<unique>.parquet many final files merged (tier n)
    _symlinks/<table>/date=YYYY-MM-DD/manifest              the partition's live files: what Athena reads
    _manifests/<table>/<batch key>.json                     the files a batch (or merge) owns
    _garbage/<table>/<retired at, ms>-<unique>.json         replaced files, deleted after a grace period
    _locks/<table>.json                                     held while a worker compacts the table

**What readers see.** Each Glue partition's location is its ``_symlinks/`` folder, and the table
is a ``SymlinkTextInputFormat`` table over Parquet: Athena reads exactly the files the
partition's manifest lists, never a folder listing. Every change a reader may see — a batch
landing, its retry replacing an earlier attempt, a compaction swapping many files for one — is
one PUT of that manifest, conditional on the ETag the writer read (``If-Match``; a writer that
lost the race reads again and reapplies its change), so a query sees a partition before or
after a change, never half of it. Data files get new names on every write and are deleted only
after :data:`GRACE_SECONDS`, so a query that read the previous manifest still finds its files.

**Exactly once.** A consumer's batch is written in two steps around its fenced checkpoint
(:class:`engine.lake.Lake`): :meth:`S3Lake.stage` writes its data, which no manifest lists, and
names the attempt with where its files are (the lease keeps that name as ``pending``);
:meth:`S3Lake.publish`, after the checkpoint succeeded, writes each table's batch manifest
(listing, as ``stale``, files an earlier write of the key left), swaps the symlinks and retires
the stale files. An attempt whose checkpoint was refused is discarded unseen. A publish cut
short is finished by whoever holds the lease next (it publishes ``pending`` again: what is done
already is skipped), and a publisher that lost its lease stops before its next symlink PUT
(``_swap_symlink``).

A merge's manifest is written first with the members it replaces (``replaces``), then the merged
data, then the symlink swap, then the members are retired; a merge cut short is rolled forward
(merged data present) or back (absent) by the next compaction, under a table-wide lock (a
conditional S3 write, taken over once it expires).

Firehose, not this lake, copies the raw stream into the raw bucket.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from engine.backends.aws._errors import Resource, error_code, translated
from engine.backends.aws._glue import SYMLINKS, GlueCatalog
from engine.lake import Lake, LakeFile, Merge, attempt_batch_key, concatenate, parquet_options
from engine.schema import LAKE_TABLES, PARTITION_COLUMN

__all__ = ["GRACE_SECONDS", "S3Lake"]

MANIFESTS = "_manifests"
GARBAGE = "_garbage"
LOCKS = "_locks"
SYMLINK_NAME = "manifest"
#: A compaction lock older than this is taken over (its holder is presumed dead).
LOCK_SECONDS = 600.0
#: Replaced data files stay this long after the manifest stops listing them, so queries that
#: planned on the older manifest finish (Athena's default DML timeout is 30 minutes).
GRACE_SECONDS = 3600.0
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
        self._symlinks: dict[str, tuple[str, list[str]]] = {}
        self._owner = uuid.uuid4().hex
        self._held: dict[str, dict[str, _Manifest]] = {}

    @staticmethod
    def data_key(table: str, partition: str, stem: str) -> str:
        return f"{table}/{PARTITION_COLUMN}={partition}/{stem}.parquet"

    def live_files(self, table: str, partition: str) -> list[str]:
        """The data keys a partition's symlink manifest lists (what a query reads now)."""
        return self._read_symlink(_symlink_key(table, partition))[1]

    # -- writing --------------------------------------------------------------------
    def _stage(self, attempt: str, batch_key: str, parts: dict[str, dict[str, pa.Table]]) -> str:
        """The attempt's data files, listed nowhere; its name carries where they are (``#`` and,
        per table, each partition and its rows), so whoever publishes it finds them without a
        request, and staging costs no PUT beyond the data."""
        for table, by_day in parts.items():
            self._catalog.add_partitions(table, by_day)
            for partition, rows in by_day.items():
                self._put_parquet(table, self.data_key(table, partition, attempt), rows)
        where = {table: sorted([partition, rows.num_rows] for partition, rows in by_day.items())
                 for table, by_day in sorted(parts.items())}
        return f"{attempt}#{json.dumps(where, separators=(',', ':'))}"

    def _staged_files(self, staged: str) -> tuple[str, dict[str, dict[str, _File]]]:
        attempt, _, where = staged.partition("#")
        return attempt, {table: {self.data_key(table, partition, attempt): _File(partition, rows)
                                 for partition, rows in by_day} for table, by_day in json.loads(where).items()}

    def publish(self, attempt: str, fence: Callable[[], bool] | None = None) -> None:
        """Per table: the batch manifest (written only when it changes), then the symlink swaps.

        Publishing again finds both done and changes nothing. With a ``fence``, every symlink PUT
        is conditional on the symlink as read and made only if the fence held after that read:
        compaction merges a batch only after the shard's next checkpoint, which a stalled
        publisher's fence sees, so it never lists merged files again (``_swap_symlink``). The
        fence is asked once at the start; symlinks this process read before that need no second look.
        """
        name, files = self._staged_files(attempt)
        read_before = dict(self._symlinks)
        if fence is not None and not fence():
            return

        def still_entitled(symlink: str, etag: str | None) -> bool:
            known = read_before.get(symlink)
            return fence is None or (etag is not None and known is not None and known[0] == etag) or fence()

        for table, table_files in sorted(files.items()):
            if not self._replace_batch(table, attempt_batch_key(name), table_files, still_entitled):
                return

    def discard(self, attempt: str) -> None:
        """Delete the files of an attempt never published (no manifest lists them)."""
        self._delete([key for files in self._staged_files(attempt)[1].values() for key in files])

    def _staged_attempts(self) -> list[tuple[str, float]]:
        """None are recorded: an attempt's files are known from its name, which only its writer
        and the lease hold. Files of an attempt whose writer died before its checkpoint are in no
        manifest and are never read; they stay in the bucket (a few KB per such crash)."""
        return []

    def _replace_batch(self, table: str, batch_key: str, files: dict[str, _File],
                       still_entitled: Callable[[str, str | None], bool]) -> bool:
        """Make ``files`` the batch key's files: its manifest (listing the replaced ones as stale),
        the readers' symlinks, then the replaced files retired; False if ``still_entitled`` failed."""
        manifest_key = _manifest_key(table, batch_key)
        previous = self._get_manifest(manifest_key)
        if not files and previous is None:
            return True  # nothing to write, nothing to replace
        stale = sorted((set(previous.files) | set(previous.stale)) - set(files)) if previous else []
        if previous is None or previous.files != files or previous.stale != stale:
            self._put_manifest(manifest_key, _Manifest(files, stale))
        if not self._publish(table, add=files, remove=stale, still_entitled=still_entitled):
            return False
        if stale:
            self._retire(table, stale)
            self._put_manifest(manifest_key, _Manifest(files))
        return True

    def row_count(self, table: str) -> int:
        return sum(f.rows for manifest in self._manifests(table).values() for f in manifest.files.values())

    # -- what readers see -----------------------------------------------------------
    def _publish(self, table: str, add: dict[str, _File], remove: Iterable[str],
                 still_entitled: Callable[[str, str | None], bool] | None = None) -> bool:
        """Add and remove data files in their partitions' symlink manifests (one conditional PUT each);
        False, with nothing more changed, once ``still_entitled`` fails."""
        changes: dict[str, tuple[list[str], set[str]]] = defaultdict(lambda: ([], set()))
        for key, file in add.items():
            changes[file.partition][0].append(key)
        for key in remove:
            changes[_partition_of(key)][1].add(key)
        return all(self._swap_symlink(_symlink_key(table, partition), added, removed, still_entitled)
                   for partition, (added, removed) in sorted(changes.items()))

    def _swap_symlink(self, key: str, added: list[str], removed: set[str],
                      still_entitled: Callable[[str, str | None], bool] | None = None) -> bool:
        """Compare-and-swap a symlink manifest: read (or take from the cache), change, PUT If-Match.

        ``still_entitled`` is asked after the read and before the PUT: if the publish was finished
        elsewhere after this read, the PUT fails on the changed ETag and the next round's check
        stops it; if it was finished before the read, the check does. Files are merged away by
        compaction only after their publish finished, so a late publisher never lists them again.
        """
        while True:
            etag, live = self._symlinks.get(key) or self._read_symlink(key)
            wanted = [k for k in live if k not in removed] + [k for k in added if k not in live]
            if wanted == live:
                return True
            if still_entitled is not None and not still_entitled(key, etag):
                self._symlinks.pop(key, None)
                return False
            body = "".join(f"s3://{self._bucket.name}/{k}\n" for k in wanted).encode()
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            with translated(self._bucket):
                try:
                    response = self._s3.put_object(Bucket=self._bucket.name, Key=key, Body=body,
                                                   ContentType="text/plain", **condition)
                except ClientError as exc:
                    if error_code(exc) not in _CONFLICT:
                        raise
                    self._symlinks.pop(key, None)  # another writer changed it: read it again
                    continue
            self._symlinks[key] = (response["ETag"], wanted)
            return True

    def _read_symlink(self, key: str) -> tuple[str | None, list[str]]:
        prefix = f"s3://{self._bucket.name}/"
        with translated(self._bucket):
            try:
                response = self._s3.get_object(Bucket=self._bucket.name, Key=key)
            except ClientError as exc:
                if error_code(exc) in _MISSING:
                    return None, []
                raise
            lines = response["Body"].read().decode().split()
        found = (response["ETag"], [line.removeprefix(prefix) for line in lines])
        self._symlinks[key] = found
        return found

    def _retire(self, table: str, keys: list[str]) -> None:
        """Schedule data files no manifest lists any more for deletion after the grace period."""
        stamp = int(time.time() * 1000)
        with translated(self._bucket):
            self._s3.put_object(Bucket=self._bucket.name, Key=f"{GARBAGE}/{table}/{stamp:015d}-{uuid.uuid4().hex}.json",
                                Body=json.dumps(sorted(keys)).encode(), ContentType="application/json")

    def _collect_garbage(self, table: str) -> None:
        cutoff = int((time.time() - GRACE_SECONDS) * 1000)
        expired = [key for key, _ in self._list(f"{GARBAGE}/{table}/")
                   if int(key.rsplit("/", 1)[-1].split("-", 1)[0]) < cutoff]
        for key in expired:
            with translated(self._bucket):
                keys = json.loads(self._s3.get_object(Bucket=self._bucket.name, Key=key)["Body"].read())
            self._delete([*keys, key])

    # -- compaction -----------------------------------------------------------------
    @contextmanager
    def _compaction(self, table: str) -> Iterator[list[LakeFile] | None]:
        lock = self._lock(table)
        if lock is None:
            yield None
            return
        try:
            manifests = self._manifests(table)
            for stem, manifest in list(manifests.items()):
                if manifest.replaces:
                    self._finish_merge(table, stem, manifest, manifests)
            self._collect_garbage(table)
            self._held[table] = manifests
            yield [LakeFile(file.partition, batch_key, key, file.rows)
                   for batch_key, manifest in manifests.items() for key, file in manifest.files.items()]
        finally:
            self._held.pop(table, None)
            self._unlock(table, lock)

    def _merge(self, table: str, merge: Merge) -> bool:
        """Stream the members' row groups into one file on local disk, then publish it in their place.

        Only files readers see are merged. A batch manifest can name a file the symlink does not
        list only if a process that paused inside a publish, long enough for the batch to be
        merged meanwhile, rewrote the manifest when it resumed (its symlink PUT is refused): such
        entries are dropped here, and the merge is planned again without them next pass.
        """
        manifests = self._held[table]
        live = set(self.live_files(table, merge.partition))
        ghosts = [member for member in merge.members if member.path not in live]
        for ghost in ghosts:
            owner = manifests.get(ghost.batch_key)
            if owner is not None and owner.files.pop(ghost.path, None) is not None:
                self._put_manifest(_manifest_key(table, ghost.batch_key), owner)
        if ghosts:
            return False
        key = self.data_key(table, merge.partition, merge.batch_key)
        intent = _Manifest({key: _File(merge.partition, merge.rows)},
                           replaces={m.batch_key: m.path for m in merge.members})
        self._put_manifest(_manifest_key(table, merge.batch_key), intent)
        with tempfile.TemporaryFile() as merged:
            concatenate(self._downloads(m.path for m in merge.members), LAKE_TABLES[table].schema, merged)
            merged.seek(0)
            with translated(self._bucket):
                self._s3.put_object(Bucket=self._bucket.name, Key=key, Body=merged,
                                    ContentType="application/vnd.apache.parquet")
        manifests[merge.batch_key] = intent
        self._finish_merge(table, merge.batch_key, intent, manifests)
        return True

    def _downloads(self, keys: Iterable[str]) -> Iterator[Any]:
        """Each object as a local temporary file, one at a time (memory stays one row group).

        One streamed GET each: the transfer manager's ``download_fileobj`` sends a HEAD first,
        a second billed request per file for objects this small."""
        for key in keys:
            with tempfile.TemporaryFile() as local:
                with translated(self._bucket):
                    shutil.copyfileobj(self._s3.get_object(Bucket=self._bucket.name, Key=key)["Body"], local)
                local.seek(0)
                yield local

    def _finish_merge(self, table: str, stem: str, merged: _Manifest, manifests: dict[str, _Manifest]) -> None:
        """Publish a merge whose data is in and retire its members; undo a merge whose data never arrived."""
        if not all(self._exists(key) for key in merged.files):
            self._delete([_manifest_key(table, stem)])
            del manifests[stem]
            return
        self._publish(table, add=merged.files, remove=merged.replaces.values())
        for batch_key, key in merged.replaces.items():
            member = manifests.get(batch_key)
            if member is not None and key in member.files:
                del member.files[key]
                if member.files or member.stale:
                    self._put_manifest(_manifest_key(table, batch_key), member)
                else:
                    self._delete([_manifest_key(table, batch_key)])
                    del manifests[batch_key]
        self._retire(table, list(merged.replaces.values()))
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
        buffer = pa.BufferOutputStream()
        schema = LAKE_TABLES[table].schema
        pq.write_table(rows.cast(schema), buffer, **parquet_options(schema, batch=True))
        with translated(self._bucket):
            self._s3.put_object(Bucket=self._bucket.name, Key=key, Body=buffer.getvalue().to_pybytes(),
                                ContentType="application/vnd.apache.parquet")

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
        """Delete objects one request each; keys already gone are fine.

        S3 bills a DELETE nothing, while a multi-object delete (``DeleteObjects``) is a POST billed
        at the PUT rate: the lake deletes a handful of keys at a time (a merge's members, a batch of
        garbage), so single deletes cost nothing where one batch call would cost a PUT.
        """
        with translated(self._bucket):
            for key in keys:
                self._s3.delete_object(Bucket=self._bucket.name, Key=key)


def _manifest_key(table: str, batch_key: str) -> str:
    return f"{MANIFESTS}/{table}/{batch_key}.json"


def _symlink_key(table: str, partition: str) -> str:
    return f"{SYMLINKS}/{table}/{PARTITION_COLUMN}={partition}/{SYMLINK_NAME}"


def _partition_of(data_key: str) -> str:
    """The partition value in ``<table>/date=<value>/<file>``."""
    return data_key.split("/")[1].removeprefix(f"{PARTITION_COLUMN}=")
