"""The Terraform wiring the engine relies on: names, links between resources, defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.infra.terraform_model import INFRA, Terraform, block, blocks, parse, ref

ENGINE_ENV = {
    "PETROSTREAM_BACKEND", "AWS_REGION", "PETROSTREAM_STREAM_NAME", "PETROSTREAM_RAW_BUCKET",
    "PETROSTREAM_CURATED_BUCKET", "PETROSTREAM_ATHENA_RESULTS_BUCKET", "PETROSTREAM_MODEL_BUCKET",
    "PETROSTREAM_GLUE_DATABASE", "PETROSTREAM_ATHENA_WORKGROUP", "PETROSTREAM_LEASE_TABLE",
    "PETROSTREAM_ECS_CLUSTER", "PETROSTREAM_CONSUMER_SERVICE", "PETROSTREAM_PRODUCER_TASK_DEFINITION",
    "PETROSTREAM_BATCH_SECONDS", "PETROSTREAM_MODEL_KEY",
}
ENGINE_OUTPUTS = {
    "stream_name", "raw_bucket", "curated_bucket", "athena_results_bucket", "model_bucket", "glue_database",
    "athena_workgroup", "lease_table", "ecs_cluster", "consumer_service", "portal_service",
    "producer_task_definition", "ecr_repository_url", "portal_url", "region",
}


@pytest.mark.parametrize("path", sorted(INFRA.glob("*.tf")), ids=lambda path: path.name)
def test_every_tf_file_parses(path: Path) -> None:
    assert parse(path), f"{path.name} is empty"


def test_default_names_match_the_engine(tf: Terraform) -> None:
    assert tf.default("name_prefix") == "petrostream"
    assert tf.locals["stream_name"] == "${local.prefix}-ingest"
    assert tf.locals["firehose_name"] == "${local.prefix}-delivery"
    assert tf.locals["lease_table"] == "${local.prefix}-leases"
    assert tf.locals["consumer_name"] == "${local.prefix}-consumer"
    assert tf.locals["portal_name"] == "${local.prefix}-portal"
    assert tf.locals["producer_family"] == "${local.prefix}-producer"
    kinds = ("raw", "curated", "athena-results", "models")
    assert tf.locals["data_buckets"] == {kind: f"${{local.prefix}}-{kind}-${{local.account_id}}" for kind in kinds}
    assert tf.resource("aws_ecr_repository", "app")["name"] == "${local.prefix}"
    assert tf.resource("aws_ecs_cluster", "main")["name"] == "${local.cluster_name}"
    assert tf.resource("aws_athena_workgroup", "main")["name"] == "${local.prefix}"


def test_kinesis_defaults_to_one_provisioned_shard(tf: Terraform) -> None:
    stream = tf.resource("aws_kinesis_stream", "ingest")
    assert stream["name"] == "${local.stream_name}"
    assert tf.default("kinesis_shard_count") == 1
    assert tf.default("kinesis_on_demand") is False
    assert "var.kinesis_on_demand" in block(stream, "stream_mode_details")["stream_mode"]
    assert stream["encryption_type"] == "KMS"


def test_firehose_reads_the_stream_and_delivers_to_the_raw_bucket(tf: Terraform) -> None:
    firehose = tf.resource("aws_kinesis_firehose_delivery_stream", "delivery")
    assert firehose["name"] == "${local.firehose_name}"
    assert ref(block(firehose, "kinesis_source_configuration")["kinesis_stream_arn"]) == "aws_kinesis_stream.ingest.arn"
    destination = block(firehose, "extended_s3_configuration")
    assert ref(destination["bucket_arn"]) == 'aws_s3_bucket.data["raw"].arn'
    assert block(destination, "cloudwatch_logging_options")["enabled"] is True


def test_lease_table_is_on_demand_keyed_by_lease_key(tf: Terraform) -> None:
    table = tf.resource("aws_dynamodb_table", "leases")
    assert table["name"] == "${local.lease_table}"
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert table["hash_key"] == "lease_key"
    assert block(table, "attribute") == {"name": "lease_key", "type": "S"}


def test_glue_database_and_athena_workgroup_with_a_scan_cutoff(tf: Terraform) -> None:
    assert tf.resource("aws_glue_catalog_database", "main")["name"] == "${local.glue_database}"
    assert tf.locals["glue_database"] == '${replace(local.prefix, "-", "_")}'
    configuration = block(tf.resource("aws_athena_workgroup", "main"), "configuration")
    assert configuration["enforce_workgroup_configuration"] is True
    cutoff = tf.value(configuration["bytes_scanned_cutoff_per_query"])
    assert 10 * 1024**2 <= cutoff <= 10 * 1024**3
    results = block(configuration, "result_configuration")
    assert 'aws_s3_bucket.data["athena-results"]' in results["output_location"]


def test_cluster_offers_fargate_and_fargate_spot(tf: Terraform) -> None:
    providers = tf.resource("aws_ecs_cluster_capacity_providers", "main")
    assert set(providers["capacity_providers"]) == {"FARGATE", "FARGATE_SPOT"}


def _strategy_source(service: dict) -> str:
    (dynamic,) = [item["capacity_provider_strategy"] for item in service.get("dynamic", [])
                  if "capacity_provider_strategy" in item]
    return ref(dynamic["for_each"])


@pytest.mark.parametrize("service", ["consumer", "portal"])
def test_services_run_one_task_on_demand_and_the_rest_on_spot(tf: Terraform, service: str) -> None:
    """Spot has no fallback: without an on-demand base no task runs while Spot capacity is short."""
    assert _strategy_source(tf.resource("aws_ecs_service", service)) == "local.capacity_strategy"
    weights = {item["provider"]: tf.value(item["weight"]) for item in tf.locals["capacity_strategy"]}
    bases = {item["provider"]: tf.value(item["base"]) for item in tf.locals["capacity_strategy"]}
    assert weights["FARGATE_SPOT"] > 0 and bases["FARGATE_SPOT"] == 0  # ECS: a base on one provider only
    assert weights["FARGATE"] == 0 and bases["FARGATE"] >= 1, "the first task must not wait for Spot"


def test_consumer_autoscaling_targets_70_percent_cpu(tf: Terraform) -> None:
    target = tf.resource("aws_appautoscaling_target", "consumer")
    assert target["resource_id"] == "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.consumer.name}"
    assert target["scalable_dimension"] == "ecs:service:DesiredCount"
    assert target["service_namespace"] == "ecs"
    assert 1 <= tf.value(target["min_capacity"]) <= tf.value(target["max_capacity"])
    policy = tf.resource("aws_appautoscaling_policy", "consumer_cpu")
    assert policy["policy_type"] == "TargetTrackingScaling"
    assert ref(policy["resource_id"]) == "aws_appautoscaling_target.consumer.resource_id"
    tracking = block(policy, "target_tracking_scaling_policy_configuration")
    assert tf.value(tracking["target_value"]) == 70
    metric = block(tracking, "predefined_metric_specification")
    assert metric["predefined_metric_type"] == "ECSServiceAverageCPUUtilization"
    service = tf.resource("aws_ecs_service", "consumer")
    assert "desired_count" in block(service, "lifecycle")["ignore_changes"], "the auto-scaler owns the count"


def test_containers_run_the_engine_commands(tf: Terraform) -> None:
    containers = tf.locals["containers"]
    consumer, portal, producer = containers["consumer"], containers["portal"], containers["producer"]
    assert consumer["command"] == ["python", "-m", "engine", "consume"]
    assert consumer["portMappings"] == [{"containerPort": 8080, "protocol": "tcp"}]
    assert "http://127.0.0.1:8080/health" in consumer["healthCheck"]["command"]
    assert portal["command"] == ["streamlit", "run", "control_center/app.py", "--server.port", "8501",
                                 "--server.address", "0.0.0.0"]
    assert "http://127.0.0.1:8501/_stcore/health" in portal["healthCheck"]["command"]
    assert "python -m engine replay --data" in " ".join(tf.value(producer["command"]))
    for role in ("consumer", "producer", "portal"):
        definition = tf.resource("aws_ecs_task_definition", role)
        assert f'local.containers["{role}"]' in definition["container_definitions"]
        assert definition["requires_compatibilities"] == ["FARGATE"]
        assert definition["network_mode"] == "awsvpc"


def test_task_sizes_stay_small(tf: Terraform) -> None:
    for role in ("consumer", "producer", "portal"):
        assert tf.default(f"{role}_cpu") == 256
        assert tf.default(f"{role}_memory") <= 1024


def test_portal_is_behind_the_load_balancer(tf: Terraform) -> None:
    target_group = tf.resource("aws_lb_target_group", "portal")
    assert target_group["port"] == 8501 and target_group["target_type"] == "ip"
    assert block(target_group, "health_check")["path"] == "/_stcore/health"
    balancer = block(tf.resource("aws_ecs_service", "portal"), "load_balancer")
    assert ref(balancer["target_group_arn"]) == "aws_lb_target_group.portal[0].arn"
    assert balancer["container_port"] == 8501


def test_consumer_health_and_metrics_are_not_routed_through_the_public_listener(tf: Terraform) -> None:
    """ECS probes /health inside the task; the load balancer forwards to the portal only."""
    for rule in tf.all_of("aws_lb_listener_rule").values():
        for condition in rule.get("condition", []):
            for pattern in condition.get("path_pattern", []):
                assert not {"/health", "/metrics"} & set(pattern["values"]), rule
    for group in tf.all_of("aws_lb_target_group").values():
        assert group["port"] != 8080, "a consumer target group would need a listener (ECS refuses one without)"
    consumer = tf.resource("aws_ecs_service", "consumer")
    assert "load_balancer" not in consumer and "health_check_grace_period_seconds" not in consumer
    inbound = [rule for rule in tf.all_of("aws_vpc_security_group_ingress_rule").values()
               if "workers" in str(rule["security_group_id"]) or "workers" in str(rule.get("for_each", ""))]
    assert inbound == [], "nothing may reach the consumer port from outside the task"


def test_containers_get_the_engine_configuration(tf: Terraform) -> None:
    env = tf.locals["container_env"]
    assert set(env) == ENGINE_ENV
    assert env["PETROSTREAM_BACKEND"] == "aws"
    assert env["PETROSTREAM_STREAM_NAME"] == "${local.stream_name}"
    assert env["PETROSTREAM_RAW_BUCKET"] == '${local.data_buckets["raw"]}'
    assert env["PETROSTREAM_PRODUCER_TASK_DEFINITION"] == "${local.producer_family}"
    assert env["PETROSTREAM_BATCH_SECONDS"] == "${tostring(var.consumer_batch_seconds)}"
    assert tf.default("consumer_batch_seconds") == 15  # batches every second would cost ~40 USD/month a shard
    assert tf.locals["containers"]["producer"]["environment"] == "${local.environment}"
    assert tf.locals["containers"]["consumer"]["environment"] == "${local.consumer_environment}"
    assert tf.locals["containers"]["portal"]["environment"] == "${local.portal_environment}"


def test_outputs_cover_everything_the_engine_reads(tf: Terraform) -> None:
    assert set(tf.outputs) >= ENGINE_OUTPUTS | {"container_environment"}
    assert tf.outputs["container_environment"]["value"] == "${local.container_env}"
    assert not any(output.get("sensitive") for output in tf.outputs.values())


def test_every_log_group_keeps_logs_one_day(tf: Terraform) -> None:
    groups = tf.all_of("aws_cloudwatch_log_group")
    assert {"flow", "firehose", "tasks"} <= set(groups)
    assert tf.default("log_retention_days") == 1
    for name, group in groups.items():
        assert tf.value(group["retention_in_days"]) == 1, name
        assert group["name"].startswith("${local.log_group_prefix}/"), "the leftover check finds them by prefix"


def test_budget_alerts_exist_with_a_10_usd_monthly_default(tf: Terraform) -> None:
    budget = tf.resource("aws_budgets_budget", "cost")
    assert budget["budget_type"] == "COST"
    assert tf.locals["budgets"]["monthly"]["limit"] == "${var.budget_limit_usd}"
    assert tf.locals["budgets"]["monthly"]["period"] == "MONTHLY"
    assert tf.default("budget_limit_usd") == 10
    assert tf.default("project_budget_usd") == 120
    (notification,) = [item["notification"] for item in budget["dynamic"] if "notification" in item]
    assert block(notification, "content")["subscriber_email_addresses"] == "${var.budget_alert_emails}"
    assert "budget_alerts_have_a_recipient" in tf.checks


def test_no_nat_gateway_on_any_path(tf: Terraform) -> None:
    assert "aws_nat_gateway" not in tf.resources
    assert "aws_eip" not in tf.resources
    routes = blocks(tf.resource("aws_route_table", "public"), "route")
    assert [ref(route["gateway_id"]) for route in routes] == ["aws_internet_gateway.main.id"]
    gateways = tf.resource("aws_vpc_endpoint", "gateway")
    assert gateways["vpc_endpoint_type"] == "Gateway"


def test_every_resource_is_tagged_through_the_provider(tf: Terraform) -> None:
    tags = block(tf.providers["aws"], "default_tags")["tags"]
    assert tags["Project"] == "${var.name_prefix}"
    assert {"Environment", "ManagedBy"} <= set(tags)


def test_remote_state_example_is_an_encrypted_s3_backend() -> None:
    (settings,) = parse(INFRA / "backend.tf.example")["terraform"]
    backend = block(settings, "backend")["s3"]
    assert backend["encrypt"] is True and backend["use_lockfile"] is True


def test_rewritten_lake_versions_expire_within_a_day(tf: Terraform) -> None:
    lifecycle = tf.resource("aws_s3_bucket_lifecycle_configuration", "data")
    rule = block(lifecycle, "rule")
    assert block(rule, "noncurrent_version_expiration")["noncurrent_days"] == "${local.noncurrent_days[each.key]}"
    assert tf.locals["noncurrent_days"]["curated"] == 1
    assert all(days >= 1 for days in tf.locals["noncurrent_days"].values())  # AWS wants a positive number
    assert set(tf.locals["noncurrent_days"]) == set(tf.locals["data_buckets"])


@pytest.mark.parametrize("service", ["consumer", "portal"])
def test_services_wait_for_everything_their_tasks_reach_by_name(tf: Terraform, service: str) -> None:
    """Containers find resources by name (container_env), which is no Terraform reference: the
    service must depend on each explicitly, or the first apply starts tasks before they exist."""
    named = set(tf.locals["container_env"].values())
    needed = {f"{kind}.{name}" for kind, blocks in tf.resources.items() for name, body in blocks.items()
              if body.get("name") in named and kind not in {"aws_ecs_cluster", "aws_ecs_service", "aws_ecr_repository"}}
    needed |= {"aws_s3_bucket.data", f"aws_iam_role_policy.{service}", "aws_iam_role_policy.execution",
               "aws_route_table_association.public", "aws_ecs_cluster_capacity_providers.main"}
    assert {"aws_kinesis_stream.ingest", "aws_dynamodb_table.leases", "aws_glue_catalog_database.main",
            "aws_athena_workgroup.main"} <= needed
    depends = {ref(item) for item in tf.resource("aws_ecs_service", service)["depends_on"]}
    for shared in [d for d in depends if d.startswith("terraform_data.")]:  # a shared list of edges
        depends |= {ref(item) for item in tf.resource(*shared.split("."))["depends_on"]}
    assert needed <= depends, sorted(needed - depends)
    if service == "portal":
        assert "aws_lb_listener.https" in depends, "a target group needs its listener before ECS uses it"


def test_the_power_bi_views_move_forward_every_day_without_a_deploy(tf: Terraform) -> None:
    """The views bake their window's first day (engine/bi.py): a daily task re-creates them, and
    its schedule's role may run that one task definition and hand ECS its two roles, no more."""
    schedule = tf.resource("aws_scheduler_schedule", "bi_views")
    expression = tf.value(schedule["schedule_expression"])
    assert re.fullmatch(r"cron\(\d+ \d+ \* \* \? \*\)", expression), expression  # once a day
    target = block(schedule, "target")
    assert ref(target["arn"]) == "aws_ecs_cluster.main.arn"
    parameters = block(target, "ecs_parameters")
    assert ref(parameters["task_definition_arn"]) == "aws_ecs_task_definition.bi_views.arn"
    assert block(parameters, "network_configuration")["assign_public_ip"] is True  # no NAT: AWS APIs over HTTPS
    container = tf.locals["containers"]["bi_views"]
    assert container["command"] == ["python", "-m", "engine", "bi-views"]
    assert 'local.containers["bi_views"]' in tf.resource("aws_ecs_task_definition", "bi_views")["container_definitions"]
    statements = {s["sid"]: s for s in blocks(tf.data["aws_iam_policy_document"]["bi_views_schedule"], "statement")}
    assert statements["RunBiViewsTask"]["actions"] == ["ecs:RunTask"]
    assert statements["RunBiViewsTask"]["resources"][0].endswith("task-definition/${local.bi_views_family}:*")
    assert [ref(r) for r in statements["PassTaskRoles"]["resources"]] == \
        ["aws_iam_role.execution.arn", "aws_iam_role.bi_views.arn"]
    assert set(statements) == {"RunBiViewsTask", "PassTaskRoles"}
