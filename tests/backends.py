"""How the tests open each backend kind on a fresh, empty home.

``aws`` runs against one in-process moto server per test process (a ``ThreadedMotoServer`` on
a free port, reached over real HTTP through ``AWS_ENDPOINT_URL``), reset before every test;
the resources are created as Terraform creates them, with the names Terraform gives them.

moto stores and serves every API the backend calls but cannot run SQL, and differs from AWS
in two places the tests depend on. The server is therefore patched, in this process only, to:

* answer Athena queries like Athena does: the query text is translated Trino -> DuckDB (the
  local backend's translator) and run on DuckDB over what the Glue catalog registers — each
  table's partitions, and under each partition's S3 location the objects Athena would read
  (names starting with ``_`` or ``.`` are hidden): for a ``SymlinkTextInputFormat`` table,
  each is a manifest and exactly the Parquet files it lists are read (a listed file that is
  gone fails the query, as it fails Athena's), else they are the Parquet files; and each view
  (a ``VIRTUAL_VIEW`` table whose ``presto_view`` text is defined over them; Athena refuses a
  view whose columns differ from its stored list, so does this) — with ``ExecutionParameters`` taken as
  the SQL literals Athena takes them as; the result is served through GetQueryResults as
  Athena renders it (strings, header row, Java-style doubles). A query DuckDB rejects ends
  ``FAILED`` with a user-error category, like a query Athena rejects. Results injected through
  moto's own API (``/moto-api/static/athena/query-results``) take precedence;
* page GetQueryResults at ``MaxResults`` rows with a ``NextToken``, as Athena does (moto
  returns every row at once);
* keep a split shard's records in the closed parent and route new records to open shards
  only, as Kinesis does (moto moves a parent's records into its children, and keeps routing
  keys to the closed parent);
* enforce the limits AWS enforces and moto does not (:mod:`tests.strict_aws`): Kinesis's
  1 MiB records and five reads a second per shard, and the workgroup's per-query scan cutoff
  (Terraform's 1 GiB), which cancels a query as Athena does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from moto.athena.models import AthenaBackend, QueryResults
from moto.athena.responses import AthenaResponse
from moto.kinesis.models import Stream as MotoStream
from moto.server import ThreadedMotoServer

from engine.backend import Backend, open_backend
from engine.backends.aws import AwsNames
from engine.backends.aws._config import ENVIRONMENT, default_names
from engine.backends.aws._glue import SYMLINK_INPUT_FORMAT, SYMLINKS
from engine.backends.local._query import to_duckdb
from engine.config import Settings
from engine.errors import InputError
from engine.stream import hash_key
from tests import athena_views, strict_aws

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
#: Terraform's default per-query scan limit of the workgroup (var.athena_bytes_scanned_cutoff).
ATHENA_CUTOFF_BYTES = 1024**3


def local_backend(home: Path, shard_count: int = 4) -> Iterator[Backend]:
    yield open_backend(Settings(backend="local", home=home, shard_count=shard_count))


# -- the moto server ---------------------------------------------------------------------
class MotoServer:
    """The process's moto server, started on first use and patched as the module docstring says."""

    _lock = threading.Lock()
    _url: str | None = None

    @classmethod
    def url(cls) -> str:
        with cls._lock:
            if cls._url is None:
                _patch_moto()
                logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
                server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
                server.start()
                host, port = server.get_host_and_port()
                cls._url = f"http://{host}:{port}"
            return cls._url

    @classmethod
    def reset(cls) -> None:
        """Forget every resource (all services) so the next test starts from nothing."""
        urllib.request.urlopen(urllib.request.Request(f"{cls.url()}/moto-api/reset", method="POST")).close()
        strict_aws.reset()

    @classmethod
    def post(cls, path: str, payload: dict[str, Any]) -> None:
        request = urllib.request.Request(f"{cls.url()}{path}", data=json.dumps(payload).encode(), method="POST")
        urllib.request.urlopen(request).close()


def aws_names(prefix: str = "petrostream") -> AwsNames:
    """Terraform's names for a prefix in moto's account (the task network is created with the resources)."""
    return AwsNames(region=REGION, **default_names(prefix, ACCOUNT))


def aws_environment(names: AwsNames) -> dict[str, str]:
    """What an ECS task of the stack gets (every name's variable), plus fake credentials and the moto endpoint."""
    settings = {ENVIRONMENT[field]: ",".join(value) if isinstance(value, tuple) else value
                for field, value in dataclasses.asdict(names).items()}
    return settings | {
        "PETROSTREAM_BACKEND": "aws", "AWS_DEFAULT_REGION": names.region, "AWS_ENDPOINT_URL": MotoServer.url(),
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true", "MOTO_ECS_SERVICE_RUNNING": "1",
    }


@contextlib.contextmanager
def aws_account(shard_count: int = 4) -> Iterator[AwsNames]:
    """A reset moto account holding the stack's resources, with the environment pointing at it."""
    names = aws_names()
    MotoServer.reset()
    with mock.patch.dict(os.environ, aws_environment(names)):
        for variable in [v for v in os.environ if v.startswith("AWS_ENDPOINT_URL_")] + ["AWS_PROFILE",
                                                                                       "AWS_SESSION_TOKEN"]:
            os.environ.pop(variable, None)
        try:
            names = create_resources(names, shard_count)
            os.environ.update(aws_environment(names))
            yield names
        finally:
            MotoServer.reset()  # nothing of this test stays in the server's memory


_CLIENTS: dict[str, Any] = {}
_CLIENTS_LOCK = threading.Lock()


def aws_client(service: str) -> Any:
    """A client of the moto server with the test credentials (made once: loading service models is slow)."""
    with _CLIENTS_LOCK:
        if service not in _CLIENTS:
            session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                            region_name=REGION)
            _CLIENTS[service] = session.client(service, endpoint_url=MotoServer.url())
        return _CLIENTS[service]


def create_resources(names: AwsNames, shard_count: int) -> AwsNames:
    """What ``terraform apply`` creates in infra/ (the parts the engine talks to); the names with its network."""
    ec2 = aws_client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.0.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="workers", Description="tasks", VpcId=vpc)["GroupId"]
    aws_client("kinesis").create_stream(StreamName=names.stream_name, ShardCount=shard_count)
    s3 = aws_client("s3")
    for bucket in (names.raw_bucket, names.curated_bucket, names.athena_results_bucket, names.model_bucket):
        s3.create_bucket(Bucket=bucket)
    aws_client("glue").create_database(DatabaseInput={"Name": names.glue_database})
    aws_client("athena").create_work_group(Name=names.athena_workgroup, Configuration={
        "ResultConfiguration": {"OutputLocation": f"s3://{names.athena_results_bucket}/results/"},
        "EnforceWorkGroupConfiguration": True, "BytesScannedCutoffPerQuery": ATHENA_CUTOFF_BYTES})
    aws_client("dynamodb").create_table(
        TableName=names.lease_table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "lease_key", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "lease_key", "KeyType": "HASH"}])
    ecs = aws_client("ecs")
    ecs.create_cluster(clusterName=names.ecs_cluster, capacityProviders=["FARGATE", "FARGATE_SPOT"])
    for family, container in ((names.consumer_service, "consumer"), (names.producer_task_definition, "producer")):
        ecs.register_task_definition(family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
                                     cpu="256", memory="512", containerDefinitions=[  # moto needs container memory
                                         {"name": container, "image": "petrostream:test", "memory": 512}])
    ecs.create_service(cluster=names.ecs_cluster, serviceName=names.consumer_service,
                       taskDefinition=names.consumer_service, desiredCount=1)
    target = {"ServiceNamespace": "ecs", "ScalableDimension": "ecs:service:DesiredCount",
              "ResourceId": f"service/{names.ecs_cluster}/{names.consumer_service}"}
    autoscaling = aws_client("application-autoscaling")
    autoscaling.register_scalable_target(**target, MinCapacity=1, MaxCapacity=2)
    autoscaling.put_scaling_policy(**target, PolicyName=f"{names.consumer_service}-cpu",
                                   PolicyType="TargetTrackingScaling",
                                   TargetTrackingScalingPolicyConfiguration={
                                       "TargetValue": 70.0, "ScaleOutCooldown": 60, "ScaleInCooldown": 300,
                                       "PredefinedMetricSpecification": {
                                           "PredefinedMetricType": "ECSServiceAverageCPUUtilization"}})
    return dataclasses.replace(names, task_subnets=(subnet,), task_security_group=group)


def aws_backend(home: Path, shard_count: int = 4) -> Iterator[Backend]:
    with aws_account(shard_count):
        yield open_backend(Settings(backend="aws", home=home, shard_count=shard_count))


def curated_rows(names: AwsNames, table: str) -> pa.Table | None:
    """Every Parquet object the table's symlink manifests list in the curated bucket, read with pyarrow."""
    s3 = aws_client("s3")
    manifests = _objects_under(s3, f"s3://{names.curated_bucket}/{SYMLINKS}/{table}/")
    parts = [pq.read_table(pa.BufferReader(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
             for manifest in manifests for bucket, key in strict_aws.symlink_targets(s3, *manifest)]
    return pa.concat_tables(parts) if parts else None


def fast_kinesis_reads(monkeypatch: Any) -> None:
    """Pace reads at just under Kinesis's five a second per shard (the strict layer's limit), with no
    burst: a test's one reader goes as fast as Kinesis allows instead of the production share."""
    from engine.backends.aws import _kinesis

    monkeypatch.setattr(_kinesis, "READS_PER_SECOND", strict_aws.READS_PER_SHARD_PER_SECOND * 0.9)
    monkeypatch.setattr(_kinesis, "READ_BURST", 1)


#: Backend kind -> generator yielding a fresh backend (and cleaning up after it).
BACKEND_KINDS: dict[str, Callable[[Path], Iterator[Backend]]] = {"local": local_backend, "aws": aws_backend}


# -- patches: moto behaving like the services where the tests need it -----------------------
#: Query execution id -> (state, reason) of queries the emulation ended other than SUCCEEDED.
_FAILED: dict[str, tuple[str, str]] = {}


def _patch_moto() -> None:
    """Install the patches (once per process; they stay for the process's life, like the server)."""
    original_start = AthenaBackend.start_query_execution
    original_execution = AthenaResponse.get_query_execution

    def start_query_execution(self: AthenaBackend, query: str, context: dict[str, Any], config: dict[str, Any],
                              workgroup: str, execution_parameters: list[str] | None) -> str:
        execution_id = original_start(self, query, context, config, workgroup, execution_parameters)
        group = self.work_groups.get(workgroup or "primary")
        database = (context or {}).get("Database", "default")
        view = athena_views.parse(query)
        cutoff = strict_aws.workgroup_cutoff(group.configuration if group else None)
        if view is None and cutoff is not None and strict_aws.scan_estimate(query, strict_aws.catalog_sizes(
                aws_client("glue"), aws_client("s3"), database), execution_parameters or []) > cutoff:
            _FAILED[execution_id] = ("CANCELLED", strict_aws.CUTOFF_REASON)
            return execution_id
        if execution_id not in self.query_results:  # results injected through moto's API win
            try:
                if view is not None:  # Athena checks the view's query, then stores the view in Glue
                    name, select, replace = view
                    _, checked = _run_like_athena(f"SELECT * FROM ({select}) LIMIT 0", database, [])
                    athena_views.store(aws_client("glue"), database, name, select, replace,
                                       [(c["Name"], c["Type"]) for c in checked])
                    rows, columns = [], []
                else:
                    rows, columns = _run_like_athena(query, database, execution_parameters or [])
                self.query_results[execution_id] = QueryResults(rows, columns)
            except (duckdb.Error, InputError) as exc:
                _FAILED[execution_id] = ("FAILED", str(exc).strip().splitlines()[0])
        return execution_id

    def get_query_execution(self: AthenaResponse) -> str:
        body = json.loads(original_execution(self))
        ended = _FAILED.get(body["QueryExecution"]["QueryExecutionId"])
        if ended is not None:
            state, reason = ended
            body["QueryExecution"]["Status"].update(State=state, StateChangeReason=reason)
            if state == "FAILED":
                body["QueryExecution"]["Status"]["AthenaError"] = {"ErrorCategory": 2, "ErrorType": 1006}
        return json.dumps(body)

    def get_query_results(self: AthenaResponse) -> str:
        result = self.athena_backend.get_query_results(self._get_param("QueryExecutionId")).to_dict()
        start = int(self._get_param("NextToken") or 0)
        size = int(self._get_param("MaxResults") or 1000)
        rows = result["ResultSet"]["Rows"]
        result["ResultSet"]["Rows"] = rows[start:start + size]
        if start + size < len(rows):
            result["NextToken"] = str(start + size)
        return json.dumps(result)

    def split_shard(self: MotoStream, shard_to_split: str, new_starting_hash_key: str) -> None:
        parent = self.shards[shard_to_split]
        records = parent.records
        before = set(self.shards)
        original_split(self, shard_to_split, new_starting_hash_key)
        parent.records = records
        for shard_id in set(self.shards) - before:
            self.shards[shard_id].records.clear()

    def get_shard_for_key(self: MotoStream, partition_key: str, explicit_hash_key: str) -> Any:
        point = int(explicit_hash_key) if explicit_hash_key else hash_key(partition_key)
        return next((shard for shard in self.shards.values()
                     if shard.is_open and shard.starting_hash <= point <= shard.ending_hash), None)

    original_split = MotoStream.split_shard
    strict_aws.install()
    MotoStream.get_shard_for_key = get_shard_for_key
    AthenaBackend.start_query_execution = start_query_execution
    AthenaResponse.get_query_execution = get_query_execution
    AthenaResponse.get_query_results = get_query_results
    MotoStream.split_shard = split_shard


def _run_like_athena(query: str, database: str, parameters: list[str]) -> tuple[list[dict], list[dict]]:
    """Run a query on DuckDB over the Glue catalog and S3 objects; render the result as Athena does."""
    clients = {service: aws_client(service) for service in ("glue", "s3")}
    with duckdb.connect() as connection:
        connection.execute("SET TimeZone = 'UTC'")
        tables = clients["glue"].get_tables(DatabaseName=database)["TableList"]
        for table in tables:
            if not athena_views.is_view(table):
                connection.register(table["Name"], _catalog_table(clients, database, table))
        athena_views.register(connection, tables)
        values = [connection.execute(to_duckdb(f"SELECT {literal}")).fetchall()[0][0] for literal in parameters]
        result = connection.sql(to_duckdb(query), params=values).to_arrow_table()
    header = {"Data": [{"VarCharValue": name} for name in result.column_names]}
    rows = [{"Data": [{} if value is None else {"VarCharValue": _render(value, field.type)}
                      for value, field in zip(row, result.schema, strict=True)]}
            for row in zip(*(column.to_pylist() for column in result.columns), strict=True)]
    columns = [{"Name": f.name, "Label": f.name, "Type": _athena_type(f.type), "Nullable": "UNKNOWN",
                "Precision": 0, "Scale": 0, "CaseSensitive": pa.types.is_string(f.type)} for f in result.schema]
    return [header, *rows], columns


_GLUE_TO_ARROW = {"string": pa.string(), "float": pa.float32(), "double": pa.float64(), "tinyint": pa.int8(),
                  "smallint": pa.int16(), "int": pa.int32(), "bigint": pa.int64(), "boolean": pa.bool_(),
                  "binary": pa.binary(), "timestamp": pa.timestamp("ms")}


def _catalog_table(clients: dict[str, Any], database: str, table: dict[str, Any]) -> pa.Table:
    """A Glue table as Athena sees it: its columns, then its partition keys, over every partition's files."""
    columns = table["StorageDescriptor"]["Columns"] + table.get("PartitionKeys", [])
    schema = pa.schema([(c["Name"], _GLUE_TO_ARROW[c["Type"]]) for c in columns])
    symlinks = table["StorageDescriptor"].get("InputFormat") == SYMLINK_INPUT_FORMAT
    parts = []
    partitions = clients["glue"].get_partitions(DatabaseName=database, TableName=table["Name"])["Partitions"]
    for partition in partitions:
        located = _objects_under(clients["s3"], partition["StorageDescriptor"]["Location"])
        files = located if not symlinks else \
            [path for bucket, key in located for path in strict_aws.symlink_targets(clients["s3"], bucket, key)]
        for bucket, key in files:
            body = clients["s3"].get_object(Bucket=bucket, Key=key)["Body"].read()  # a listed file gone: fails
            data = pq.read_table(pa.BufferReader(body))
            for key_column, value in zip(table["PartitionKeys"], partition["Values"], strict=True):
                data = data.append_column(key_column["Name"], pa.array([value] * data.num_rows, pa.string()))
            parts.append(pa.table([data[f.name].cast(f.type) for f in schema], schema=schema))
    return pa.concat_tables(parts) if parts else schema.empty_table()


def _objects_under(s3: Any, location: str) -> list[tuple[str, str]]:
    """(bucket, key) of the objects Athena reads under a location (names starting ``_`` or ``.`` are hidden)."""
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return [(bucket, entry["Key"]) for entry in listed if not entry["Key"].rsplit("/", 1)[-1].startswith(("_", "."))]


def _athena_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_timestamp(arrow_type):
        return "timestamp with time zone" if arrow_type.tz else "timestamp"
    if pa.types.is_decimal(arrow_type):
        return "decimal"
    names = {pa.int8(): "tinyint", pa.int16(): "smallint", pa.int32(): "integer", pa.int64(): "bigint",
             pa.float32(): "float", pa.float64(): "double", pa.bool_(): "boolean", pa.string(): "varchar",
             pa.binary(): "varbinary", pa.date32(): "date"}
    return names.get(arrow_type, "varchar")


def _render(value: object, arrow_type: pa.DataType) -> str:
    """A value as Athena's GetQueryResults prints it."""
    if pa.types.is_timestamp(arrow_type):
        text = value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        return f"{text} UTC" if arrow_type.tz else text
    if pa.types.is_floating(arrow_type):  # Java's Double.toString: 1.5E7, 0.001, NaN
        number = float(value)
        if not np.isfinite(number) or 1e-3 <= abs(number) < 1e7 or number == 0:
            return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}.get(repr(number), repr(number))
        mantissa, exponent = np.format_float_scientific(number, unique=True, exp_digits=1).split("e")
        return f"{mantissa if '.' in mantissa.rstrip('.') else mantissa.rstrip('.') + '.0'}E{int(exponent)}"
    if pa.types.is_boolean(arrow_type):
        return "true" if value else "false"
    if pa.types.is_binary(arrow_type):
        return " ".join(f"{byte:02x}" for byte in value)
    return str(value)
