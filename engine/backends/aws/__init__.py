"""The scale-out backend: Kinesis, DynamoDB, S3 + Glue, Athena, and ECS for the workers.

Resource names come from :mod:`engine.backends.aws._config` (environment, Terraform outputs,
Terraform defaults); credentials, region and endpoints from the standard AWS environment, so
``AWS_ENDPOINT_URL`` points the whole backend at a moto server in tests. Opening the backend
only checks the Glue tables (creating or updating them where the identity may: the
consumer's role); a missing or forbidden resource surfaces as a
:class:`~engine.errors.BackendError` naming it at first use, so each role (producer,
consumer, portal) needs only the permissions of what it does.

Firehose (configured in Terraform) copies the stream into the raw bucket; the consumer
writes only the curated lake, so the raw data is never archived twice.
"""

from __future__ import annotations

import boto3

from engine.backend import Backend, SqlEndpoint
from engine.backends.aws._athena import AthenaQueryEngine
from engine.backends.aws._config import AwsNames, client_config, load_names
from engine.backends.aws._dynamodb import DynamoAlarmAckStore, DynamoLeaseStore, DynamoReplayLog
from engine.backends.aws._ecs import EcsReplayControl, EcsScaler
from engine.backends.aws._glue import GlueCatalog
from engine.backends.aws._kinesis import KinesisStream
from engine.backends.aws._s3_lake import S3Lake
from engine.backends.aws._s3_model_store import S3ModelStore
from engine.backends.aws._state_objects import S3StateObjects
from engine.config import Settings

__all__ = ["AwsNames", "load_names", "open_aws_backend"]


def open_aws_backend(settings: Settings, session: boto3.session.Session | None = None) -> Backend:
    """Open the aws backend on the resources the configuration names.

    Every client comes from ``session`` (a new one by default), so whatever is registered on
    its events, such as the API call counter of ``deploy.api_calls``, sees every call.
    """
    names = load_names(settings)
    session = session or boto3.session.Session(region_name=names.region)
    config = client_config()

    def client(service: str) -> object:
        return session.client(service, config=config)

    lease_table = names.resource("lease_table", "DynamoDB table")
    s3 = client("s3")
    curated = names.resource("curated_bucket", "S3 bucket")
    leases = DynamoLeaseStore(client("dynamodb"), lease_table, settings.application,
                              S3StateObjects(s3, curated, settings.application), settings.lease_seconds)
    catalog = GlueCatalog(client("glue"), names.resource("glue_database", "Glue database"), names.curated_bucket)
    catalog.ensure_tables()
    replays = DynamoReplayLog(client("dynamodb"), lease_table)
    ecs = client("ecs")
    return Backend(
        name="aws",
        settings=settings,
        stream=KinesisStream(client("kinesis"), names.resource("stream_name", "Kinesis stream"), leases.checkpoints),
        leases=leases,
        lake=S3Lake(s3, curated, catalog),
        sql=AthenaQueryEngine(client("athena"), names.resource("athena_workgroup", "Athena workgroup"),
                              names.glue_database, catalog=catalog),
        models=S3ModelStore(s3, names.resource("model_bucket", "S3 bucket")),
        replays=replays,
        alarm_acks=DynamoAlarmAckStore(client("dynamodb"), lease_table),
        replay_control=EcsReplayControl(replays, ecs, s3, names),
        scaling=EcsScaler(ecs, client("application-autoscaling"), client("cloudwatch"), names),
        sql_billed_per_query=True,
        min_record_seconds=5.0,
        progress_save_seconds=30.0,
        sql_endpoint=SqlEndpoint(region=names.region, database=names.glue_database,
                                 workgroup=names.athena_workgroup,
                                 output_location=f"s3://{names.athena_results_bucket}/"),
    )
