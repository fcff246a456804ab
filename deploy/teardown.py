"""The parts of ``project_down.sh`` that need more than one AWS call: stop one-off tasks,
empty the project's buckets (every object version, delete marker and unfinished upload,
which ``terraform destroy`` will not do for versioned buckets), and prove that nothing
billable is left, naming whatever is.

Usage::

    python -m deploy.teardown stop-tasks --cluster petrostream
    python -m deploy.teardown empty-buckets --prefix petrostream
    python -m deploy.teardown check --prefix petrostream

Clients honour ``AWS_REGION`` and ``AWS_ENDPOINT_URL`` (see :mod:`deploy.aws`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from deploy import aws

__all__ = [
    "BUCKET_KINDS",
    "CHECKS",
    "EmptyReport",
    "Leftover",
    "TeardownError",
    "empty_bucket",
    "find_leftovers",
    "main",
    "project_bucket_names",
    "project_buckets",
    "stop_tasks",
]

#: The buckets infra/storage.tf creates, as ``<prefix>-<kind>-<account id>``.
BUCKET_KINDS = ("raw", "curated", "athena-results", "models", "logs")
_DELETE_BATCH = 1000  # the most keys one DeleteObjects call accepts
_EMPTY_ROUNDS = 5  # a writer still running (a late log delivery) refills a bucket; retry a few times


class TeardownError(RuntimeError):
    """Something could not be removed; the message says what and why."""


@dataclass(frozen=True)
class EmptyReport:
    """What emptying one bucket removed."""

    bucket: str
    versions: int
    delete_markers: int
    uploads: int


@dataclass(frozen=True)
class Leftover:
    """A project resource still in the account; ``billable`` if it costs money while idle."""

    service: str
    name: str
    billable: bool
    why: str


def project_bucket_names(prefix: str, account_id: str) -> list[str]:
    """Names of every bucket the project may own in ``account_id``."""
    return [f"{prefix}-{kind}-{account_id}" for kind in BUCKET_KINDS]


def project_buckets(s3: Any, prefix: str, account_id: str) -> list[str]:
    """The project's buckets that exist. Only exact names are matched, never a mere prefix,
    so an unrelated bucket that happens to start with the prefix is never touched."""
    existing = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
    return sorted(set(project_bucket_names(prefix, account_id)) & existing)


def _delete_batch(s3: Any, bucket: str, objects: list[dict[str, str]]) -> None:
    response = s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
    errors = response.get("Errors", [])
    if errors:
        first = errors[0]
        raise TeardownError(
            f"{bucket}: {len(errors)} objects not deleted, e.g. {first.get('Key')}: {first.get('Message')}"
        )


def _delete_all_versions(s3: Any, bucket: str) -> tuple[int, int]:
    versions = markers = 0
    pending: list[dict[str, str]] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []):
            pending.append({"Key": version["Key"], "VersionId": version["VersionId"]})
            versions += 1
        for marker in page.get("DeleteMarkers", []):
            pending.append({"Key": marker["Key"], "VersionId": marker["VersionId"]})
            markers += 1
        while len(pending) >= _DELETE_BATCH:
            _delete_batch(s3, bucket, pending[:_DELETE_BATCH])
            pending = pending[_DELETE_BATCH:]
    if pending:
        _delete_batch(s3, bucket, pending)
    return versions, markers


def _abort_uploads(s3: Any, bucket: str) -> int:
    aborted = 0
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in page.get("Uploads", []):
            s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            aborted += 1
    return aborted


def _is_empty(s3: Any, bucket: str) -> bool:
    listing = s3.list_object_versions(Bucket=bucket, MaxKeys=1)
    return not listing.get("Versions") and not listing.get("DeleteMarkers")


def empty_bucket(s3: Any, bucket: str) -> EmptyReport:
    """Delete every object version, delete marker and unfinished multipart upload of ``bucket``."""
    versions = markers = uploads = 0
    for _ in range(_EMPTY_ROUNDS):
        removed_versions, removed_markers = _delete_all_versions(s3, bucket)
        versions, markers = versions + removed_versions, markers + removed_markers
        uploads += _abort_uploads(s3, bucket)
        if _is_empty(s3, bucket):
            return EmptyReport(bucket, versions, markers, uploads)
    raise TeardownError(f"{bucket}: still not empty after {_EMPTY_ROUNDS} rounds; is something still writing?")


def stop_tasks(ecs: Any, cluster: str, reason: str = "project_down.sh") -> list[str]:
    """Stop every running task of ``cluster`` (one-off producers are not owned by Terraform,
    and a cluster with running tasks cannot be deleted). A missing cluster has none."""
    try:
        arns = [
            arn
            for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, desiredStatus="RUNNING")
            for arn in page.get("taskArns", [])
        ]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ClusterNotFoundException":
            return []
        raise
    for arn in arns:
        ecs.stop_task(cluster=cluster, task=arn, reason=reason)
    return arns


# --- leftover checks: one function per service, each (prefix, account_id) -> leftovers ---

def _check_buckets(prefix: str, account_id: str) -> list[Leftover]:
    names = project_buckets(aws.client("s3"), prefix, account_id)
    return [Leftover("s3", name, True, "object storage") for name in names]


def _check_kinesis(prefix: str, _account_id: str) -> list[Leftover]:
    names = [name for page in aws.client("kinesis").get_paginator("list_streams").paginate()
             for name in page.get("StreamNames", [])]
    return [Leftover("kinesis", name, True, "shard hours") for name in names if name.startswith(f"{prefix}-")]


def _check_firehose(prefix: str, _account_id: str) -> list[Leftover]:
    firehose = aws.client("firehose")
    names: list[str] = []
    start: dict[str, str] = {}
    while True:
        page = firehose.list_delivery_streams(Limit=100, **start)
        names += page.get("DeliveryStreamNames", [])
        if not page.get("HasMoreDeliveryStreams") or not names:
            break
        start = {"ExclusiveStartDeliveryStreamName": names[-1]}
    return [Leftover("firehose", name, False, "bills only data it ingests")
            for name in names if name.startswith(f"{prefix}-")]


def _check_dynamodb(prefix: str, _account_id: str) -> list[Leftover]:
    names = [name for page in aws.client("dynamodb").get_paginator("list_tables").paginate()
             for name in page.get("TableNames", [])]
    return [Leftover("dynamodb", name, True, "table storage and backups")
            for name in names if name.startswith(f"{prefix}-")]


def _check_ecs(prefix: str, _account_id: str) -> list[Leftover]:
    clusters = aws.client("ecs").describe_clusters(clusters=[prefix]).get("clusters", [])
    leftovers = []
    for cluster in clusters:
        if cluster.get("status") != "ACTIVE":
            continue
        tasks = cluster.get("runningTasksCount", 0) + cluster.get("pendingTasksCount", 0)
        services = cluster.get("activeServicesCount", 0)
        leftovers.append(Leftover("ecs", cluster["clusterName"], tasks > 0,
                                  f"{tasks} running tasks, {services} services"))
    return leftovers


def _check_ecr(prefix: str, _account_id: str) -> list[Leftover]:
    try:
        repositories = aws.client("ecr").describe_repositories(repositoryNames=[prefix])["repositories"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "RepositoryNotFoundException":
            return []
        raise
    return [Leftover("ecr", repo["repositoryName"], True, "image storage") for repo in repositories]


def _check_load_balancers(prefix: str, _account_id: str) -> list[Leftover]:
    balancers = [lb for page in aws.client("elbv2").get_paginator("describe_load_balancers").paginate()
                 for lb in page.get("LoadBalancers", [])]
    return [Leftover("elbv2", lb["LoadBalancerName"], True, "load balancer and public address hours")
            for lb in balancers if lb["LoadBalancerName"].startswith(f"{prefix}-")]


def _check_log_groups(prefix: str, _account_id: str) -> list[Leftover]:
    paginator = aws.client("logs").get_paginator("describe_log_groups")
    groups = [group for page in paginator.paginate(logGroupNamePrefix=f"/{prefix}/")
              for group in page.get("logGroups", [])]
    return [Leftover("logs", group["logGroupName"], group.get("storedBytes", 0) > 0, "log storage")
            for group in groups]


def _check_kms(prefix: str, _account_id: str) -> list[Leftover]:
    kms = aws.client("kms")
    leftovers = []
    for page in kms.get_paginator("list_keys").paginate():
        for key in page.get("Keys", []):
            metadata = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
            if metadata.get("KeyManager") != "CUSTOMER" or metadata.get("KeyState") == "PendingDeletion":
                continue  # a key waiting for deletion is not billed
            tags = kms.list_resource_tags(KeyId=key["KeyId"]).get("Tags", [])
            if {"TagKey": "Project", "TagValue": prefix} in tags:
                leftovers.append(Leftover("kms", key["KeyId"], True, f"1 USD/month while {metadata['KeyState']}"))
    return leftovers


def _check_network(prefix: str, _account_id: str) -> list[Leftover]:
    ec2 = aws.client("ec2")
    tagged = [{"Name": "tag:Project", "Values": [prefix]}]
    leftovers = [Leftover("ec2", vpc["VpcId"], False, "VPC (free)")
                 for vpc in ec2.describe_vpcs(Filters=tagged).get("Vpcs", [])]
    leftovers += [Leftover("ec2", nat["NatGatewayId"], True, "NAT gateway hours")
                  for nat in ec2.describe_nat_gateways(Filters=tagged).get("NatGateways", [])
                  if nat.get("State") in {"pending", "available"}]
    leftovers += [Leftover("ec2", address.get("PublicIp", "?"), True, "public IPv4 hours")
                  for address in ec2.describe_addresses(Filters=tagged).get("Addresses", [])]
    return leftovers


def _check_glue(prefix: str, _account_id: str) -> list[Leftover]:
    name = prefix.replace("-", "_")
    try:
        aws.client("glue").get_database(Name=name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "EntityNotFoundException":
            return []
        raise
    return [Leftover("glue", name, False, "catalog database (free tier)")]


def _check_athena(prefix: str, _account_id: str) -> list[Leftover]:
    athena = aws.client("athena")
    groups: list[str] = []
    token: dict[str, str] = {}
    while True:  # boto3 has no paginator for ListWorkGroups
        page = athena.list_work_groups(**token)
        groups += [group["Name"] for group in page.get("WorkGroups", [])]
        if not page.get("NextToken"):
            break
        token = {"NextToken": page["NextToken"]}
    return [Leftover("athena", name, False, "workgroup (free)") for name in groups if name == prefix]


CHECKS: tuple[Callable[[str, str], list[Leftover]], ...] = (
    _check_buckets, _check_kinesis, _check_firehose, _check_dynamodb, _check_ecs, _check_ecr,
    _check_load_balancers, _check_log_groups, _check_kms, _check_network, _check_glue, _check_athena,
)


def find_leftovers(prefix: str, account_id: str,
                   checks: Iterable[Callable[[str, str], list[Leftover]]] = CHECKS) -> list[Leftover]:
    """Every project resource still present. A check that cannot look (no permission, no
    network) reports itself as a billable unknown: silence must never read as 'all clear'."""
    leftovers: list[Leftover] = []
    for check in checks:
        service = check.__name__.removeprefix("_check_")
        try:
            leftovers += check(prefix, account_id)
        except (ClientError, BotoCoreError) as exc:
            leftovers.append(Leftover(service, "?", True, f"could not check: {exc}"))
    return leftovers


def _account_id() -> str:
    return str(aws.client("sts").get_caller_identity()["Account"])


def _cmd_stop_tasks(args: argparse.Namespace) -> int:
    stopped = stop_tasks(aws.client("ecs"), args.cluster)
    print(f"stopped {len(stopped)} task(s) in cluster {args.cluster}")
    return 0


def _cmd_empty_buckets(args: argparse.Namespace) -> int:
    s3 = aws.client("s3")
    buckets = project_buckets(s3, args.prefix, args.account_id or _account_id())
    for bucket in buckets:
        report = empty_bucket(s3, bucket)
        print(f"emptied {bucket}: {report.versions} versions, {report.delete_markers} delete markers, "
              f"{report.uploads} unfinished uploads")
    if not buckets:
        print(f"no {args.prefix} buckets left to empty")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    leftovers = find_leftovers(args.prefix, args.account_id or _account_id())
    billable = [item for item in leftovers if item.billable]
    for item in leftovers:
        label = "BILLABLE" if item.billable else "free"
        print(f"{label:8}  {item.service:9} {item.name}  ({item.why})")
    if billable:
        print(f"{len(billable)} billable resource(s) left in {aws.region()}; remove them or run project_down.sh again")
        return 1
    print(f"nothing billable left of {args.prefix} in {aws.region()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry for project_down.sh; exit 1 when billable resources remain."""
    parser = argparse.ArgumentParser(prog="python -m deploy.teardown", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    stop = commands.add_parser("stop-tasks", help="stop every running task of the cluster")
    stop.add_argument("--cluster", required=True)
    stop.set_defaults(run=_cmd_stop_tasks)
    for name, run, text in (("empty-buckets", _cmd_empty_buckets, "empty every project bucket"),
                            ("check", _cmd_check, "list what is left; exit 1 if anything bills")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--prefix", default="petrostream")
        command.add_argument("--account-id", help="default: the caller's account")
        command.set_defaults(run=run)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except (TeardownError, ClientError, BotoCoreError) as exc:
        print(f"deploy.teardown {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
