"""Shard leases and checkpoints, after the Kinesis Client Library.

Each shard has one lease row: its owner, a counter bumped on every write, an expiry, the
checkpointed sequence number and the consumer's state at that checkpoint. Every write is
conditional on the counter the writer last saw, so two workers can never both believe they
own a shard. The rules (renew, take free or expired leases, steal towards an even split,
checkpoint only while owning) live here once; a backend stores rows and nothing else.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections import Counter
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
    state: bytes | None = None
    #: How far behind the shard's newest record the checkpointing read was (Kinesis's
    #: MillisBehindLatest): the lag observers show without reading the stream themselves.
    millis_behind: int | None = None

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
    def _insert(self, lease: Lease) -> bool:
        """Create a lease row; False if one exists already."""

    @abstractmethod
    def _replace(self, lease: Lease, expected_counter: int) -> bool:
        """Overwrite a lease row only if its counter is still ``expected_counter``."""

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

    def balance(self, worker_id: str, shard_ids: Sequence[str]) -> list[Lease]:
        """Renew this worker's leases and take or steal until it holds its fair share."""
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
        if len(held) < target:
            stolen = self._steal_one(leases, worker_id, target, now)
            if stolen is not None:
                held.append(stolen)
        return sorted(held, key=lambda lease: lease.shard_id)

    def _take(self, lease: Lease, worker_id: str, now: float) -> Lease | None:
        taken = replace(lease, owner=worker_id, counter=lease.counter + 1,
                        expires_at=now + self.lease_seconds)
        return taken if self._replace(taken, lease.counter) else None

    def _steal_one(self, leases: list[Lease], worker_id: str, target: int, now: float) -> Lease | None:
        """Take one lease from the busiest worker if it holds more than its share."""
        owners = Counter(lease.owner for lease in leases if not lease.is_free(now) and lease.owner != worker_id)
        if not owners:
            return None
        busiest, count = owners.most_common(1)[0]
        if count <= target:
            return None
        victim = next(lease for lease in leases if lease.owner == busiest)
        return self._take(victim, worker_id, now)

    def checkpoint(self, lease: Lease, sequence_number: str, state: bytes | None,
                   millis_behind: int | None = None) -> Lease:
        """Record progress on a shard; raise :class:`LeaseLost` if the lease moved on."""
        updated = replace(lease, counter=lease.counter + 1, checkpoint=sequence_number, state=state,
                          expires_at=time.time() + self.lease_seconds, millis_behind=millis_behind)
        if not self._replace(updated, lease.counter):
            raise LeaseLost(lease.shard_id)
        return updated

    def release(self, lease: Lease) -> None:
        """Give a shard back (clean shutdown) so another worker takes it at once."""
        self._replace(replace(lease, owner=None, counter=lease.counter + 1, expires_at=0.0), lease.counter)

    def retire(self, worker_id: str) -> None:
        self._forget_worker(worker_id)
