"""deploy.teardown against a moto server: emptying versioned buckets completely, stopping
stray tasks, and the leftover check naming what is left and whether it bills."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from deploy import aws, teardown
from tests.infra.support import ACCOUNT


def _versioned_bucket(s3, name: str) -> None:
    """A bucket holding current and old versions, delete markers and an unfinished upload."""
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    for key in ("a.parquet", "b.parquet", "dir/c.parquet"):
        for body in (b"one", b"two"):
            s3.put_object(Bucket=name, Key=key, Body=body)
    s3.delete_object(Bucket=name, Key="a.parquet")  # a delete marker over two versions
    s3.delete_object(Bucket=name, Key="b.parquet")
    s3.create_multipart_upload(Bucket=name, Key="big.parquet")


def test_empty_bucket_removes_every_version_marker_and_upload(
    moto: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(teardown, "_DELETE_BATCH", 4)  # exercise the batching without 1,000 objects
    s3 = aws.client("s3")
    bucket = f"{prefix}-curated-{ACCOUNT}"
    _versioned_bucket(s3, bucket)

    report = teardown.empty_bucket(s3, bucket)

    assert report == teardown.EmptyReport(bucket, versions=6, delete_markers=2, uploads=1)
    listing = s3.list_object_versions(Bucket=bucket)
    assert not listing.get("Versions") and not listing.get("DeleteMarkers")
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    s3.delete_bucket(Bucket=bucket)  # what terraform destroy then does


def test_empty_bucket_on_an_empty_bucket_is_a_no_op(moto: str, prefix: str) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=f"{prefix}-models-{ACCOUNT}")
    assert teardown.empty_bucket(s3, f"{prefix}-models-{ACCOUNT}").versions == 0


def test_only_the_project_buckets_are_touched(moto: str, prefix: str) -> None:
    s3 = aws.client("s3")
    for name in (f"{prefix}-raw-{ACCOUNT}", f"{prefix}-logs-{ACCOUNT}", f"{prefix}-raw-999999999999",
                 f"{prefix}-backups-{ACCOUNT}", f"{prefix}x-raw-{ACCOUNT}"):
        s3.create_bucket(Bucket=name)
    assert teardown.project_buckets(s3, prefix, ACCOUNT) == [f"{prefix}-logs-{ACCOUNT}", f"{prefix}-raw-{ACCOUNT}"]


def test_empty_buckets_command_empties_all_of_them(
    moto: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = aws.client("s3")
    for kind in teardown.BUCKET_KINDS:
        _versioned_bucket(s3, f"{prefix}-{kind}-{ACCOUNT}")

    assert teardown.main(["empty-buckets", "--prefix", prefix]) == 0

    out = capsys.readouterr().out
    for kind in teardown.BUCKET_KINDS:
        bucket = f"{prefix}-{kind}-{ACCOUNT}"
        assert f"emptied {bucket}: 6 versions, 2 delete markers, 1 unfinished uploads" in out
        s3.delete_bucket(Bucket=bucket)
    assert teardown.main(["empty-buckets", "--prefix", prefix]) == 0  # again: nothing to do
    assert f"no {prefix} buckets left" in capsys.readouterr().out


def test_stop_tasks_stops_running_one_off_tasks(moto: str, prefix: str) -> None:
    # moto 5.2.5 cannot start awsvpc (Fargate) tasks, so the tasks run on a registered EC2
    # container instance; stop_tasks does not care how a task was launched.
    ec2, ecs = aws.client("ec2"), aws.client("ecs")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ecs.create_cluster(clusterName=prefix)
    ecs.register_container_instance(cluster=prefix, instanceIdentityDocument=json.dumps(
        {"instanceId": instance, "region": "us-east-1", "accountId": ACCOUNT}))
    ecs.register_task_definition(family=f"{prefix}-producer", containerDefinitions=[
        {"name": "producer", "image": "petrostream:test", "essential": True, "cpu": 128, "memory": 256}])
    started = ecs.run_task(cluster=prefix, taskDefinition=f"{prefix}-producer", count=2)["tasks"]

    stopped = teardown.stop_tasks(ecs, prefix)

    assert len(started) == 2
    assert sorted(stopped) == sorted(task["taskArn"] for task in started)
    assert ecs.list_tasks(cluster=prefix, desiredStatus="RUNNING")["taskArns"] == []


def test_stop_tasks_without_a_cluster_stops_nothing(moto: str, prefix: str) -> None:
    assert teardown.stop_tasks(aws.client("ecs"), prefix) == []


def test_nothing_left_when_the_account_holds_nothing_of_the_prefix(
    moto: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert teardown.find_leftovers(prefix, ACCOUNT) == []
    assert teardown.main(["check", "--prefix", prefix]) == 0
    assert f"nothing billable left of {prefix} in us-east-1" in capsys.readouterr().out


def _leave_one_of_everything(prefix: str) -> str:
    """Project resources a failed destroy could leave behind; returns the KMS key id."""
    aws.client("s3").create_bucket(Bucket=f"{prefix}-raw-{ACCOUNT}")
    aws.client("kinesis").create_stream(StreamName=f"{prefix}-ingest", ShardCount=1)
    aws.client("dynamodb").create_table(
        TableName=f"{prefix}-leases", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "lease_key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "lease_key", "AttributeType": "S"}],
    )
    aws.client("ecr").create_repository(repositoryName=prefix)
    aws.client("ecs").create_cluster(clusterName=prefix)
    aws.client("logs").create_log_group(logGroupName=f"/{prefix}/ecs/consumer")
    aws.client("glue").create_database(DatabaseInput={"Name": prefix})
    aws.client("athena").create_work_group(Name=prefix)
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "Project", "Value": prefix}])
    aws.client("ec2").create_vpc(CidrBlock="10.9.0.0/16")  # not the project's
    aws.client("kinesis").create_stream(StreamName="someone-else", ShardCount=1)
    return aws.client("kms").create_key(Tags=[{"TagKey": "Project", "TagValue": prefix}])["KeyMetadata"]["KeyId"]


def test_leftovers_are_named_with_whether_they_bill(moto: str, prefix: str) -> None:
    key_id = _leave_one_of_everything(prefix)

    found = {(item.service, item.name): item.billable for item in teardown.find_leftovers(prefix, ACCOUNT)}

    assert found == {
        ("s3", f"{prefix}-raw-{ACCOUNT}"): True,
        ("kinesis", f"{prefix}-ingest"): True,
        ("dynamodb", f"{prefix}-leases"): True,
        ("ecr", prefix): True,
        ("ecs", prefix): False,  # an empty cluster costs nothing
        ("logs", f"/{prefix}/ecs/consumer"): False,  # nothing stored
        ("kms", key_id): True,
        ("ec2", next(name for service, name in found if service == "ec2")): False,
        ("glue", prefix): False,
        ("athena", prefix): False,
    }


def test_check_fails_while_anything_bills_and_passes_once_keys_are_pending_deletion(
    moto: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    key_id = aws.client("kms").create_key(Tags=[{"TagKey": "Project", "TagValue": prefix}])["KeyMetadata"]["KeyId"]
    assert teardown.main(["check", "--prefix", prefix]) == 1
    out = capsys.readouterr().out
    assert f"BILLABLE  kms       {key_id}" in out and "1 billable resource(s) left" in out

    aws.client("kms").schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert teardown.main(["check", "--prefix", prefix]) == 0


def test_a_check_that_cannot_look_counts_as_billable(moto: str, prefix: str) -> None:
    def denied(_prefix: str, _account_id: str) -> list[teardown.Leftover]:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListStreams")

    denied.__name__ = "_check_kinesis"
    (item,) = teardown.find_leftovers(prefix, ACCOUNT, checks=[denied])
    assert (item.service, item.billable) == ("kinesis", True)
    assert "could not check" in item.why
