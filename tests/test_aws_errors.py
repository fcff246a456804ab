"""Clear failures on aws: one actionable line naming the resource, and nothing lost meanwhile.

Missing credentials, a wrong resource name, access denied (moto's IAM enforcement switched
on, with a user whose policy denies one action) and an unreachable service (an endpoint
nobody listens on) are each met for real over HTTP.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from moto.core.authorization import enable_iam_authentication

from engine.backend import Backend, open_backend
from engine.backends.aws import AwsNames
from engine.config import Settings
from engine.errors import BackendError
from engine.producer import Producer, ReplayOptions
from engine.readers import discover
from engine.schema import WELL_DATA_TABLE
from engine.stream import OutgoingRecord
from tests.backends import aws_account, aws_client

NEVER = threading.Event()


@pytest.fixture
def names() -> Iterator[AwsNames]:
    with aws_account() as names:
        yield names


def open_aws(home: Path, **environment: str) -> Backend:
    """A backend opened with some variables of the environment changed (restored afterwards)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        return open_backend(Settings(backend="aws", home=home, lease_seconds=1.0))


def test_missing_credentials_say_how_to_provide_them(names: AwsNames, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(variable)
    with pytest.raises(BackendError, match=r"no AWS credentials found for Glue database 'petrostream'.*AWS_PROFILE"):
        open_backend(Settings(backend="aws", home=tmp_path))


@pytest.mark.parametrize(("variable", "kind", "use"), [
    ("PETROSTREAM_STREAM_NAME", "Kinesis stream", lambda b: b.stream.shard_ids()),
    ("PETROSTREAM_LEASE_TABLE", "DynamoDB table", lambda b: b.leases.leases()),
    ("PETROSTREAM_CURATED_BUCKET", "S3 bucket", lambda b: b.lake.row_count(WELL_DATA_TABLE)),
    ("PETROSTREAM_MODEL_BUCKET", "S3 bucket", lambda b: b.models.active_version()),
    ("PETROSTREAM_GLUE_DATABASE", "Glue database", None),
    ("PETROSTREAM_CONSUMER_SERVICE", "ECS service", lambda b: b.scaling.desired()),
])
def test_a_missing_resource_is_named_with_the_setting_that_names_it(
        names: AwsNames, tmp_path: Path, variable: str, kind: str, use: Callable[[Backend], object] | None) -> None:
    wrong = "petrostream-typo"
    with pytest.raises(BackendError) as caught:
        backend = open_aws(tmp_path, **{variable: wrong})
        if use is not None:
            use(backend)
    message = str(caught.value)
    assert message.startswith(f"{kind} '{wrong}' does not exist")
    assert variable in message and "\n" not in message


def identity(user: str, statements: list[dict[str, object]]) -> dict[str, str]:
    """An IAM user allowed what ``statements`` say; the credentials variables to act as it."""
    iam = aws_client("iam")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    iam.put_user_policy(UserName=user, PolicyName="policy", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": statements}))
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def test_access_denied_names_the_resource_and_the_action(names: AwsNames, tmp_path: Path) -> None:
    credentials = identity("producer", [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                                        {"Effect": "Deny", "Action": "kinesis:PutRecords", "Resource": "*"}])
    with enable_iam_authentication():
        backend = open_aws(tmp_path, **credentials)
        assert backend.stream.shard_ids()  # reading is allowed
        with pytest.raises(BackendError, match=r"access denied to Kinesis stream 'petrostream-ingest' \(PutRecords\)"):
            backend.stream.put_records([OutgoingRecord("WELL-00001", b"x")])


def test_the_producer_needs_only_the_permissions_its_task_role_grants(
        names: AwsNames, tmp_path: Path, demo_dir: Path) -> None:
    producer_role = [  # infra/iam.tf, data.aws_iam_policy_document.producer (without the input bucket)
        {"Effect": "Allow", "Resource": "*", "Action": [
            "kinesis:DescribeStreamSummary", "kinesis:ListShards", "kinesis:PutRecord", "kinesis:PutRecords"]},
        {"Effect": "Allow", "Resource": "*", "Action": [
            "dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"]},
    ]
    credentials = identity("producer-task", producer_role)
    files = discover([demo_dir])
    with enable_iam_authentication():
        backend = open_aws(tmp_path, **credentials)  # may not read the Glue catalog: leaves it to the consumer
        progress = Producer(backend, files, ReplayOptions(speed=0)).run(NEVER)
        assert progress.status == "finished" and progress.sent_rows == progress.total_rows
        with pytest.raises(BackendError, match="access denied to S3 bucket"):
            backend.lake.row_count(WELL_DATA_TABLE)


def closed_endpoint() -> str:
    """The address of a port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_while_kinesis_is_unreachable_the_producer_saves_no_progress(
        names: AwsNames, tmp_path: Path, demo_dir: Path) -> None:
    files = discover([demo_dir])
    cut_off = open_aws(tmp_path, AWS_ENDPOINT_URL_KINESIS=closed_endpoint(), AWS_MAX_ATTEMPTS="1")
    with pytest.raises(BackendError, match="cannot reach AWS for Kinesis stream 'petrostream-ingest'"):
        Producer(cut_off, files, ReplayOptions(speed=0)).run(NEVER)
    healthy = open_aws(tmp_path)
    assert healthy.replays.latest().sent_rows == 0
    assert Producer(healthy, files, ReplayOptions(speed=0)).run(NEVER).sent_rows == healthy.replays.latest().total_rows
