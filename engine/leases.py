"""Shard leases and checkpoints, after the Kinesis Client Library.

Each shard has one lease row: its owner, a counter bumped on every write, an expiry, the
checkpointed sequence number and a *pointer* to the consumer's state at that checkpoint. Every
write is conditional on the counter the writer last saw, so two workers can never both believe
they own a shard. The rules (renew, take free or expired leases, steal towards an even split,
checkpoint only while owning) live here once; a backend stores rows and state blobs and
nothing else.

The state (every well's feature, de-duplication and alarm memory) grows with the wells a shard
carries, so it is not in the lease row: a lease row must stay small, because it is rewritten on
every renewal (DynamoDB bills a write per KiB of the whole item and refuses items over 400 KB).
A checkpoint stores the state as a new, uniquely named blob *first*, then points the lease at
it with the conditional write. A crash in between leaves an orphan blob and the old pointer
(the batch is redone from the old state); a lost lease deletes the blob it just wrote; the
blob a successful checkpoint replaced is deleted after it.
"""

from __future__ import annotations

import math
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace

DEFAULT_LEASE_SECONDS = 20.0


class LeaseLost(Exception):
    """The worker no longer owns the shard; it must drop its uncommitted work for it."""


@dataclass(frozen=True)
class Lease:
    """One shard's lease row."""

    shard_id: str
    owner: str | None = None
    counter: int = 0
    expires_at: float = 0.0
    checkpoint: str | None = None
    #: Names the state blob of this checkpoint (None: no state stored yet).
    state_ref: str | None = None
    #: How far behind the shard's newest record the checkpointing read was (Kinesis's
    #: MillisBehindLatest): the lag observers show without reading the stream themselves.
    millis_behind: int | None = None
    #: The lake attempt (:meth:`engine.lake.Lake.stage`) this checkpoint committed. It is published
    #: after the checkpoint; whoever holds the lease next publishes it again (a no-op if done), so
    #: a publish cut short by a crash or a lost lease is finished before the shard moves on.
    pending: str | None = None

    def is_free(self, now: float) -> bool:
        return self.owner is None or self.expires_at < now


class LeaseStore(ABC):
    """Shared lease rules over a few storage primitives."""

    def __init__(self, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        self.lease_seconds = lease_seconds

    # -- storage primitives -------------------------------------------------------
    @abstractmethod
    def _read_all(self) -> list[Lease]:
        """Every lease row."""

    @abstractmethod
    def _read(self, shard_id: str) -> Lease | None:
        """One shard's lease row, read consistently."""

    @abstractmethod
    def _insert(self, lease: Lease) -> bool:
        """Create a lease row; False if one exists already."""

    @abstractmethod
    def _replace(self, lease: Lease, expected_counter: int) -> bool:
        """Overwrite a lease row only if its counter is still ``expected_counter``."""

    @abstractmethod
    def _put_state(self, shard_id: str, ref: str, state: bytes) -> None:
        """Store a state blob under a name never used before."""

    @abstractmethod
    def _get_state(self, shard_id: str, ref: str) -> bytes | None:
        """A stored state blob; None if it is gone (a later checkpoint replaced it)."""

    @abstractmethod
    def _delete_state(self, shard_id: str, ref: str) -> None:
        """Remove a state blob (one that is gone already is fine)."""

    @abstractmethod
    def _heartbeat(self, worker_id: str, expires_at: float) -> None:
        """Record that a worker is alive until ``expires_at``."""

    @abstractmethod
    def _forget_worker(self, worker_id: str) -> None:
        """Remove a worker's heartbeat."""

    @abstractmethod
    def live_workers(self) -> list[str]:
        """Workers whose heartbeat has not expired."""

    # -- rules --------------------------------------------------------------------
    def leases(self) -> list[Lease]:
        return sorted(self._read_all(), key=lambda lease: lease.shard_id)

    def holds(self, lease: Lease) -> bool:
        """Whether ``lease`` is still the shard's current row: no one took, renewed or checkpointed
        it since (the fence a publisher asks before showing readers a batch)."""
        current = self._read(lease.shard_id)
        return current is not None and current.counter == lease.counter and current.owner == lease.owner

    def balance(self, worker_id: str, shard_ids: Sequence[str]) -> list[Lease]:
        """Renew this worker's leases, take free ones up to its fair share, then steal towards an
        even split, as many as it takes in this one round (see :meth:`_steal`)."""
        now = time.time()
        self._heartbeat(worker_id, now + self.lease_seconds)
        known = {lease.shard_id: lease for lease in self._read_all()}
        for shard_id in shard_ids:
            if shard_id not in known and self._insert(Lease(shard_id)):
                known[shard_id] = Lease(shard_id)
        leases = [known[s] for s in shard_ids if s in known]
        workers = set(self.live_workers()) | {worker_id}
        target = math.ceil(len(leases) / len(workers))

        held = [renewed for lease in leases if lease.owner == worker_id and not lease.is_free(now)
                if (renewed := self._take(lease, worker_id, now)) is not None]
        for lease in leases:
            if len(held) >= target:
                break
            if lease.is_free(now) and (taken := self._take(lease, worker_id, now)) is not None:
                held.append(taken)
        held += self._steal(leases, worker_id, len(held), now)
        return sorted(held, key=lambda lease: lease.shard_id)

    def _take(self, lease: Lease, worker_id: str, now: float) -> Lease | None:
        taken = replace(lease, owner=worker_id, counter=lease.counter + 1,
                        expires_at=now + self.lease_seconds)
        return taken if self._replace(taken, lease.counter) else None

    def _steal(self, leases: list[Lease], worker_id: str, held: int, now: float) -> list[Lease]:
        """Take leases, one at a time, from whichever worker holds the most while it holds at least
        two more than this worker.

        A new worker so reaches an even split in its first round (waiting a round per lease left
        the first worker most of a short stream). A steal never reverses a gap (the victim keeps
        at least as many as the thief then holds), so the sum of the squared counts falls with
        every steal: no lease moves back and forth, a worker at its fair share (within one of
        everyone) is never robbed, and the counts end within one of each other. A steal whose
        conditional write fails (the owner checkpointed meanwhile) is left to the next round.
        """
        others: dict[str, list[Lease]] = {}
        for lease in leases:
            if lease.owner is not None and lease.owner != worker_id and not lease.is_free(now):
                others.setdefault(lease.owner, []).append(lease)
        stolen: list[Lease] = []
        while others:
            busiest = max(others, key=lambda owner: (len(others[owner]), owner))
            if len(others[busiest]) < held + len(stolen) + 2:
                break
            if (taken := self._take(others[busiest].pop(), worker_id, now)) is not None:
                stolen.append(taken)
        return stolen

    def checkpoint(self, lease: Lease, sequence_number: str, state: bytes | None,
                   millis_behind: int | None = None, pending: str | None = None) -> Lease:
        """Record progress on a shard; raise :class:`LeaseLost` if the lease moved on.

        This conditional write is the fence of the exactly-once path: a worker whose lease was
        taken (its counter moved on) cannot make its state the pointer nor its staged lake
        attempt (``pending``) the one to publish. The state blob is stored before the lease points
        to it, so a pointer never names a blob that is not there; the write of the lease row
        itself stays the same size whatever the state holds.
        """
        ref = None
        if state is not None:
            ref = f"{lease.counter + 1:012d}-{uuid.uuid4().hex[:12]}"
            self._put_state(lease.shard_id, ref, state)
        updated = replace(lease, counter=lease.counter + 1, checkpoint=sequence_number, state_ref=ref,
                          expires_at=time.time() + self.lease_seconds, millis_behind=millis_behind,
                          pending=pending)
        if not self._replace(updated, lease.counter):
            if ref is not None:
                self._delete_state(lease.shard_id, ref)
            raise LeaseLost(lease.shard_id)
        if lease.state_ref is not None and lease.state_ref != ref:
            self._delete_state(lease.shard_id, lease.state_ref)
        return updated

    def state(self, lease: Lease) -> bytes | None:
        """The state ``lease`` points to; raise :class:`LeaseLost` if a later checkpoint replaced it."""
        if lease.state_ref is None:
            return None
        state = self._get_state(lease.shard_id, lease.state_ref)
        if state is None:
            raise LeaseLost(lease.shard_id)
        return state

    def latest_states(self, shard_ids: Sequence[str] | None = None) -> dict[str, bytes]:
        """Each shard's (or the given shards') state at its latest checkpoint, for readers that own
        no lease (the portal, a child shard inheriting its parents'): a lease that moves on while
        its blob is read is read again."""
        wanted = None if shard_ids is None else set(shard_ids)
        states: dict[str, bytes] = {}
        pending = [lease for lease in self._read_all() if wanted is None or lease.shard_id in wanted]
        while pending:
            lease = pending.pop()
            try:
                state = self.state(lease)
            except LeaseLost:
                pending += [fresh for fresh in self._read_all() if fresh.shard_id == lease.shard_id]
                continue
            if state is not None:
                states[lease.shard_id] = state
        return states

    def release(self, lease: Lease) -> None:
        """Give a shard back (clean shutdown) so another worker takes it at once."""
        self._replace(replace(lease, owner=None, counter=lease.counter + 1, expires_at=0.0), lease.counter)

    def retire(self, worker_id: str) -> None:
        self._forget_worker(worker_id)
