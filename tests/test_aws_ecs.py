"""Consumers as an ECS service with Application Auto Scaling, the producer as an ECS task, on moto.

The account holds what Terraform creates: the consumer service (desired 1), its scalable target
(1-2 tasks) and the CPU target-tracking policy at 70 %. moto starts no containers: it reports
``runningCount`` from ``MOTO_ECS_SERVICE_RUNNING`` (1 here) and lists no tasks of a service.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from moto.ecs.models import ecs_backends

from engine.backend import Backend, open_backend
from engine.backends.aws import AwsNames
from engine.backends.aws import _replay_task as replay_task
from engine.backends.aws._ecs import input_prefix
from engine.config import Settings
from engine.errors import InputError
from engine.readers import discover
from engine.replay_control import ReplayRequest
from engine.scaling import ScalingPolicy
from tests.backends import ACCOUNT, REGION, MotoServer, aws_account, aws_client


@pytest.fixture
def names() -> Iterator[AwsNames]:
    with aws_account() as names:
        yield names


@pytest.fixture
def tasks_keep_running() -> Iterator[None]:
    """moto moves a task from RUNNING towards STOPPED on every DescribeTasks; a replay runs for a while."""
    MotoServer.post("/moto-api/state-manager/set-transition",
                    {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1_000_000}})
    yield
    MotoServer.post("/moto-api/state-manager/unset-transition", {"model_name": "ecs::task"})


@pytest.fixture
def backend(names: AwsNames, tmp_path: Path) -> Backend:
    return open_backend(Settings(backend="aws", home=tmp_path))


def target(names: AwsNames) -> dict:
    resource = f"service/{names.ecs_cluster}/{names.consumer_service}"
    (found,) = aws_client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[resource])["ScalableTargets"]
    return found


def desired(names: AwsNames) -> int:
    service = aws_client("ecs").describe_services(cluster=names.ecs_cluster, services=[names.consumer_service])
    return service["services"][0]["desiredCount"]


def test_the_scaling_state_is_what_ecs_and_the_auto_scaler_report(names: AwsNames, backend: Backend) -> None:
    aws_client("cloudwatch").put_metric_data(Namespace="AWS/ECS", MetricData=[{
        "MetricName": "CPUUtilization", "Value": 42.0, "Timestamp": datetime.now(UTC),
        "Dimensions": [{"Name": "ClusterName", "Value": names.ecs_cluster},
                       {"Name": "ServiceName", "Value": names.consumer_service}]}])
    state = backend.scaling.state()
    assert (state.desired, state.running) == (1, 1)
    assert state.policy == ScalingPolicy(min_workers=1, max_workers=2, cpu_target=70.0, enabled=True)
    assert state.average_cpu == 42.0


def test_setting_the_desired_count_updates_the_service_within_the_policy(names: AwsNames, backend: Backend) -> None:
    backend.scaling.set_desired(2)
    assert desired(names) == 2
    with pytest.raises(InputError, match="between 1 and 2"):
        backend.scaling.set_desired(5)  # the auto-scaler would undo it at once
    assert desired(names) == 2


def test_a_policy_registers_the_target_and_target_tracking_and_off_suspends_it(
        names: AwsNames, backend: Backend) -> None:
    backend.scaling.set_policy(ScalingPolicy(min_workers=2, max_workers=6, cpu_target=55.0, enabled=True))
    registered = target(names)
    assert (registered["MinCapacity"], registered["MaxCapacity"]) == (2, 6)
    assert not any(registered["SuspendedState"].values())
    (policy,) = aws_client("application-autoscaling").describe_scaling_policies(
        ServiceNamespace="ecs", ResourceId=registered["ResourceId"])["ScalingPolicies"]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert policy["PolicyName"] == f"{names.consumer_service}-cpu" and policy["PolicyType"] == "TargetTrackingScaling"
    assert tracking["TargetValue"] == 55.0
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ECSServiceAverageCPUUtilization"
    assert desired(names) == 2  # moved inside the new bounds at once
    assert backend.scaling.policy() == ScalingPolicy(2, 6, 55.0, enabled=True)

    backend.scaling.stop_all()
    assert all(target(names)["SuspendedState"].values())  # what Terraform created stays, switched off
    assert backend.scaling.policy().enabled is False and desired(names) == 0
    backend.scaling.set_desired(9)  # no bounds while the policy is off
    assert desired(names) == 9


def test_a_replay_runs_as_an_ecs_task_on_uploaded_files_and_stops(
        names: AwsNames, backend: Backend, demo_dir: Path, tasks_keep_running: None) -> None:
    files = tuple(f.path for f in discover([demo_dir])[:2])
    control = backend.replay_control
    assert control.state().phase == "idle"
    launch = control.start(ReplayRequest(files, speed=5.0, max_rows=100))

    prefix = input_prefix(tuple(sorted(p.resolve() for p in files)))
    uploaded = aws_client("s3").list_objects_v2(Bucket=names.raw_bucket, Prefix=prefix)["Contents"]
    assert sorted(o["Key"] for o in uploaded) == sorted(f"{prefix}{p.parent.name}/{p.name}" for p in files)
    (task,) = aws_client("ecs").describe_tasks(cluster=names.ecs_cluster, tasks=[launch.ident])["tasks"]
    assert task["taskDefinitionArn"].split("/")[-1].startswith(names.producer_task_definition)
    assert task["overrides"]["containerOverrides"] == [{"name": "producer", "command": [
        "python", "-m", "engine.backends.aws._replay_task", names.raw_bucket, prefix, "--speed", "5.0",
        "--max-rows", "100"]}]
    assert control.state().running and control.state().phase == "starting"
    with pytest.raises(InputError, match="already running"):
        control.start(ReplayRequest(files))

    assert control.stop() is True
    assert not control.state().running and control.stop() is False
    assert control.state().note == ""  # it was stopped, it did not fail


def test_a_failed_producer_task_is_reported(names: AwsNames, backend: Backend, demo_dir: Path) -> None:
    launch = backend.replay_control.start(ReplayRequest((discover([demo_dir])[0].path,)))
    task = ecs_backends[ACCOUNT][REGION].tasks[names.ecs_cluster][launch.ident]
    task.containers[0].exitCode = 2  # moto runs no container; this one "exited" with an error
    aws_client("ecs").stop_task(cluster=names.ecs_cluster, task=launch.ident, reason="Essential container exited")
    note = backend.replay_control.state().note
    assert "Essential container exited" in note and "exit code 2" in note


def test_the_producer_task_downloads_the_upload_and_replays_it(
        names: AwsNames, backend: Backend, demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = tuple(sorted(f.path.resolve() for f in discover([demo_dir])[:2]))
    backend.replay_control.start(ReplayRequest(files, speed=0.0, max_rows=500))
    monkeypatch.setenv("PETROSTREAM_HOME", str(tmp_path))
    assert replay_task.main([names.raw_bucket, input_prefix(files), "--speed", "0", "--max-rows", "500"]) == 0
    downloaded = sorted((tmp_path / replay_task.INPUT_FOLDER).rglob("*.parquet"))
    assert [(p.parent.name, p.name, p.read_bytes()) for p in downloaded] == \
        [(p.parent.name, p.name, p.read_bytes()) for p in files]
    progress = backend.replays.latest()
    assert progress.sent_rows == 500 and progress.status == "stopped at limit"
    assert sum(backend.stream.backlog(s, None) for s in backend.stream.shard_ids()) > 0
