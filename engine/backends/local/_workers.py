"""The local backend's replay control and consumer scaling: detached processes on this machine."""

from __future__ import annotations

from pathlib import Path

from engine.backends.local._processes import ProcessTable
from engine.replay_control import Launch, ReplayControl, ReplayRequest
from engine.replay_log import ReplayLog
from engine.scaling import Scaler, ScalingPolicy, ScalingState, Worker, target_tracking

PRODUCER = "producer"
CONSUMER = "consumer"
_STOP_SECONDS = 15.0


class LocalReplayControl(ReplayControl):
    """``python -m engine replay`` as a detached process."""

    def __init__(self, replays: ReplayLog, processes: ProcessTable) -> None:
        super().__init__(replays)
        self._processes = processes

    def _current(self) -> Launch | None:
        alive = self._processes.alive(PRODUCER)
        return Launch(str(alive[-1].pid), alive[-1].started_at) if alive else None

    def _launch(self, request: ReplayRequest) -> Launch:
        record = self._processes.spawn(PRODUCER, ["replay", "--data", *map(str, request.files),
                                                  *request.cli_options()])
        return Launch(str(record.pid), record.started_at)

    def _halt(self, timeout: float) -> bool:
        alive = self._processes.alive(PRODUCER)
        self._processes.terminate(alive, timeout)
        return bool(alive)

    def _last_error(self) -> str:
        log = self._processes.get_control(f"{PRODUCER}.last_log")
        if not isinstance(log, str) or not Path(log).is_file():
            return ""
        errors = [line for line in Path(log).read_text(errors="replace").splitlines() if line.startswith("error:")]
        return errors[-1] if errors else ""


class LocalScaler(Scaler):
    """Consumers as ``python -m engine consume`` processes; the policy is applied on :meth:`reconcile`."""

    def __init__(self, processes: ProcessTable) -> None:
        self._processes = processes

    def policy(self) -> ScalingPolicy:
        stored = self._processes.get_control(f"{CONSUMER}.policy")
        return ScalingPolicy(**stored) if isinstance(stored, dict) else ScalingPolicy()

    def _store_policy(self, policy: ScalingPolicy) -> None:
        self._processes.put_control(f"{CONSUMER}.policy", {
            "min_workers": policy.min_workers, "max_workers": policy.max_workers,
            "cpu_target": policy.cpu_target, "enabled": policy.enabled})

    def desired(self) -> int:
        stored = self._processes.get_control(f"{CONSUMER}.desired")
        return int(stored) if isinstance(stored, int) else 0

    def workers(self) -> list[Worker]:
        return [Worker(str(r.pid), r.started_at, self._processes.cpu_percent(r))
                for r in self._processes.alive(CONSUMER)]

    def _apply(self, count: int) -> None:
        self._processes.put_control(f"{CONSUMER}.desired", count)
        alive = self._processes.alive(CONSUMER)
        for _ in range(count - len(alive)):
            self._processes.spawn(CONSUMER, ["consume", "--workers", "1"])
        if len(alive) > count:
            self._processes.terminate(alive[count:], _STOP_SECONDS)  # the newest go first

    def reconcile(self) -> ScalingState:
        """Restart consumers that died, and with auto-scaling on, track the CPU target first.

        Nothing on this machine runs the policy in the background: the portal calls this on
        each refresh of its Scaling and Overview pages.
        """
        policy, workers, desired = self.policy(), self.workers(), self.desired()
        if policy.enabled:
            desired = target_tracking(len(workers), ScalingState(desired, workers, policy).average_cpu, policy)
        self._apply(desired)
        measured = {w.ident: w for w in workers}
        running = [measured.get(str(r.pid), Worker(str(r.pid), r.started_at, None))
                   for r in self._processes.alive(CONSUMER)]
        return ScalingState(desired, running, policy)
