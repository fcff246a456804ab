"""Where the aws backend finds its resources, read in one place.

Each name comes from the first of: its environment variable (what ECS tasks get from
``infra/``), the Terraform outputs that ``project_up.sh`` saves to
``$PETROSTREAM_HOME/aws-outputs.json``, and the default Terraform derives from its
``name_prefix`` (``petrostream``; ``PETROSTREAM_NAME_PREFIX`` mirrors a different one). A
test parses ``infra/*.tf`` and fails if these defaults and Terraform's disagree.

Endpoints and credentials follow the standard AWS environment (``AWS_PROFILE``,
``AWS_ENDPOINT_URL`` — which is how the tests point everything at a moto server).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from engine.backends.aws._errors import Resource, translated
from engine.config import Settings
from engine.errors import InputError

__all__ = ["DEFAULT_PREFIX", "DEFAULT_REGION", "OUTPUTS_FILE", "AwsNames", "client_config", "load_names"]

DEFAULT_PREFIX = "petrostream"
DEFAULT_REGION = "us-east-1"
OUTPUTS_FILE = "aws-outputs.json"


@dataclass(frozen=True)
class AwsNames:
    """The names of every resource the backend uses (Terraform creates them all)."""

    region: str
    stream_name: str
    raw_bucket: str
    curated_bucket: str
    athena_results_bucket: str
    model_bucket: str
    glue_database: str
    athena_workgroup: str
    lease_table: str
    ecs_cluster: str
    consumer_service: str
    producer_task_definition: str
    task_subnets: tuple[str, ...] = ()
    task_security_group: str = ""

    def resource(self, field: str, kind: str) -> Resource:
        """The named resource, for error messages that say which setting to fix."""
        return Resource(kind, getattr(self, field), ENVIRONMENT[field])


#: Field -> environment variable that overrides it (the container environment in infra/locals.tf).
ENVIRONMENT: dict[str, str] = {
    f.name: f"PETROSTREAM_{f.name.upper()}" for f in fields(AwsNames)
} | {"region": "AWS_REGION"}
#: Field -> name of the Terraform output that holds it (infra/outputs.tf).
OUTPUTS: dict[str, str] = {f.name: f.name for f in fields(AwsNames)} | {
    "task_subnets": "task_subnet_ids", "task_security_group": "task_security_group_id",
}
#: Bucket field -> its role in Terraform's bucket names (``<prefix>-<role>-<account>``).
_BUCKETS = {"raw_bucket": "raw", "curated_bucket": "curated", "athena_results_bucket": "athena-results",
            "model_bucket": "models"}


def default_names(prefix: str, account: str | None) -> dict[str, str]:
    """Terraform's names for a prefix (``infra/locals.tf``); bucket names only with the account id they carry."""
    names = {
        "stream_name": f"{prefix}-ingest",
        "glue_database": prefix.replace("-", "_"),
        "athena_workgroup": prefix,
        "lease_table": f"{prefix}-leases",
        "ecs_cluster": prefix,
        "consumer_service": f"{prefix}-consumer",
        "producer_task_definition": f"{prefix}-producer",
    }
    if account is not None:
        names |= {field: f"{prefix}-{role}-{account}" for field, role in _BUCKETS.items()}
    return names


def load_names(settings: Settings, environ: Mapping[str, str] | None = None) -> AwsNames:
    """Resolve every name: environment, then the saved Terraform outputs, then Terraform's defaults."""
    environ = os.environ if environ is None else environ
    outputs = _read_outputs(settings.home / OUTPUTS_FILE)
    chosen: dict[str, Any] = {}
    for field, variable in ENVIRONMENT.items():
        value = environ.get(variable) or (environ.get("AWS_DEFAULT_REGION") if field == "region" else None)
        if not value and outputs.get(OUTPUTS[field]) not in (None, "", []):
            value = outputs[OUTPUTS[field]]
        if value:
            chosen[field] = value
    region = chosen.pop("region", None) or boto3.session.Session().region_name or DEFAULT_REGION
    missing = {f.name for f in fields(AwsNames) if f.default is MISSING and f.name != "region"} - set(chosen)
    if missing:
        account = _account_id(region) if missing & set(_BUCKETS) else None
        defaults = default_names(environ.get("PETROSTREAM_NAME_PREFIX") or DEFAULT_PREFIX, account)
        chosen |= {field: defaults[field] for field in missing}
    subnets = chosen.pop("task_subnets", ())
    if isinstance(subnets, str):
        subnets = subnets.split(",")
    return AwsNames(region=region, task_subnets=tuple(s.strip() for s in subnets if s.strip()), **chosen)


def client_config() -> Config:
    """Standard retries of transient faults (``AWS_MAX_ATTEMPTS`` attempts, 3 by default) and bounded waits."""
    return Config(retries={"mode": "standard"}, connect_timeout=5, read_timeout=60, user_agent_extra="petrostream")


def _read_outputs(path: Path) -> dict[str, Any]:
    """Output name -> value from ``terraform output -json``; empty when the file is absent."""
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {name: entry["value"] for name, entry in raw.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{path} is not the output of `terraform output -json`: {exc}") from exc


def _account_id(region: str) -> str:
    """The caller's account id, which Terraform puts in every bucket name."""
    identity = Resource("AWS account (for default bucket names)", "current", "PETROSTREAM_CURATED_BUCKET")
    with translated(identity):
        sts = boto3.session.Session(region_name=region).client("sts", config=client_config())
        return str(sts.get_caller_identity()["Account"])
