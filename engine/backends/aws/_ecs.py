"""Consumers as an ECS service scaled by Application Auto Scaling; the producer as an ECS task.

Scaling: the desired count is the service's (``UpdateService``); the policy is the service's
scalable target (min/max) and its target-tracking policy on ``ECSServiceAverageCPUUtilization``
(the same names Terraform registers, so the portal and ``terraform apply`` agree). Turning the
policy off suspends the target's dynamic scaling instead of deleting what Terraform created.
Running consumers are what ECS counts (``runningCount``); tasks it already counts but does not
list yet appear without an id. ECS has no per-task CPU without Container Insights, so every
worker reports the service's average CPU from CloudWatch.

Replay: the files to replay live on the portal's machine, which the producer task cannot see,
so they are uploaded under ``input/<digest>/`` in the raw bucket (the only input the producer's
role may read), and the task runs :mod:`engine.backends.aws._replay_task`, which downloads
them and replays. Stopping is ``StopTask``: ECS sends SIGTERM (the producer saves its
progress) and kills the task after the task definition's stop timeout.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine.backends.aws._config import AwsNames
from engine.backends.aws._errors import translated
from engine.errors import BackendError
from engine.replay_control import Launch, ReplayControl, ReplayRequest
from engine.replay_log import ReplayLog
from engine.scaling import Scaler, ScalingPolicy, Worker

__all__ = ["EcsReplayControl", "EcsScaler", "input_prefix"]

DIMENSION = "ecs:service:DesiredCount"
METRIC = "ECSServiceAverageCPUUtilization"
#: Cooldowns of the target-tracking policy (as in infra/ecs.tf).
SCALE_OUT_COOLDOWN = 60
SCALE_IN_COOLDOWN = 300
#: The container of the producer task definition whose command a replay overrides.
PRODUCER_CONTAINER = "producer"
STARTED_BY = "petrostream-portal"
_SUSPENDED = ("DynamicScalingInSuspended", "DynamicScalingOutSuspended", "ScheduledScalingSuspended")


class EcsScaler(Scaler):
    """The consumer service of the cluster and its auto-scaling."""

    def __init__(self, ecs: Any, autoscaling: Any, cloudwatch: Any, names: AwsNames) -> None:
        self._ecs = ecs
        self._autoscaling = autoscaling
        self._cloudwatch = cloudwatch
        self._cluster = names.ecs_cluster
        self._service = names.resource("consumer_service", "ECS service")
        self._target = {"ServiceNamespace": "ecs", "ScalableDimension": DIMENSION,
                        "ResourceId": f"service/{names.ecs_cluster}/{names.consumer_service}"}
        self._policy_name = f"{names.consumer_service}-cpu"

    def policy(self) -> ScalingPolicy:
        with translated(self._service):
            targets = self._autoscaling.describe_scalable_targets(
                ServiceNamespace="ecs", ScalableDimension=DIMENSION,
                ResourceIds=[self._target["ResourceId"]])["ScalableTargets"]
            if not targets:
                return ScalingPolicy()
            policies = self._autoscaling.describe_scaling_policies(
                **self._target, PolicyNames=[self._policy_name])["ScalingPolicies"]
        target = targets[0]
        suspended = target.get("SuspendedState") or {}
        tracking = policies[0]["TargetTrackingScalingPolicyConfiguration"] if policies else {}
        return ScalingPolicy(
            min_workers=int(target["MinCapacity"]), max_workers=int(target["MaxCapacity"]),
            cpu_target=float(tracking.get("TargetValue", ScalingPolicy.cpu_target)),
            enabled=bool(policies) and not any(suspended.get(flag) for flag in _SUSPENDED[:2]))

    def _store_policy(self, policy: ScalingPolicy) -> None:
        with translated(self._service):
            self._autoscaling.register_scalable_target(
                **self._target, MinCapacity=policy.min_workers, MaxCapacity=policy.max_workers,
                SuspendedState={flag: not policy.enabled for flag in _SUSPENDED})
            self._autoscaling.put_scaling_policy(
                **self._target, PolicyName=self._policy_name, PolicyType="TargetTrackingScaling",
                TargetTrackingScalingPolicyConfiguration={
                    "TargetValue": policy.cpu_target,
                    "PredefinedMetricSpecification": {"PredefinedMetricType": METRIC},
                    "ScaleOutCooldown": SCALE_OUT_COOLDOWN, "ScaleInCooldown": SCALE_IN_COOLDOWN})

    def desired(self) -> int:
        return int(self._describe()["desiredCount"])

    def workers(self) -> list[Worker]:
        service = self._describe()
        cpu = self._average_cpu()
        with translated(self._service):
            arns = self._ecs.list_tasks(cluster=self._cluster, serviceName=self._service.name,
                                        desiredStatus="RUNNING")["taskArns"]
            tasks = self._ecs.describe_tasks(cluster=self._cluster, tasks=arns)["tasks"] if arns else []
        group = f"service:{self._service.name}"
        workers = [Worker(task["taskArn"].rsplit("/", 1)[-1], _when(task, "startedAt"), cpu)
                   for task in tasks if task.get("group") == group and task.get("lastStatus") == "RUNNING"]
        since = _when(service)
        workers += [Worker(f"task {n + 1} (not listed yet)", since, cpu)
                    for n in range(len(workers), int(service["runningCount"]))]
        return workers

    def _apply(self, count: int) -> None:
        with translated(self._service):
            self._ecs.update_service(cluster=self._cluster, service=self._service.name, desiredCount=count)

    def _describe(self) -> dict[str, Any]:
        with translated(self._service):
            response = self._ecs.describe_services(cluster=self._cluster, services=[self._service.name])
        services = [s for s in response["services"] if s.get("status") != "INACTIVE"]
        if not services:
            raise BackendError(f"{self._service} does not exist in cluster {self._cluster!r}: create it with "
                               f"./project_up.sh, or set {self._service.setting} to where it is")
        return services[0]

    def _average_cpu(self) -> float | None:
        """The service's average CPU over the last five minutes (CloudWatch), if there is a datapoint."""
        now = datetime.now(UTC)
        with translated(self._service):
            points = self._cloudwatch.get_metric_statistics(
                Namespace="AWS/ECS", MetricName="CPUUtilization", Statistics=["Average"], Period=60,
                StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=1),
                Dimensions=[{"Name": "ClusterName", "Value": self._cluster},
                            {"Name": "ServiceName", "Value": self._service.name}])["Datapoints"]
        return float(max(points, key=lambda p: p["Timestamp"])["Average"]) if points else None


class EcsReplayControl(ReplayControl):
    """The producer task definition, run as one-off Fargate (Spot) tasks."""

    def __init__(self, replays: ReplayLog, ecs: Any, s3: Any, names: AwsNames) -> None:
        super().__init__(replays)
        self._ecs = ecs
        self._s3 = s3
        self._names = names
        self._family = names.resource("producer_task_definition", "ECS task definition")
        self._raw = names.resource("raw_bucket", "S3 bucket")

    def _current(self) -> Launch | None:
        tasks = [t for t in self._tasks("RUNNING") if t.get("lastStatus") != "STOPPED"]
        if not tasks:
            return None
        newest = max(tasks, key=_when)
        return Launch(newest["taskArn"], _when(newest))

    def _launch(self, request: ReplayRequest) -> Launch:
        if not self._names.task_subnets:
            raise BackendError("cannot start the producer task: no subnets configured; set PETROSTREAM_TASK_SUBNETS "
                               "(Terraform output task_subnet_ids) and PETROSTREAM_TASK_SECURITY_GROUP")
        prefix = input_prefix(request.files)
        with translated(self._raw):
            for path in request.files:
                self._s3.upload_file(str(path), self._raw.name, f"{prefix}{path.parent.name}/{path.name}")
        command = ["python", "-m", "engine.backends.aws._replay_task", self._raw.name, prefix,
                   *request.cli_options()]
        network = {"subnets": list(self._names.task_subnets), "assignPublicIp": "ENABLED"}
        if self._names.task_security_group:
            network["securityGroups"] = [self._names.task_security_group]
        with translated(self._family):
            response = self._ecs.run_task(
                cluster=self._names.ecs_cluster, taskDefinition=self._family.name, count=1, startedBy=STARTED_BY,
                capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
                networkConfiguration={"awsvpcConfiguration": network}, propagateTags="TASK_DEFINITION",
                overrides={"containerOverrides": [{"name": PRODUCER_CONTAINER, "command": command}]})
        if not response.get("tasks"):
            failure = (response.get("failures") or [{}])[0]
            raise BackendError(f"ECS did not start the producer task: {failure.get('reason', 'no reason given')} "
                               f"{failure.get('detail', '')}".strip())
        task = response["tasks"][0]
        return Launch(task["taskArn"], _when(task) or time.time())

    def _halt(self, timeout: float) -> bool:
        """StopTask every running producer; ECS itself kills one still running after its stop timeout."""
        running = [t for t in self._tasks("RUNNING") if t.get("lastStatus") != "STOPPED"]
        with translated(self._family):
            for task in running:
                self._ecs.stop_task(cluster=self._names.ecs_cluster, task=task["taskArn"],
                                    reason="replay stopped from the PetroStream portal")
        return bool(running)

    def _last_error(self) -> str:
        stopped = self._tasks("STOPPED")
        if not stopped:
            return ""
        last = max(stopped, key=lambda t: _when(t, "stoppedAt"))
        codes = [c.get("exitCode") for c in last.get("containers", []) if c.get("exitCode") not in (None, 0)]
        if not codes and last.get("stopCode") != "TaskFailedToStart":
            return ""
        return (f"producer task {last['taskArn'].rsplit('/', 1)[-1]} stopped: "
                f"{last.get('stoppedReason', 'unknown reason')}" + (f" (exit code {codes[0]})" if codes else ""))

    def _tasks(self, status: str) -> list[dict[str, Any]]:
        with translated(self._family):
            arns = self._ecs.list_tasks(cluster=self._names.ecs_cluster, family=self._family.name,
                                        desiredStatus=status)["taskArns"]
            return self._ecs.describe_tasks(cluster=self._names.ecs_cluster, tasks=arns)["tasks"] if arns else []


def input_prefix(files: tuple[Path, ...]) -> str:
    """Where a set of files is uploaded: the same set lands in the same place, so its replay resumes."""
    digest = hashlib.sha256("\n".join(sorted(str(f) for f in files)).encode()).hexdigest()[:16]
    return f"input/{digest}/"


def _when(described: dict[str, Any], first_choice: str = "createdAt") -> float:
    """Epoch seconds of a task's or service's ``first_choice`` time, else its creation (0 if it has neither)."""
    value = described.get(first_choice) or described.get("createdAt") or 0.0
    return value.timestamp() if isinstance(value, datetime) else float(value)
