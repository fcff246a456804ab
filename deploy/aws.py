"""boto3 clients configured from the standard AWS environment.

``AWS_REGION`` wins over ``AWS_DEFAULT_REGION`` (botocore itself only reads the latter) and
``AWS_ENDPOINT_URL`` is passed explicitly, so the same code runs against AWS or a moto server.
Clients are cached per service, region and endpoint: building one loads the service model,
which costs more than most calls the teardown makes with it.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3

__all__ = ["DEFAULT_REGION", "client", "region"]

DEFAULT_REGION = "us-east-1"


def region() -> str:
    """The region every client uses."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


@cache
def _client(service: str, region_name: str, endpoint_url: str | None) -> Any:
    return boto3.session.Session().client(service, region_name=region_name, endpoint_url=endpoint_url)


def client(service: str) -> Any:
    """A client for ``service`` in :func:`region`, at ``AWS_ENDPOINT_URL`` when set."""
    return _client(service, region(), os.environ.get("AWS_ENDPOINT_URL") or None)
