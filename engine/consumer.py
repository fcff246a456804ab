"""The stream consumer: read a micro-batch, score it, land it in the lake, then checkpoint.

This is the process that runs as the ECS service. Its guarantees:

* **Exactly once in the lake per (well_id, event_time).** Reading is at-least-once; the lake
  write of a batch is idempotent under a key made of the shard and the batch's first
  sequence number; and each well's last landed event time is checkpointed with the feature
  state, so rows the producer sent twice are dropped as already seen.
* **Partial failures stay partial.** A record that does not decode or validate goes to the
  dead-letter table with the reason; the rest of the batch flows.
* **Hot model swap.** The active model version is polled; a new one is loaded between
  batches, and one that fails verification is refused while the current one keeps serving.
* **Clean stop.** On SIGTERM the current batch finishes, is checkpointed, and the leases are
  released so another worker takes the shards at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine import arrow_numpy, codec
from engine.alarms import AlarmPolicy, update_alarms
from engine.backend import Backend
from engine.errors import InputError, PetroStreamError, TransientError
from engine.features import StateEncoder, WellState, decode_states
from engine.lake import attempt_batch_key
from engine.leases import Lease, LeaseLost
from engine.model import Model
from engine.outage import Outage
from engine.schema import (
    ANOMALY_EVENT_VERSIONS_TABLE,
    DEAD_LETTER_SCHEMA,
    DEAD_LETTERS_TABLE,
    OBSERVATION_SCHEMA,
    WELL_DATA_TABLE,
)
from engine.scoring import score_and_explain
from engine.stream import StreamRecord
from engine.well_rows import well_rows

log = logging.getLogger("petrostream.consumer")
_MILLIS_PER_HOUR = 3_600_000
#: Bytes of a record of the producer's 2,000 observations (demo data; 3W's are about the same).
_FULL_RECORD_BYTES = 50_000


@dataclass(frozen=True)
class ConsumerOptions:
    """How a consumer worker paces itself.

    A shard's records are gathered into one batch for ``batch_seconds`` from the first record,
    or until they hold ``batch_bytes``, whichever comes first. Every batch costs a lake write
    per table and a checkpoint (on AWS: S3 PUTs and a DynamoDB write), so a real-time stream
    gathered for 15 s costs a fraction of one committed every read; locally the default of 0
    commits every read at once, for the lowest latency.
    """

    #: Records one read may ask for. A read asks for as many records as :attr:`read_bytes` holds at
    #: the size of the records read last, so that a batch (one read, when not gathering) costs the
    #: same per observation whether its records carry 2,000 observations of a long-lived well or a
    #: few dozen of each of many short-lived wells: every batch costs a lake write per table and a
    #: checkpoint, and 25 records of 3W's 180-row instances made batches ten times smaller.
    records_per_read: int = 1000
    #: Bytes one read aims at: about what the 25 records a read asked for before held of long-lived
    #: wells (records of up to 2,000 observations, 47 KB on average in the demo data), so a batch of
    #: them, and the consumer's peak memory, stay the size they were.
    read_bytes: int = 1024 * 1024
    batch_seconds: float = 0.0
    #: Encoded record bytes after which a gathering batch is committed at once (memory stays
    #: bounded: about 25 bytes per observation on the wire, so 4 MiB is some 160k rows).
    batch_bytes: int = 4 * 1024 * 1024
    #: While a batch gathers, a caught-up shard is read again after this long (as the KCL does).
    gather_poll_seconds: float = 1.0
    idle_exit_seconds: float | None = None
    poll_seconds: float = 0.2
    model_poll_seconds: float = 5.0
    #: Each pass locks, lists and unlocks every table (on AWS: a dozen S3 requests even with nothing
    #: to merge), so it runs every few minutes: every minute was some 0.5 M S3 requests a month.
    housekeeping_every_seconds: float = 180.0
    #: A pass compacts the tables this worker landed rows in since its last pass; every table (an
    #: idle one's garbage, a merge a dead worker cut short) only this often, as its pass costs a
    #: lock and two listings even when there is nothing to do: at demo load the alarm and dead-letter
    #: tables are mostly idle, and passing over them every time was some 90,000 S3 requests a month.
    every_table_housekeeping_seconds: float = 3600.0


@dataclass
class _Gathering:
    """Records read from a shard but not yet committed, and when they must be."""

    records: list[StreamRecord] = field(default_factory=list)
    size: int = 0
    due: float = 0.0

    def add(self, records: list[StreamRecord], due: float) -> int:
        """Gather ``records``; the bytes they hold."""
        if records and not self.records:
            self.due = due
        self.records += records
        size = sum(len(record.data) for record in records)
        self.size += size
        return size


@dataclass
class ConsumerStats:
    """Counters a worker exposes (status line, health endpoint)."""

    batches: int = 0
    rows_landed: int = 0
    duplicates_dropped: int = 0
    dead_letters: int = 0
    model_version: str | None = None
    started_at: float = field(default_factory=time.time)
    last_batch_at: float | None = None
    #: When the main loop last completed an iteration (epoch s): what ``/health`` judges.
    last_iteration_at: float | None = None
    #: Outages ridden out so far, and when the current one began (None: none now).
    outages: int = 0
    outage_since: float | None = None


@dataclass
class _Due:
    """When the loop's periodic chores are next due (monotonic seconds)."""

    model_check: float = 0.0
    balance: float = 0.0
    housekeeping: float = 0.0
    every_table_housekeeping: float = 0.0


def batch_key(shard_id: str, first_sequence: str) -> str:
    """Lake key of a micro-batch; a retry of the same batch maps to the same key."""
    return f"{shard_id}@{int(first_sequence):030d}"


def is_final(key: str, checkpoints: dict[str, str | None]) -> bool:
    """Whether a lake batch can never be re-written: it starts at or before its shard's checkpoint."""
    shard_id, _, first = key.partition("@")
    checkpoint = checkpoints.get(shard_id)
    return bool(first) and checkpoint is not None and int(first) <= int(checkpoint)


class Consumer:
    """One worker. Several workers (processes or ECS tasks) split the shards through leases."""

    def __init__(self, backend: Backend, options: ConsumerOptions = ConsumerOptions(),
                 worker_id: str | None = None) -> None:
        self.backend = backend
        self.options = options
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.stats = ConsumerStats()
        self._model: Model | None = None
        #: The active version last refused (bad signature, manifest or artifact): not retried until it changes.
        self._refused: str | None = None
        self._leases: dict[str, Lease] = {}
        self._next_read: dict[str, float] = {}
        self._gathering: dict[str, _Gathering] = {}
        #: Shard -> (state ref, per-well states) of the last checkpoint this worker made or loaded.
        self._states: dict[str, tuple[str | None, dict[str, WellState]]] = {}
        self._encoders: dict[str, StateEncoder] = {}
        #: Shard -> the lake attempt this worker published last (see :meth:`_roll_forward`).
        self._published: dict[str, str] = {}
        self._due = _Due()
        #: Tables this worker landed rows in since its last housekeeping pass.
        self._landed: set[str] = set()
        self._outage = Outage(f"consumer {self.worker_id}")
        #: Mean size of the records read last (before the first read: a record of 2,000 observations).
        self._record_bytes = _FULL_RECORD_BYTES

    # -- main loop ----------------------------------------------------------------
    def run(self, stop: threading.Event) -> ConsumerStats:
        """Consume until ``stop`` is set or, with ``idle_exit_seconds``, the whole stream stays drained that long.

        A transient backend failure (throttling, a 5xx, a dropped connection) does not end the
        loop: the iteration is retried after a back-off (:mod:`engine.outage`), starting with
        renewing the leases. Work cut short is redone from the last checkpoint, and the lake
        write of a batch is idempotent, so every row still lands once. Other backend errors end it.
        """
        idle_since = time.monotonic()
        self._due = _Due()
        try:
            self._claim_early()
            while not stop.is_set():
                try:
                    worked = self._iteration(stop)
                    drained = not worked and self._stream_drained()
                except TransientError as exc:
                    self.stats.outage_since = self.stats.outage_since or time.time()
                    self._outage.failed(exc, stop)
                    self._due.balance = 0.0  # renew (or retake) the leases first when it answers again
                    continue
                self._outage.succeeded()
                self.stats.outages = self._outage.count
                self.stats.outage_since = None
                self.stats.last_iteration_at = time.time()
                if worked or not drained:
                    idle_since = time.monotonic()
                if not worked:
                    if self._idle_too_long(idle_since):
                        break
                    stop.wait(self.options.poll_seconds)
        finally:
            self._shutdown()
        return self.stats

    def _iteration(self, stop: threading.Event) -> bool:
        """One pass: model check, lease balance, a batch per due shard, housekeeping when due."""
        now = time.monotonic()
        if now >= self._due.model_check:
            self._refresh_model()
            self._due.model_check = now + self.options.model_poll_seconds
        if now >= self._due.balance:
            self._balance()
            self._due.balance = now + self.backend.leases.lease_seconds / 3
        worked = False
        for shard_id in sorted(self._leases):
            if stop.is_set():
                break
            if time.monotonic() >= self._next_read.get(shard_id, 0.0):
                worked |= self._consume_shard(shard_id)
        if time.monotonic() >= self._due.housekeeping:
            every_table = time.monotonic() >= self._due.every_table_housekeeping
            self.housekeeping(None if every_table else self._landed)
            self._due.housekeeping = time.monotonic() + self.options.housekeeping_every_seconds
            if every_table:
                self._due.every_table_housekeeping = time.monotonic() + self.options.every_table_housekeeping_seconds
        return worked

    def _claim_early(self) -> None:
        """Heartbeat and take a share of the leases before the first model load (seconds of imports
        and unpickling), to be balanced again after it: workers started together then see each other
        before either reads a record, instead of the first taking every shard and losing a scored
        batch per shard the second steals. An outage now is left to the main loop's first balance."""
        with contextlib.suppress(TransientError):
            self._balance()

    def _idle_too_long(self, idle_since: float) -> bool:
        limit = self.options.idle_exit_seconds
        return limit is not None and time.monotonic() - idle_since >= limit

    def _stream_drained(self) -> bool:
        """No shard has records after its checkpoint (including shards a dead worker still holds)."""
        if self.options.idle_exit_seconds is None:
            return True
        checkpoints = {lease.shard_id: lease.checkpoint for lease in self.backend.leases.leases()}
        return all(self.backend.stream.backlog(shard_id, checkpoints.get(shard_id)) == 0
                   for shard_id in self.backend.stream.shard_ids())

    def _balance(self) -> None:
        held = self.backend.leases.balance(self.worker_id, self.backend.stream.shard_ids())
        self._leases = {lease.shard_id: lease for lease in held}
        for lost in set(self._gathering) - set(self._leases):
            self._drop(lost)
        for lease in held:
            self._roll_forward(lease)

    def _roll_forward(self, lease: Lease) -> None:
        """Publish the lake attempt the lease's last checkpoint committed, unless this worker did:
        its writer (another worker, or this one before a crash or an outage) may have stopped
        between the checkpoint and the publish. Publishing an attempt again changes nothing."""
        if lease.pending is not None and self._published.get(lease.shard_id) != lease.pending:
            self.backend.lake.publish(lease.pending, fence=lambda: self.backend.leases.holds(lease))
            self._published[lease.shard_id] = lease.pending

    def _shutdown(self) -> None:
        """Commit what has gathered, compact, release the leases and retire; in an outage, leave it
        to the leases' expiry."""
        try:
            for shard_id in sorted(self._gathering):
                if shard_id in self._leases and self._gathering[shard_id].records:
                    self._commit(shard_id)
            self.housekeeping()
            for lease in self._leases.values():
                self.backend.leases.release(lease)
            self.backend.leases.retire(self.worker_id)
        except TransientError as exc:
            log.warning("stopping without releasing leases (they expire in %.0f s): %s",
                        self.backend.leases.lease_seconds, exc)
        self._leases = {}

    # -- one micro-batch ------------------------------------------------------------
    def _consume_shard(self, shard_id: str) -> bool:
        """Read a shard's next records into its gathering batch; commit the batch once it is due or full."""
        gathering = self._gathering.setdefault(shard_id, _Gathering())
        after = gathering.records[-1].sequence_number if gathering.records else self._leases[shard_id].checkpoint
        limit = self._read_limit()
        records = self.backend.stream.get_records(shard_id, after, limit)
        now = time.monotonic()
        size = gathering.add(records, now + self.options.batch_seconds)
        caught_up = len(records) < limit
        if records:
            self._record_bytes = max(size / len(records), 1.0)  # an empty record is a dead letter, not a crash
        if not gathering.records:
            if self.options.batch_seconds > 0:  # an idle shard is polled like a gathering one
                self._next_read[shard_id] = now + self.options.gather_poll_seconds
            return False
        if gathering.size < self.options.batch_bytes and now < gathering.due:
            if caught_up:  # let the batch gather
                self._next_read[shard_id] = min(gathering.due, now + self.options.gather_poll_seconds)
            return bool(records)
        self._commit(shard_id)
        return True

    def _read_limit(self) -> int:
        """Records the next read asks for: :attr:`ConsumerOptions.read_bytes` at the last read's record size."""
        return max(1, min(self.options.records_per_read, round(self.options.read_bytes / self._record_bytes)))

    def _commit(self, shard_id: str) -> None:
        """Score the gathered records, stage them in the lake, checkpoint (the fence), then publish:
        the exactly-once order. A worker whose lease was taken meanwhile discards its batch unseen."""
        records = self._gathering.pop(shard_id).records
        lease = self._leases[shard_id]
        attempt = None
        try:
            states = self._load_states(lease)
            observations, dead = _decode_all(records)
            fresh = _drop_seen(observations, states)
            self.stats.duplicates_dropped += (observations.num_rows if observations else 0) - fresh.num_rows
            rows, evidence = score_and_explain(fresh, states, self._model)
            policy = AlarmPolicy.from_manifest(self._model.manifest if self._model else None)
            events = update_alarms(rows, states, policy, evidence)
            attempt = self.backend.lake.stage(batch_key(shard_id, records[0].sequence_number), {
                WELL_DATA_TABLE: rows, ANOMALY_EVENT_VERSIONS_TABLE: events,
                DEAD_LETTERS_TABLE: _dead_letters(dead)})
            self._landed |= {table for table, n in ((WELL_DATA_TABLE, rows.num_rows),
                                                    (ANOMALY_EVENT_VERSIONS_TABLE, events.num_rows),
                                                    (DEAD_LETTERS_TABLE, len(dead))) if n}
            _forget_idle(states, self.backend.settings.retention_hours * _MILLIS_PER_HOUR)
            encoded = self._encoders.setdefault(shard_id, StateEncoder()).encode(
                states, {record.partition_key for record in records})  # a record's rows are its key's well
            self._leases[shard_id] = self.backend.leases.checkpoint(
                lease, records[-1].sequence_number, encoded, self.backend.stream.millis_behind(shard_id),
                pending=attempt)
        except LeaseLost:
            log.info("lost the lease of %s to another worker; dropping it", shard_id)
            if attempt is not None:
                self.backend.lake.discard(attempt)
            self._drop(shard_id)
            del self._leases[shard_id]
            return
        except BaseException:
            self._drop(shard_id)  # the states were advanced in memory: reload them from the checkpoint
            raise
        self._states[shard_id] = (self._leases[shard_id].state_ref, states)
        self.stats.batches += 1
        self.stats.rows_landed += rows.num_rows
        self.stats.dead_letters += len(dead)
        self.stats.last_batch_at = time.time()
        committed = self._leases[shard_id]
        self.backend.lake.publish(attempt, fence=lambda: self.backend.leases.holds(committed))
        self._published[shard_id] = attempt

    def _drop(self, shard_id: str) -> None:
        """Forget a shard's uncommitted records and cached states (it is re-read from its checkpoint)."""
        self._gathering.pop(shard_id, None)
        self._states.pop(shard_id, None)
        self._encoders.pop(shard_id, None)
        self._next_read.pop(shard_id, None)

    def _load_states(self, lease: Lease) -> dict[str, WellState]:
        """The per-well states at the lease's checkpoint: cached from this worker's own last
        checkpoint, else read from the lease store (or, for a new child shard, its parents')."""
        cached = self._states.get(lease.shard_id)
        if cached is not None and cached[0] == lease.state_ref:
            return cached[1]
        if lease.checkpoint is None:
            return self._inherited_states(lease.shard_id)
        return decode_states(self.backend.leases.state(lease))

    def _inherited_states(self, shard_id: str) -> dict[str, WellState]:
        """A shard born of a reshard starts from its parents' final per-well states.

        Its wells come from the parents (which are drained before it is read), and so must their
        memory: the features continue, and rows a producer re-sends across the reshard are still
        recognised as landed.
        """
        parents = self.backend.stream.parent_shards(shard_id)
        if not parents:
            return {}
        states: dict[str, WellState] = {}
        for state in self.backend.leases.latest_states(parents).values():
            states.update(decode_states(state))
        return states

    # -- model and housekeeping -----------------------------------------------------
    def _refresh_model(self) -> None:
        version = None
        try:
            version = self.backend.models.active_version()
            if version is None or version == self._refused or (
                    self._model is not None and self._model.version == version):
                return  # a refused version is not fetched and refused again on every poll
            self._model = self.backend.models.load(version)
            self.stats.model_version = version
            log.info("scoring with model %s", version)
        except TransientError:
            raise  # the main loop rides out the outage
        except PetroStreamError as exc:
            self._refused = version
            log.error("keeping model %s: %s", self.stats.model_version, exc)

    def housekeeping(self, tables: set[str] | None = None) -> None:
        """Trim records past the stream's retention; merge small lake files of batches that can
        no longer be re-written, in ``tables`` (default: every table, and then also delete lake attempts
        abandoned before their checkpoint)."""
        self.backend.stream.trim()
        leases = self.backend.leases.leases()
        checkpoints = {lease.shard_id: lease.checkpoint for lease in leases}
        # A batch is merged only once its publish is known finished: after the shard's next checkpoint.
        attempts = {lease.pending for lease in leases if lease.pending}
        pending = {attempt_batch_key(attempt) for attempt in attempts}
        for table in (WELL_DATA_TABLE, DEAD_LETTERS_TABLE, ANOMALY_EVENT_VERSIONS_TABLE):
            if tables is None or table in tables:
                self.backend.lake.compact(table, lambda key: is_final(key, checkpoints) and key not in pending)
        if tables is None:  # a listing of the staged attempts: with the every-table pass (hourly) is enough
            self.backend.lake.sweep(keep=attempts)
        self._landed = set()


def _decode_all(records: list[StreamRecord]) -> tuple[pa.Table | None, list[dict[str, object]]]:
    """Decode the records; each that fails becomes a dead letter with the reason, alone.

    The records are decoded together (:func:`engine.codec.decode_many`) and those that decode
    are checked together, in a few passes over the batch's columns rather than a few Arrow calls
    per record (which, for records of a few dozen rows each, cost more than decoding them); only
    a record those passes reject is looked at alone, for its reason.
    """
    batches, decoded, dead = [], [], {}
    for index, (record, parts) in enumerate(zip(records, codec.decode_many([r.data for r in records]), strict=True)):
        if isinstance(parts, PetroStreamError):
            dead[index] = _dead_letter(record, parts)
            continue
        batches += parts
        decoded.append((index, sum(part.num_rows for part in parts)))
    if not decoded:
        return None, list(dead.values())
    table = pa.Table.from_batches(batches, OBSERVATION_SCHEMA).combine_chunks()
    counts = np.array([rows for _, rows in decoded])
    starts = np.cumsum(counts) - counts
    valid = _well_formed(table, [records[index].partition_key for index, _ in decoded], starts, counts)
    for position in np.flatnonzero(~valid).tolist():  # look at each rejected record alone, for its reason
        index = decoded[position][0]
        try:
            _validate(table.slice(int(starts[position]), int(counts[position])), records[index].partition_key)
        except PetroStreamError as exc:
            dead[index] = _dead_letter(records[index], exc)
        else:
            valid[position] = True
    if not valid.all():
        table = table.filter(arrow_numpy.array(np.repeat(valid, counts)))
    return (table if valid.any() else None), [dead[index] for index in sorted(dead)]


def _well_formed(table: pa.Table, keys: list[str], starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per record (its rows ``table[start:start + count]``): whether :func:`_validate` accepts it."""
    valid = counts > 0
    bounds = starts[valid]  # the rows of consecutive records with rows, each up to the next one's start
    if not bounds.size:
        return valid
    encoded = pc.dictionary_encode(table["well_id"]).combine_chunks()
    codes = arrow_numpy.filled(encoded.indices, -1)  # a null well (no record's key) is -1
    low, high = np.minimum.reduceat(codes, bounds).tolist(), np.maximum.reduceat(codes, bounds).tolist()
    wells = encoded.dictionary.to_pylist()
    keys = [key for key, rows in zip(keys, counts.tolist(), strict=True) if rows]
    checks = np.array([lo == hi and lo >= 0 and wells[lo] == key for lo, hi, key in zip(low, high, keys, strict=True)])
    if table["event_time"].null_count:
        nulls = (~arrow_numpy.valid(table["event_time"].combine_chunks())).astype(np.int64)
        checks &= np.add.reduceat(nulls, bounds) == 0
    valid[valid] = checks
    return valid


def _dead_letters(dead: list[dict[str, object]]) -> pa.Table:
    """The batch's dead letters as a table, column by column (``Table.from_pylist`` imports pandas)."""
    return pa.Table.from_arrays([arrow_numpy.from_pylist([letter[field.name] for letter in dead], field.type)
                                 for field in DEAD_LETTER_SCHEMA], schema=DEAD_LETTER_SCHEMA)


def _dead_letter(record: StreamRecord, error: PetroStreamError) -> dict[str, object]:
    """A row of ``dead_letters``, its time in epoch milliseconds."""
    return {"shard_id": record.shard_id, "sequence_number": record.sequence_number,
            "partition_key": record.partition_key, "reason": str(error), "payload": record.data,
            "failed_at": time.time_ns() // 1_000_000}


def _validate(table: pa.Table, partition_key: str) -> None:
    if table.num_rows == 0:
        raise InputError("record holds no observations")
    if table["event_time"].null_count:
        raise InputError("record has observations without event_time")
    wells = pc.unique(table["well_id"]).to_pylist()
    if wells != [partition_key]:
        raise InputError(f"record for partition key {partition_key!r} holds wells {wells[:3]}")


def _forget_idle(states: dict[str, WellState], retention_ms: int) -> None:
    """Drop the wells whose last row is older than the stream's retention, counted back from the
    newest row of the shard: the stream can no longer re-deliver their rows, and a shard that saw
    thousands of short-lived wells keeps a state the size of the wells still alive."""
    marks = [state.last_event_ms for state in states.values() if state.last_event_ms is not None]
    if not marks:
        return
    horizon = max(marks) - retention_ms
    for well in [w for w, s in states.items() if s.last_event_ms is not None and s.last_event_ms < horizon]:
        del states[well]


def _drop_seen(observations: pa.Table | None, states: dict[str, WellState]) -> pa.Table:
    """Rows newer than their well's last landed event time, in time order; advances the marks.

    A row is new if it is later than its well's mark and than every earlier row of the well. All
    wells are done at once (a batch of 3W's short instances holds hundreds of wells, and a few
    array calls per well cost more than the rest of this).
    """
    if observations is None or observations.num_rows == 0:
        return arrow_numpy.empty_table(OBSERVATION_SCHEMA)
    groups = well_rows(observations["well_id"])
    times = arrow_numpy.values(observations["event_time"])[groups.order]  # well after well, in order
    starts, sizes = np.array(groups.bounds[:-1]), np.diff(groups.bounds)
    wells = [states.setdefault(well, WellState()) for well in groups.wells]
    marks = [np.iinfo(np.int64).min if state.last_event_ms is None else state.last_event_ms for state in wells]
    new = times > np.repeat(np.array(marks, dtype=np.int64), sizes)
    later = np.diff(times) > 0
    later[starts[1:] - 1] = True  # a well's first row follows no row of its own
    if not later.all():  # rows out of order or repeated within a well: compare with the latest before each
        ranks = np.unique(times, return_inverse=True)[1].reshape(-1)
        # Increasing from well to well, and in time within one: a running maximum never crosses wells.
        keys = np.repeat(np.arange(len(sizes)), sizes) * (int(ranks.max()) + 2) + ranks + 1
        new[1:] &= keys[1:] > np.maximum.accumulate(keys)[:-1]
    advanced = np.logical_or.reduceat(new, starts).tolist()
    for state, latest, moved in zip(wells, np.maximum.reduceat(times, starts).tolist(), advanced, strict=True):
        if moved:
            state.last_event_ms = latest
    keep = np.empty(len(new), dtype=bool)
    keep[groups.order] = new
    return observations if keep.all() else observations.filter(arrow_numpy.array(keep))
