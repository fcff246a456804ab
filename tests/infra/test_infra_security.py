"""Secure by default: least-privilege IAM, locked-down buckets, a private HTTPS portal,
minimal security groups, encrypted everything, nothing secret in outputs."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.infra.terraform_model import INFRA, Terraform, block, blocks, ref

# Actions AWS does not let a policy scope to a resource; only these may name Resource "*".
UNSCOPABLE_ACTIONS = {
    "ecr:GetAuthorizationToken",
    "ecs:ListTasks",
    "ecs:DescribeTaskDefinition",
    "application-autoscaling:DescribeScalableTargets",
    "application-autoscaling:DescribeScalingActivities",
    "application-autoscaling:DescribeScalingPolicies",
    "cloudwatch:GetMetricData",
    "cloudwatch:GetMetricStatistics",
}
KEY_POLICY = "kms"  # a key policy's Resource "*" means the key itself


def _statements(tf: Terraform) -> list[tuple[str, dict[str, Any]]]:
    return [(name, statement) for name, document in tf.data["aws_iam_policy_document"].items()
            for statement in blocks(document, "statement")]


def _resources(statement: dict[str, Any]) -> list[str]:
    resources = statement.get("resources", [])
    return resources if isinstance(resources, list) else [resources]  # a for-expression stays one string


def test_no_policy_grants_a_wildcard_action(tf: Terraform) -> None:
    for name, statement in _statements(tf):
        if statement.get("effect") == "Deny":
            continue  # a wide Deny (refuse plain HTTP) narrows access
        for action in statement.get("actions", []):
            assert action != "*" and not action.endswith(":*"), f"{name}: {action}"


def test_resource_wildcards_only_for_actions_that_cannot_be_scoped(tf: Terraform) -> None:
    for name, statement in _statements(tf):
        if name == KEY_POLICY or statement.get("effect") == "Deny" or statement.get("principals"):
            continue  # resource and key policies, not identity policies
        if "*" in _resources(statement):
            assert set(statement["actions"]) <= UNSCOPABLE_ACTIONS, f"{name}: {statement['actions']}"


def test_every_role_policy_comes_from_a_checked_document(tf: Terraform) -> None:
    assert "aws_iam_role_policy_attachment" not in tf.resources, "no managed (broad) policies"
    for name, policy in tf.all_of("aws_iam_role_policy").items():
        assert re.fullmatch(r"\$\{data\.aws_iam_policy_document\.\w+\.json\}", policy["policy"]), name
    for name, role in tf.all_of("aws_iam_role").items():
        assert ref(role["assume_role_policy"]).startswith("data.aws_iam_policy_document."), name


def test_each_task_has_its_own_role(tf: Terraform) -> None:
    definitions = tf.all_of("aws_ecs_task_definition")
    assert set(definitions) == {"consumer", "producer", "portal", "bi_views"}
    assert len({ref(definition["task_role_arn"]) for definition in definitions.values()}) == len(definitions)
    for definition in definitions.values():
        assert definition["execution_role_arn"] != definition["task_role_arn"]


def test_roles_can_only_be_assumed_from_this_account(tf: Terraform) -> None:
    for name in ("ecs_tasks_assume", "service_assume"):
        (statement,) = blocks(tf.data["aws_iam_policy_document"][name], "statement")
        condition = block(statement, "condition")
        assert condition["variable"] == "aws:SourceAccount"


def _bucket_resources(tf: Terraform, type_name: str) -> dict[str, dict[str, Any]]:
    found = tf.all_of(type_name)
    assert set(found) == {"data", "logs"}, f"{type_name} must cover every bucket"
    return found


def test_buckets_block_public_access_and_enforce_ownership(tf: Terraform) -> None:
    for name, access in _bucket_resources(tf, "aws_s3_bucket_public_access_block").items():
        for setting in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
            assert access[setting] is True, f"{name}.{setting}"
    for name, ownership in _bucket_resources(tf, "aws_s3_bucket_ownership_controls").items():
        assert block(ownership, "rule")["object_ownership"] == "BucketOwnerEnforced", name


def test_buckets_are_encrypted_and_versioned(tf: Terraform) -> None:
    encryption = _bucket_resources(tf, "aws_s3_bucket_server_side_encryption_configuration")
    data_rule = block(block(encryption["data"], "rule"), "apply_server_side_encryption_by_default")
    assert data_rule["sse_algorithm"] == "aws:kms"
    assert ref(data_rule["kms_master_key_id"]) == "aws_kms_key.main.arn"
    logs_rule = block(block(encryption["logs"], "rule"), "apply_server_side_encryption_by_default")
    assert logs_rule["sse_algorithm"] == "AES256", "S3 and ALB log delivery only write to SSE-S3 buckets"
    for name, versioning in _bucket_resources(tf, "aws_s3_bucket_versioning").items():
        assert block(versioning, "versioning_configuration")["status"] == "Enabled", name
    assert tf.resource("aws_s3_bucket", "data")["for_each"] == "${local.data_buckets}"
    assert "force_destroy" not in tf.resource("aws_s3_bucket", "data"), "only project_down.sh empties data"


def _denies_plain_http(statement: dict[str, Any]) -> bool:
    condition = block(statement, "condition")
    return (statement.get("effect") == "Deny" and statement["actions"] == ["s3:*"]
            and condition == {"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]})


def test_buckets_refuse_plain_http(tf: Terraform) -> None:
    policies = _bucket_resources(tf, "aws_s3_bucket_policy")
    assert policies["data"]["policy"] == "${data.aws_iam_policy_document.tls_only[each.key].json}"
    assert policies["logs"]["policy"] == "${data.aws_iam_policy_document.logs_bucket.json}"
    for document in ("tls_only", "logs_bucket"):
        statements = blocks(tf.data["aws_iam_policy_document"][document], "statement")
        assert any(_denies_plain_http(statement) for statement in statements), document


def test_portal_listener_is_https_and_http_redirects(tf: Terraform) -> None:
    https = tf.resource("aws_lb_listener", "https")
    assert https["protocol"] == "HTTPS" and https["port"] == 443
    assert https["ssl_policy"].startswith("ELBSecurityPolicy-TLS13-1-2")
    assert https["certificate_arn"] == "${var.certificate_arn}"
    http = tf.resource("aws_lb_listener", "http")
    action = block(http, "default_action")
    assert action["type"] == "redirect"
    assert block(action, "redirect") == {"port": "443", "protocol": "HTTPS", "status_code": "HTTP_301"}
    assert tf.resource("aws_lb", "portal")["drop_invalid_header_fields"] is True


def test_portal_is_not_open_to_the_internet_by_default(tf: Terraform) -> None:
    assert tf.default("allowed_cidrs") == []
    assert tf.default("enable_portal") is False
    validation = block(tf.variables["allowed_cidrs"], "validation")
    assert '"/0"' in validation["condition"], "a /0 network must be refused"
    ingress = tf.resource("aws_vpc_security_group_ingress_rule", "alb")
    assert "var.allowed_cidrs" in ingress["for_each"]
    assert ingress["cidr_ipv4"] == "${each.value.cidr}"


def test_no_ingress_from_anywhere_and_egress_only_https(tf: Terraform) -> None:
    text = "\n".join(path.read_text(encoding="utf-8") for path in INFRA.glob("*.tf"))
    assert "ingress {" not in text and "egress {" not in text, "rules are separate resources"
    for name, rule in tf.all_of("aws_vpc_security_group_ingress_rule").items():
        assert rule.get("cidr_ipv4") != "0.0.0.0/0", name
    for name, rule in tf.all_of("aws_vpc_security_group_egress_rule").items():
        if rule.get("cidr_ipv4") == "0.0.0.0/0":
            assert (rule["ip_protocol"], rule["from_port"], rule["to_port"]) == ("tcp", 443, 443), name
    default_group = tf.resource("aws_default_security_group", "main")
    assert set(default_group) == {"vpc_id"}, "the default security group must allow nothing"


def test_subnets_do_not_hand_out_public_addresses(tf: Terraform) -> None:
    assert tf.resource("aws_subnet", "public")["map_public_ip_on_launch"] is False


@pytest.mark.parametrize("role", ["consumer", "producer", "portal"])
def test_containers_run_read_only_and_unprivileged(tf: Terraform, role: str) -> None:
    base = tf.locals["container_base"]
    assert base["readonlyRootFilesystem"] is True
    assert "privileged" not in base and "privileged" not in tf.locals["containers"][role]
    assert base["mountPoints"] == [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}]


def test_everything_is_encrypted_with_the_rotated_project_key(tf: Terraform) -> None:
    key = tf.resource("aws_kms_key", "main")
    assert key["enable_key_rotation"] is True
    assert key["deletion_window_in_days"] == 7
    assert ref(block(tf.resource("aws_dynamodb_table", "leases"), "server_side_encryption")["kms_key_arn"]) == \
        "aws_kms_key.main.arn"
    assert ref(tf.resource("aws_kinesis_stream", "ingest")["kms_key_id"]) == "aws_kms_key.main.arn"
    assert ref(block(tf.resource("aws_ecr_repository", "app"), "encryption_configuration")["kms_key"]) == \
        "aws_kms_key.main.arn"
    for name, group in tf.all_of("aws_cloudwatch_log_group").items():
        assert ref(group["kms_key_id"]) == "aws_kms_key.main.arn", name


def test_images_are_scanned_and_immutable(tf: Terraform) -> None:
    repository = tf.resource("aws_ecr_repository", "app")
    assert block(repository, "image_scanning_configuration")["scan_on_push"] is True
    assert repository["image_tag_mutability"] == "IMMUTABLE"


def test_no_secrets_in_code_or_outputs(tf: Terraform) -> None:
    text = "\n".join(path.read_text(encoding="utf-8") for path in INFRA.iterdir() if path.is_file())
    assert not re.search(r"AKIA[0-9A-Z]{16}", text), "an access key id"
    assert not re.search(r"(?i)(secret_key|password|private_key)\s*=", text)
    for name, output in tf.outputs.items():
        assert not re.search(r"(?i)secret|password|private|token", f"{name} {output['value']}"), name


def test_every_checkov_skip_gives_a_reason() -> None:
    for path in INFRA.glob("*.tf"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if "checkov:skip" in line:
                assert re.search(r"#checkov:skip=CKV2?_AWS_\d+:\S.{20,}", line), f"{path.name}: {line.strip()}"


def test_the_hosted_portal_requires_sign_in_before_any_request_is_forwarded(tf: Terraform) -> None:
    actions = sorted(blocks(tf.resource("aws_lb_listener", "https"), "default_action"), key=lambda a: a["order"])
    assert [a["type"] for a in actions] == ["authenticate-cognito", "forward"]
    cognito = block(actions[0], "authenticate_cognito")
    assert cognito["on_unauthenticated_request"] == "authenticate"
    assert cognito["user_pool_client_id"] == "${aws_cognito_user_pool_client.portal[0].id}"
    pool = tf.resource("aws_cognito_user_pool", "portal")
    assert block(pool, "admin_create_user_config")["allow_admin_create_user_only"] is True  # no self sign-up
    client = tf.resource("aws_cognito_user_pool_client", "portal")
    assert client["generate_secret"] is True and client["allowed_oauth_flows"] == ["code"]
    assert client["callback_urls"] == ["https://${local.portal_host}/oauth2/idpresponse"]
    for rule in tf.all_of("aws_lb_listener_rule").values():  # no rule forwards to the portal around sign-in
        assert "portal" not in str(block(rule, "action").get("target_group_arn", ""))


def test_only_model_signers_may_sign_and_tasks_may_only_verify(tf: Terraform) -> None:
    key = tf.resource("aws_kms_key", "model_signing")
    assert key["key_usage"] == "SIGN_VERIFY" and key["customer_master_key_spec"] == "ECC_NIST_P256"
    statements = {s["sid"]: s for s in blocks(tf.data["aws_iam_policy_document"]["model_signing"], "statement")}
    signers = [s for s in statements.values() if "kms:Sign" in s["actions"]]
    assert [s["sid"] for s in signers] == ["OnlyModelSignersSign"]
    assert block(signers[0], "principals")["identifiers"] == "${local.model_signers}"
    assert "kms:Sign" not in str(tf.data["aws_iam_policy_document"]["kms"])  # nor through the project key
    for role in ("consumer", "portal", "producer"):
        granted = [a for s in blocks(tf.data["aws_iam_policy_document"][role], "statement") for a in s["actions"]]
        assert "kms:Sign" not in granted, role
    for role in ("consumer", "portal"):
        verify = [s for s in blocks(tf.data["aws_iam_policy_document"][role], "statement")
                  if s["sid"] == "VerifyModelSignatures"]
        assert verify and verify[0]["actions"] == ["kms:GetPublicKey"]
        assert verify[0]["resources"] == ["${aws_kms_key.model_signing.arn}"]
    assert tf.locals["container_env"]["PETROSTREAM_MODEL_KEY"] == "kms:${local.model_signing_alias}"
    assert tf.resource("aws_kms_alias", "model_signing")["name"] == "${local.model_signing_alias}"
    assert tf.resource("aws_kms_alias", "model_signing")["target_key_id"] == "${aws_kms_key.model_signing.key_id}"
