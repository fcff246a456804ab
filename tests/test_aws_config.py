"""Where the aws backend gets its resource names, and that they are the names Terraform creates.

Names come from the environment first, then the Terraform outputs ``project_up.sh`` saves, then
the defaults Terraform derives from its prefix. ``infra/*.tf`` is parsed (python-hcl2) and its
name expressions evaluated, so a renamed resource on either side fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from engine.backends.aws._config import (
    DEFAULT_PREFIX,
    DEFAULT_REGION,
    ENVIRONMENT,
    OUTPUTS,
    OUTPUTS_FILE,
    default_names,
    load_names,
)
from engine.backends.aws._dynamodb import KEY
from engine.backends.aws._ecs import DIMENSION, METRIC, PRODUCER_CONTAINER, SCALE_IN_COOLDOWN, SCALE_OUT_COOLDOWN
from engine.config import Settings
from engine.errors import InputError
from engine.scaling import ScalingPolicy
from tests.backends import ACCOUNT, aws_account

INFRA = Path(__file__).resolve().parents[1] / "infra"
_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")


def test_the_environment_wins_over_saved_outputs_which_win_over_terraform_defaults(tmp_path: Path) -> None:
    outputs = {"stream_name": "from-outputs", "lease_table": "outputs-leases", "task_subnet_ids": ["subnet-a", "b"],
               "region": "eu-west-1", "portal_url": None}
    (tmp_path / OUTPUTS_FILE).write_text(json.dumps({k: {"value": v, "type": "string"} for k, v in outputs.items()}))
    environment = {"PETROSTREAM_STREAM_NAME": "from-env", "AWS_REGION": "us-east-1"}
    with aws_account():
        names = load_names(Settings(home=tmp_path), environment)
    assert names.stream_name == "from-env" and names.region == "us-east-1"
    assert names.lease_table == "outputs-leases" and names.task_subnets == ("subnet-a", "b")
    assert names.curated_bucket == f"petrostream-curated-{ACCOUNT}"  # the account id came from STS
    assert names.ecs_cluster == "petrostream" and names.glue_database == "petrostream"


def test_a_different_prefix_gives_terraforms_names_for_it(tmp_path: Path) -> None:
    names = load_names(Settings(home=tmp_path), {"PETROSTREAM_NAME_PREFIX": "demo-2", "AWS_REGION": "sa-east-1",
                                                 **{ENVIRONMENT[f]: "x" for f in ("raw_bucket", "curated_bucket",
                                                    "athena_results_bucket", "model_bucket")}})
    assert (names.stream_name, names.glue_database, names.consumer_service) == ("demo-2-ingest", "demo_2",
                                                                                 "demo-2-consumer")
    assert names.region == "sa-east-1"


def test_an_outputs_file_that_is_not_terraform_output_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / OUTPUTS_FILE).write_text('{"stream_name": "no value wrapper"}')
    with pytest.raises(InputError, match=OUTPUTS_FILE):
        load_names(Settings(home=tmp_path), {})


# -- agreement with infra/ ----------------------------------------------------------------
@pytest.fixture(scope="module")
def terraform() -> Any:
    if not INFRA.is_dir() or not list(INFRA.glob("*.tf")):
        pytest.skip("infra/ has no Terraform yet")
    from tests.infra.terraform_model import Terraform

    return Terraform.load(INFRA)


def evaluate(terraform: Any, expression: Any) -> str:
    """A Terraform string expression with its local/var references and replace() calls resolved."""

    def resolve(inner: str) -> str:
        inner = inner.strip()
        if match := re.fullmatch(r'replace\((.+),\s*"(.*)",\s*"(.*)"\)', inner):
            return resolve(match[1]).replace(match[2], match[3])
        if match := re.fullmatch(r'local\.(\w+)\["([^"]+)"\]', inner):
            return evaluate(terraform, terraform.locals[match[1]][match[2]])
        if inner == "local.account_id":
            return ACCOUNT
        if match := re.fullmatch(r"local\.(\w+)", inner):
            return evaluate(terraform, terraform.locals[match[1]])
        if match := re.fullmatch(r"var\.(\w+)", inner):
            return str(terraform.default(match[1]))
        raise AssertionError(f"cannot evaluate ${{{inner}}}")

    return _INTERPOLATION.sub(lambda match: resolve(match[1]), str(expression))


def test_default_names_are_the_names_terraform_gives(terraform: Any) -> None:
    assert terraform.default("name_prefix") == DEFAULT_PREFIX
    assert terraform.default("region") == DEFAULT_REGION
    ours = default_names(DEFAULT_PREFIX, ACCOUNT)
    environment = terraform.locals["container_env"]
    for field, value in ours.items():
        assert evaluate(terraform, environment[ENVIRONMENT[field]]) == value, field
    assert evaluate(terraform, terraform.resource("aws_kinesis_stream", "ingest")["name"]) == ours["stream_name"]
    assert evaluate(terraform, terraform.resource("aws_athena_workgroup", "main")["name"]) == ours["athena_workgroup"]
    assert evaluate(terraform, terraform.resource("aws_ecs_service", "consumer")["name"]) == ours["consumer_service"]
    assert evaluate(terraform, terraform.resource("aws_ecs_task_definition", "producer")["family"]) == \
        ours["producer_task_definition"]
    assert evaluate(terraform, environment["AWS_REGION"]) == DEFAULT_REGION


def test_every_setting_has_its_container_variable_and_terraform_output(terraform: Any) -> None:
    container = set(terraform.locals["container_env"])
    portal_only = {"PETROSTREAM_TASK_SUBNETS", "PETROSTREAM_TASK_SECURITY_GROUP"}
    assert set(ENVIRONMENT.values()) - portal_only <= container
    assert all(name in str(terraform.locals["portal_environment"]) for name in portal_only)
    assert set(OUTPUTS.values()) <= set(terraform.outputs)


def test_the_lease_table_and_consumer_scaling_match_what_terraform_creates(terraform: Any) -> None:
    table = terraform.resource("aws_dynamodb_table", "leases")
    assert table["hash_key"] == KEY and {"name": KEY, "type": "S"} in table["attribute"]
    target = terraform.resource("aws_appautoscaling_target", "consumer")
    assert target["scalable_dimension"] == DIMENSION
    assert evaluate(terraform, target["resource_id"].replace("aws_ecs_cluster.main.name", "local.cluster_name")
                    .replace("aws_ecs_service.consumer.name", "local.consumer_name")) == \
        "service/petrostream/petrostream-consumer"
    policy = terraform.resource("aws_appautoscaling_policy", "consumer_cpu")
    assert evaluate(terraform, policy["name"]) == "petrostream-consumer-cpu"  # what EcsScaler updates
    tracking = policy["target_tracking_scaling_policy_configuration"][0]
    assert tracking["predefined_metric_specification"][0]["predefined_metric_type"] == METRIC
    assert terraform.value(tracking["target_value"]) == ScalingPolicy().cpu_target == 70
    assert (tracking["scale_out_cooldown"], tracking["scale_in_cooldown"]) == (SCALE_OUT_COOLDOWN, SCALE_IN_COOLDOWN)
    assert terraform.locals["containers"]["producer"]["name"] == PRODUCER_CONTAINER
