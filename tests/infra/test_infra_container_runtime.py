"""The containers as ECS runs them: the image's environment plus the task definition's, the
health check ECS runs, and the file system Fargate gives them.

moto accepts any task definition; these tests run what the definitions say. The consumer is
started with exactly the environment Terraform and the Dockerfile give it (only the AWS
endpoint and credentials point at moto, and the port moves to a free one on this machine),
and the health check command of the task definition must pass against it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.backends import ACCOUNT, aws_account, aws_environment
from tests.infra.dockerfile_model import Image, under
from tests.infra.terraform_model import ROOT, Terraform, block
from tests.infra.terraform_render import Renderer
from tests.local_ports import free_port
from tests.polling import wait_for

IMAGE_TMP = "/tmp"



def _container_env(tf: Terraform, role: str) -> dict[str, str]:
    """The image's ENV overridden by the task definition's environment, as ECS combines them."""
    rendered = Renderer(tf, ACCOUNT).render(tf.locals["containers"][role]["environment"])
    return Image.load().env | {pair["name"]: pair["value"] for pair in rendered}


def _local_command(command: list[str], port: int) -> list[str]:
    """A container command run here: `python` is this interpreter, :8080 the free port."""
    return [sys.executable if word == "python" else word.replace(":8080/", f":{port}/") for word in command]


def test_consumer_environment_names_the_stack_and_turns_the_health_endpoint_on(tf: Terraform) -> None:
    env = _container_env(tf, "consumer")
    with aws_account() as names:
        expected = {k: v for k, v in aws_environment(names).items() if k.startswith("PETROSTREAM_")}
    for name in ("PETROSTREAM_STREAM_NAME", "PETROSTREAM_LEASE_TABLE", "PETROSTREAM_CURATED_BUCKET",
                 "PETROSTREAM_GLUE_DATABASE", "PETROSTREAM_MODEL_BUCKET"):
        assert env[name] == expected[name], name
    probe = tf.locals["containers"]["consumer"]["healthCheck"]["command"][-1]
    port = re.search(r":(\d+)/health$", probe)
    assert port and env["PETROSTREAM_HEALTH_PORT"] == port.group(1)
    mapped = tf.locals["containers"]["consumer"]["portMappings"]
    assert {"containerPort": int(port.group(1)), "protocol": "tcp"} in mapped


def test_consumer_started_as_ecs_starts_it_passes_its_health_checks(tf: Terraform, tmp_path: Path) -> None:
    renderer = Renderer(tf, ACCOUNT)
    check = renderer.render(tf.locals["containers"]["consumer"]["healthCheck"])
    image = Image.load()
    port = free_port()
    env = {name: value.replace(IMAGE_TMP, str(tmp_path)) if value.startswith(IMAGE_TMP) else value
           for name, value in _container_env(tf, "consumer").items()}
    env |= {"PATH": os.environ["PATH"], "HEALTHCHECK_URL": env["HEALTHCHECK_URL"].replace(":8080/", f":{port}/")}
    if "PETROSTREAM_HEALTH_PORT" in env:  # moved, not added: without it the endpoint stays off
        env["PETROSTREAM_HEALTH_PORT"] = str(port)
    assert check["command"][0] == "CMD" and image.cmd == ["python", "-m", "engine", "consume"]
    with aws_account() as names:
        env |= {k: v for k, v in aws_environment(names).items() if k.startswith("AWS_") and k != "AWS_REGION"}
        consumer = subprocess.Popen(_local_command(image.cmd, port), cwd=ROOT, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            def passes(command: list[str]) -> bool:
                assert consumer.poll() is None, consumer.communicate()[0].decode()[-2000:]
                return subprocess.run(_local_command(command, port), env=env, capture_output=True,
                                      timeout=check["timeout"]).returncode == 0

            wait_for(lambda: passes(check["command"][1:]), seconds=check["startPeriod"])
            assert passes(image.healthcheck), "the image's own HEALTHCHECK fails"
        finally:
            consumer.send_signal(signal.SIGTERM)
            output = consumer.communicate(timeout=60)[0].decode()
    assert consumer.returncode == 0, output[-2000:]


def test_every_path_the_containers_write_is_writable_by_the_image_user(tf: Terraform) -> None:
    image = Image.load()
    renderer = Renderer(tf, ACCOUNT)
    base = renderer.render(tf.locals["container_base"]["mountPoints"])
    assert tf.locals["container_base"]["readonlyRootFilesystem"] is True
    mounts = [mount["containerPath"] for mount in base if not mount["readOnly"]]
    assert image.user not in {"", "0", "root"}
    written = {image.env["HOME"], image.env["PETROSTREAM_HOME"], IMAGE_TMP}  # tempfile's default directory
    for env in (_container_env(tf, "consumer"), image.env | renderer.local("container_env")):
        written |= {env["HOME"], env["PETROSTREAM_HOME"]}
    producer = " ".join(renderer.render(tf.locals["containers"]["producer"]["command"]))
    written |= set(re.findall(r"--out (\S+)", producer))
    for path in sorted(written):
        mount = next((m for m in mounts if under(path, m)), None)
        assert mount is not None, f"{path} is on the read-only root file system"
        assert image.user_can_write(mount), (
            f"{path}: Fargate mounts {mount} as {image.runtime_owner(mount)} (owner uid, mode) "
            f"and the image runs as uid {image.user}")


def test_fargate_mount_rule_matches_aws_documentation() -> None:
    """Without a VOLUME the bind mount is root 0755; with one, the image's owner is kept."""
    bare = "FROM x AS a\nRUN mkdir -p /data && chown 10001:10001 /data\nUSER 10001\n"
    assert not Image.load(bare).user_can_write("/data")
    declared = Image.load(bare + 'VOLUME ["/data"]\n')
    assert declared.user_can_write("/data")


@pytest.mark.parametrize("definition", ["consumer", "producer", "portal"])
def test_task_definitions_mount_the_scratch_volume_they_declare(tf: Terraform, definition: str) -> None:
    task = tf.resource("aws_ecs_task_definition", definition)
    assert block(task, "volume")["name"] == "tmp"
    assert Renderer(tf, ACCOUNT).render(tf.locals["container_base"]["mountPoints"]) == [
        {"sourceVolume": "tmp", "containerPath": IMAGE_TMP, "readOnly": False}]
