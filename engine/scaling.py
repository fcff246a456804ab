"""How many stream consumers run: desired vs running, set by hand or by a CPU-target policy.

On ``local`` the consumers are worker processes on this machine; on ``aws`` they are the tasks
of an ECS service whose desired count Application Auto Scaling tracks. A backend supplies a few
primitives; the rules (bounds, what a policy allows, target tracking) live here once.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace

from engine.errors import InputError

#: Upper bound on consumers; more consumers than stream shards would sit idle anyway.
MAX_CONSUMERS = 32


@dataclass(frozen=True)
class ScalingPolicy:
    """Target tracking on average CPU, between ``min_workers`` and ``max_workers``."""

    min_workers: int = 1
    max_workers: int = 4
    cpu_target: float = 70.0
    enabled: bool = False

    def validated(self) -> ScalingPolicy:
        if not 0 <= self.min_workers <= self.max_workers <= MAX_CONSUMERS:
            raise InputError(f"need 0 ≤ minimum ≤ maximum ≤ {MAX_CONSUMERS} consumers "
                             f"(got {self.min_workers} and {self.max_workers})")
        if not (math.isfinite(self.cpu_target) and 5 <= self.cpu_target <= 95):
            raise InputError(f"the CPU target must be between 5 % and 95 % (got {self.cpu_target})")
        return self

    def clamp(self, count: int) -> int:
        return max(self.min_workers, min(self.max_workers, count))


@dataclass(frozen=True)
class Worker:
    """A running consumer: an id (pid, task id), its start (epoch s) and recent CPU use if known."""

    ident: str
    started_at: float
    cpu_percent: float | None


@dataclass(frozen=True)
class ScalingState:
    desired: int
    workers: list[Worker]
    policy: ScalingPolicy

    @property
    def running(self) -> int:
        return len(self.workers)

    @property
    def average_cpu(self) -> float | None:
        known = [w.cpu_percent for w in self.workers if w.cpu_percent is not None]
        return sum(known) / len(known) if known else None


def target_tracking(current: int, average_cpu: float | None, policy: ScalingPolicy) -> int:
    """The count that brings average CPU to the target, within the policy's bounds.

    The same proportional rule AWS target tracking applies: scale by measured / target.
    """
    if current == 0 or average_cpu is None:
        return policy.clamp(current)
    return policy.clamp(math.ceil(current * average_cpu / policy.cpu_target))


class Scaler(ABC):
    """Desired and running consumers, and the auto-scaling policy."""

    # -- primitives ---------------------------------------------------------------------------
    @abstractmethod
    def policy(self) -> ScalingPolicy:
        """The stored policy (a disabled default when none was ever set)."""

    @abstractmethod
    def _store_policy(self, policy: ScalingPolicy) -> None:
        """Persist (and on managed platforms, register) the policy."""

    @abstractmethod
    def desired(self) -> int:
        """How many consumers should run."""

    @abstractmethod
    def workers(self) -> list[Worker]:
        """Consumers running now."""

    @abstractmethod
    def _apply(self, count: int) -> None:
        """Record ``count`` as desired and start or stop consumers towards it."""

    def reconcile(self) -> ScalingState:
        """Bring running in line with desired; where nothing else scales, apply the policy too.

        Managed platforms (ECS with Application Auto Scaling) do this themselves, so the
        default only reports.
        """
        return self.state()

    # -- rules ----------------------------------------------------------------------------------
    def state(self) -> ScalingState:
        return ScalingState(self.desired(), self.workers(), self.policy())

    def set_desired(self, count: int) -> None:
        """Run ``count`` consumers; within the policy's bounds while auto-scaling is on."""
        if not 0 <= count <= MAX_CONSUMERS:
            raise InputError(f"the consumer count must be between 0 and {MAX_CONSUMERS} (got {count})")
        policy = self.policy()
        if policy.enabled and policy.clamp(count) != count:
            raise InputError(f"auto-scaling keeps consumers between {policy.min_workers} and {policy.max_workers}; "
                             "change the policy or turn it off first")
        self._apply(count)

    def set_policy(self, policy: ScalingPolicy) -> None:
        """Store a policy; turning it on moves the desired count inside its bounds at once."""
        self._store_policy(policy.validated())
        if policy.enabled:
            self._apply(policy.clamp(self.desired()))

    def stop_all(self) -> None:
        """Stop every consumer and turn auto-scaling off, so nothing starts them again."""
        policy = self.policy()
        if policy.enabled:
            self._store_policy(replace(policy, enabled=False))
        self._apply(0)
