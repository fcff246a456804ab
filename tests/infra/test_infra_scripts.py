"""project_up.sh / project_down.sh: --dry-run prints every step and runs nothing, and a
real project_down.sh run (Terraform stubbed, AWS = moto) empties buckets and reports what
is left."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import aws
from tests.infra.support import ACCOUNT, moto_environment
from tests.infra.terraform_model import ROOT, Terraform

UP, DOWN = ROOT / "project_up.sh", ROOT / "project_down.sh"
STUBBED = ("terraform", "aws", "docker", "python")


@pytest.fixture
def stubs(tmp_path: Path) -> Path:
    """A folder of fake terraform/aws/docker/python that only log how they were called."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in STUBBED:
        stub = folder / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> "$STUB_LOG"\n', encoding="utf-8")
        stub.chmod(0o755)
    return folder


def _run(script: Path, *args: str, stubs: Path, env: dict[str, str] | None = None,
         python: str | None = None) -> subprocess.CompletedProcess[str]:
    home = stubs.parent
    environment = {
        "PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "STUB_LOG": str(home / "calls.log"),
        "PYTHON": python or str(stubs / "python"),
        "PETROSTREAM_HOME": str(home / "petrostream-home"),
        "IMAGE_TAG": "abc123",
        **(env or {}),
    }
    return subprocess.run(["bash", str(script), *args], cwd=home, env=environment, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120, check=False)


def _calls(stubs: Path) -> list[str]:
    log = stubs.parent / "calls.log"
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


def _steps(output: str) -> list[str]:
    return [line.split("] ", 1)[1] for line in output.splitlines() if line.startswith("==> [")]


def _commands(output: str) -> list[str]:
    return [line[2:] for line in output.splitlines() if line.startswith("+ ")]


def _index(commands: list[str], fragment: str) -> int:
    """Where ``fragment`` first appears; a fragment ending in ``$`` must end the command."""
    if fragment.endswith("$"):
        return next(i for i, command in enumerate(commands) if command.endswith(fragment[:-1]))
    return next(i for i, command in enumerate(commands) if fragment in command)


def test_up_dry_run_prints_every_step_and_runs_nothing(stubs: Path) -> None:
    result = _run(UP, "--dry-run", stubs=stubs)

    assert result.returncode == 0, result.stderr
    assert _steps(result.stdout) == [
        "Check the tools",
        "Initialise Terraform",
        "Create the image repository (and the key that encrypts it)",
        "Build and push the image abc123",
        "Apply the whole stack",
        "Save the outputs for the engine and the portal",
        "Publish a first model (skipped when the model bucket has one)",
        "Create the Power BI views in Athena (CREATE OR REPLACE: safe to repeat)",
        "Roll the services (the portal too when enabled) onto the image and model; wait until stable",
        "Start the demo producer (skipped when one is running)",
        "Done",
    ]
    commands = _commands(result.stdout)
    infra, outputs = ROOT / "infra", stubs.parent / "petrostream-home" / "aws-outputs.json"
    expected_order = [
        f"terraform -chdir={infra} init -input=false",
        "-target=aws_ecr_repository.app",
        "docker login --username AWS --password-stdin",
        f"docker build --platform {Terraform.load().image_platform()} --tag <ecr_repository_url>:abc123",
        "docker push <ecr_repository_url>:abc123",
        f"terraform -chdir={infra} apply -input=false -auto-approve -var image_tag=abc123",
        f"terraform -chdir={infra} output -json > {outputs}",
        "-m engine train --data",
        "-m engine bi-views",
        "-m deploy.resume --cluster <ecs_cluster> --service <consumer_service>",
        "aws ecs update-service --cluster <ecs_cluster> --service <consumer_service> --force-new-deployment",
        "aws ecs wait services-stable --cluster <ecs_cluster>",
        "aws ecs run-task --cluster <ecs_cluster> --task-definition <producer_task_definition>",
    ]
    positions = [_index(commands, fragment) for fragment in expected_order]
    assert positions == sorted(positions), commands
    assert _calls(stubs) == [], "a dry run must not run anything"
    assert not outputs.exists()


def test_up_tags_the_image_with_the_commit_as_ci_does(stubs: Path) -> None:
    environment = {"IMAGE_TAG": ""}
    result = _run(UP, "--dry-run", stubs=stubs, env=environment)
    assert result.returncode == 0, result.stderr
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    build = next(c for c in _commands(result.stdout) if c.startswith("docker build"))
    assert f"<ecr_repository_url>:{commit}" in build and f"--platform {Terraform.load().image_platform()}" in build
    workflow = (ROOT / ".github" / "workflows" / "deploy.yml").read_text(encoding="utf-8")
    assert "IMAGE_TAG: ${{ github.sha }}" in workflow  # the full SHA, like git rev-parse HEAD


def test_up_without_replay_does_not_start_the_producer(stubs: Path) -> None:
    result = _run(UP, "--dry-run", "--no-replay", stubs=stubs)
    assert result.returncode == 0, result.stderr
    assert "run-task" not in result.stdout


def test_down_dry_run_prints_every_step_and_runs_nothing(stubs: Path) -> None:
    result = _run(DOWN, "--dry-run", stubs=stubs)

    assert result.returncode == 0, result.stderr
    assert _steps(result.stdout) == [
        "Check the tools",
        "Initialise Terraform",
        "Stop the services, Firehose delivery, the load balancer and bucket access logging",
        "Stop one-off tasks (the producer)",
        "Empty every bucket: all object versions, delete markers and unfinished uploads",
        "Destroy everything else",
        "Check that nothing billable is left",
    ]
    commands = _commands(result.stdout)
    expected_order = [
        "init -input=false",
        "destroy -input=false -auto-approve -target=aws_ecs_service.consumer -target=aws_ecs_service.portal"
        " -target=aws_kinesis_firehose_delivery_stream.delivery -target=aws_lb.portal"
        " -target=aws_s3_bucket_logging.data",
        "-m deploy.teardown stop-tasks --cluster petrostream",
        "-m deploy.teardown empty-buckets --prefix petrostream",
        f"terraform -chdir={ROOT / 'infra'} destroy -input=false -auto-approve$",  # untargeted: everything
        "-m deploy.teardown check --prefix petrostream",
    ]
    positions = [_index(commands, fragment) for fragment in expected_order]
    assert positions == sorted(positions), commands
    assert _calls(stubs) == []


def test_scripts_follow_the_name_prefix(stubs: Path) -> None:
    result = _run(DOWN, "--dry-run", stubs=stubs, env={"TF_VAR_name_prefix": "wells-demo"})
    assert "stop-tasks --cluster wells-demo" in result.stdout
    assert "check --prefix wells-demo" in result.stdout


@pytest.mark.parametrize("script", [UP, DOWN], ids=lambda path: path.name)
def test_unknown_options_are_refused(stubs: Path, script: Path) -> None:
    result = _run(script, "--dryrun", stubs=stubs)
    assert result.returncode == 2
    assert "unknown option: --dryrun" in result.stderr
    assert _calls(stubs) == []


def test_down_asks_for_confirmation_when_not_interactive(stubs: Path) -> None:
    result = _run(DOWN, stubs=stubs)
    assert result.returncode == 2
    assert "pass --yes" in result.stderr
    assert _calls(stubs) == []


def _environment(moto: str, prefix: str, home: Path) -> dict[str, str]:
    return {**moto_environment(moto, home), "TF_VAR_name_prefix": prefix}


def test_down_with_nothing_deployed_is_a_clean_no_op(stubs: Path, moto: str, prefix: str) -> None:
    result = _run(DOWN, "--yes", stubs=stubs, python=sys.executable, env=_environment(moto, prefix, stubs.parent))

    assert result.returncode == 0, result.stdout + result.stderr
    assert [call.split()[1] for call in _calls(stubs)] == ["-chdir=" + str(ROOT / "infra")] * 3
    assert [call.split()[2] for call in _calls(stubs)] == ["init", "destroy", "destroy"]
    assert f"no {prefix} buckets left to empty" in result.stdout
    assert f"nothing billable left of {prefix} in us-east-1" in result.stdout


def test_down_empties_buckets_and_names_what_is_left(stubs: Path, moto: str, prefix: str) -> None:
    s3 = aws.client("s3")
    bucket = f"{prefix}-raw-{ACCOUNT}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="stream/date=2026-01-01/part-0", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="stream/date=2026-01-01/part-0")

    # The stubbed terraform destroys nothing, so the emptied bucket is still there at the end.
    result = _run(DOWN, "--yes", stubs=stubs, python=sys.executable, env=_environment(moto, prefix, stubs.parent))

    assert result.returncode == 1
    assert f"emptied {bucket}: 1 versions, 1 delete markers, 0 unfinished uploads" in result.stdout
    assert f"BILLABLE  s3        {bucket}" in result.stdout
    assert not s3.list_object_versions(Bucket=bucket).get("Versions")


def test_resume_undoes_a_stop_from_the_portal(moto: str, prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
    from deploy import resume

    cluster, service = prefix, f"{prefix}-consumer"
    ecs, scaling = aws.client("ecs"), aws.client("application-autoscaling")
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(family=service, containerDefinitions=[{"name": "c", "image": "i", "memory": 512}])
    ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=service, desiredCount=1)
    target = {"ServiceNamespace": "ecs", "ResourceId": f"service/{cluster}/{service}",
              "ScalableDimension": "ecs:service:DesiredCount"}
    scaling.register_scalable_target(**target, MinCapacity=1, MaxCapacity=4)
    # What the portal's "Stop pipeline" does (engine/scaling.py stop_all on the ECS scaler):
    scaling.register_scalable_target(**target, SuspendedState={
        "DynamicScalingInSuspended": True, "DynamicScalingOutSuspended": True, "ScheduledScalingSuspended": True})
    ecs.update_service(cluster=cluster, service=service, desiredCount=0)

    assert resume.main(["--cluster", cluster, "--service", service]) == 0
    assert "auto-scaling resumed; desired count 0 -> 1" in capsys.readouterr().out
    assert ecs.describe_services(cluster=cluster, services=[service])["services"][0]["desiredCount"] == 1
    state = scaling.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[target["ResourceId"]])
    assert not any(state["ScalableTargets"][0]["SuspendedState"].values())

    assert resume.main(["--cluster", cluster, "--service", service]) == 0  # a second run changes nothing
    assert "nothing to resume" in capsys.readouterr().out
