"""The image and the pipeline: what the Dockerfile builds and what the workflows do.

The linters (test_infra_linters.py) check form; these check the promises: a multi-stage,
non-root image with a health check, and CI that lints, tests, plans, and applies only
behind the protected `production` environment with OIDC credentials."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.infra.terraform_model import ROOT, Terraform, parse

DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
WORKFLOW_DIR = ROOT / ".github" / "workflows"


def _workflow(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOW_DIR / name).read_text(encoding="utf-8"))


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps", [])


def _runs(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in _steps(job))


def _uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in _steps(job) if step.get("uses", "").startswith(f"{action}@")]


def test_image_is_multi_stage_on_python_slim() -> None:
    stages = re.findall(r"^FROM (\S+) AS (\w+)$", DOCKERFILE, flags=re.M)
    assert [image for image, _ in stages] == ["python:3.11-slim", "python:3.11-slim"]
    assert "COPY --from=build /opt/venv /opt/venv" in DOCKERFILE
    assert "-r /tmp/requirements.txt" in DOCKERFILE


def test_image_runs_as_an_unprivileged_user() -> None:
    users = re.findall(r"^USER (\S+)$", DOCKERFILE, flags=re.M)
    assert users and users[-1].split(":")[0] not in {"0", "root"}


def test_image_holds_the_application_packages() -> None:
    # deploy/ too: the portal's cost view reads deploy.cost and its model.
    for folder in ("engine", "ml", "control_center", "pages", "deploy"):
        assert f"COPY {folder}/ {folder}/" in DOCKERFILE


def test_image_compiles_the_c_kernels_at_build_time_and_ships_only_the_libraries() -> None:
    build, runtime = re.split(r"^FROM \S+ AS runtime$", DOCKERFILE, flags=re.M)
    assert "gcc" in build and "python -m engine.native" in build  # compiled where a compiler is
    assert "gcc" not in runtime and "COPY --from=build /build/engine/_*.so engine/" in runtime
    assert runtime.index("COPY engine/ engine/") < runtime.index("/build/engine/_*.so engine/")
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "**/_*.so" in ignored  # a library built on the developer's machine stays out


def test_image_checks_the_consumer_health_and_consumes_by_default() -> None:
    assert "HEALTHCHECK_URL=http://127.0.0.1:8080/health" in DOCKERFILE
    healthcheck = re.search(r"^HEALTHCHECK .*\n.*CMD (\[.*\])$", DOCKERFILE, flags=re.M)
    assert healthcheck and "urllib.request" in healthcheck.group(1)
    assert DOCKERFILE.rstrip().splitlines()[-1] == 'CMD ["python", "-m", "engine", "consume"]'


def test_build_context_is_an_allow_list() -> None:
    lines = [line for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
             if line and not line.startswith("#")]
    assert lines[0] == "*", "everything is excluded unless named"
    assert {"!requirements.txt", "!engine/", "!ml/", "!control_center/", "!pages/", "!deploy/"} <= set(lines)


def test_ci_lints_and_tests_every_pull_request_and_push() -> None:
    ci = _workflow("ci.yml")
    triggers = ci[True]  # YAML 1.1 reads the key `on` as true
    assert "pull_request" in triggers and "push" in triggers
    assert "ruff check" in _runs(ci["jobs"]["lint"])
    assert "make test" in _runs(ci["jobs"]["test"])


def test_ci_checks_terraform_format_validity_and_plan() -> None:
    jobs = _workflow("ci.yml")["jobs"]
    checks = _runs(jobs["terraform"])
    assert "terraform fmt -check" in checks and "terraform validate" in checks
    assert "terraform plan" in _runs(jobs["plan"])


def test_deploy_applies_only_behind_the_production_environment() -> None:
    deploy = _workflow("deploy.yml")
    jobs = deploy["jobs"]
    applying = [name for name, job in jobs.items() if "terraform apply" in _runs(job)]
    assert applying == ["apply"]
    assert jobs["apply"]["environment"] == "production"
    assert jobs["apply"]["needs"] == "plan"
    assert "-out=tfplan" in _runs(jobs["plan"]) and "terraform apply -input=false tfplan" in _runs(jobs["apply"])
    assert jobs["checks"]["uses"] == "./.github/workflows/ci.yml"


def test_aws_access_is_by_oidc_role_only() -> None:
    for name in ("ci.yml", "deploy.yml"):
        workflow = _workflow(name)
        assert workflow["permissions"] == {"contents": "read"}, "least privilege at the top"
        for job_name, job in workflow["jobs"].items():
            for step in _uses(job, "aws-actions/configure-aws-credentials"):
                assert step["with"]["role-to-assume"].startswith("${{ vars."), job_name
                assert "aws-access-key-id" not in step["with"], job_name
                assert job["permissions"]["id-token"] == "write", job_name
        assert "AWS_SECRET_ACCESS_KEY" not in (WORKFLOW_DIR / name).read_text(encoding="utf-8")


def test_deploy_pushes_the_image_to_ecr() -> None:
    image = _workflow("deploy.yml")["jobs"]["image"]
    assert _uses(image, "aws-actions/amazon-ecr-login")
    (build,) = _uses(image, "docker/build-push-action")
    assert build["with"]["push"] is True
    assert build["with"]["tags"].endswith(":${{ env.IMAGE_TAG }}")


def test_deploy_waits_until_the_services_are_stable_on_the_new_revision() -> None:
    script = _runs(_workflow("deploy.yml")["jobs"]["apply"])
    assert "aws ecs wait services-stable" in script
    assert "consumer_task_definition_arn" in script, "a rolled-back deployment must fail the job"


def test_linters_are_pinned_and_installed_apart_from_the_runtime() -> None:
    pins = [line for line in (ROOT / "infra" / "tools-requirements.txt").read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#")]
    assert pins and all(re.fullmatch(r"[a-z0-9-]+==[0-9.]+", pin) for pin in pins), pins
    makefile = (ROOT / "infra.mk").read_text(encoding="utf-8")
    assert "TEST_PREREQS += infra-tools" in makefile
    assert "INFRA_VENV := .venv-infra" in makefile and "-r infra/tools-requirements.txt" in makefile


def test_ci_plan_gets_the_terraform_inputs_from_repository_settings(tmp_path: Path) -> None:
    """Run the plan job's input step as Actions would: its tfvars and variables reach terraform plan."""
    steps = _steps(_workflow("deploy.yml")["jobs"]["plan"])
    names = [step.get("name", "") for step in steps]
    inputs = steps[names.index("Terraform inputs from the repository's variables and secrets")]
    assert names.index("Terraform inputs from the repository's variables and secrets") < names.index("terraform plan")
    assert inputs["env"] == {"TFVARS": "${{ vars.TERRAFORM_TFVARS }}",
                             "BUDGET_ALERT_EMAILS": "${{ secrets.BUDGET_ALERT_EMAILS }}"}
    github_env = tmp_path / "github_env"
    environment = {"PATH": os.environ["PATH"], "GITHUB_ENV": str(github_env),
                   "TFVARS": 'enable_portal = true\ncertificate_arn = "arn:aws:acm:us-east-1:1:certificate/x"',
                   "BUDGET_ALERT_EMAILS": '["ops@example.com"]'}
    subprocess.run(["bash", "-e", "-c", inputs["run"]], cwd=tmp_path, env=environment, check=True)
    tfvars = parse(tmp_path / "ci.auto.tfvars")  # Terraform loads *.auto.tfvars by itself
    assert tfvars["enable_portal"] is True and set(tfvars) <= set(Terraform.load().variables)
    assert github_env.read_text(encoding="utf-8") == 'TF_VAR_budget_alert_emails=["ops@example.com"]\n'
    environment |= {"TFVARS": "", "BUDGET_ALERT_EMAILS": ""}
    github_env.unlink()
    subprocess.run(["bash", "-e", "-c", inputs["run"]], cwd=tmp_path, env=environment, check=True)
    assert not github_env.exists(), "an unset secret must not set an empty (invalid) list"
    readme = (ROOT / "infra" / "README.md").read_text(encoding="utf-8")
    assert "TERRAFORM_TFVARS" in readme and "BUDGET_ALERT_EMAILS" in readme


def test_ci_builds_the_image_for_the_task_architecture() -> None:
    build = _uses(_workflow("deploy.yml")["jobs"]["image"], "docker/build-push-action")[0]
    # Graviton, which docs/COST.md prices (cheaper than x86 on Fargate and Fargate Spot alike)
    assert build["with"]["platforms"] == Terraform.load().image_platform() == "linux/arm64"
    (qemu,) = _uses(_workflow("deploy.yml")["jobs"]["image"], "docker/setup-qemu-action")  # an x86 runner builds it
    assert qemu["with"]["platforms"] == "arm64"
