"""Count the AWS API calls a process makes, by service and operation, from botocore's events.

AWS bills many services per request (S3 PUT/GET, DynamoDB request units, Kinesis PUT payload
units, Firehose per record), so the bill of a pipeline is only as good as its count of
requests. Attach an :class:`ApiCallCounter` to the boto3 session (or a single client) the
backend uses and every call it makes is counted as it is sent, whichever module makes it;
Kinesis ``PutRecord(s)`` also counts the records and their bytes, which Kinesis and
Firehose bill by.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

__all__ = ["ApiCallCounter", "item_bytes", "s3_key_kind"]

#: Fired once per API call (not per retry), with the call's own parameters.
_EVENT = "before-parameter-build"


class ApiCallCounter:
    """Calls per ``(service, operation)``, counted while ``active()`` says so (always by default)."""

    def __init__(self, active: Callable[[], bool] = lambda: True) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.kinesis_records = 0
        self.kinesis_bytes = 0
        #: Kinesis records by size in whole KB (Firehose bills each record in 5 KB increments).
        self.kinesis_record_kb: Counter[int] = Counter()
        #: DynamoDB write request units: one per KB of each item written (on-demand pricing).
        self.dynamodb_write_units = 0
        #: S3 calls by operation and kind of key (:func:`s3_key_kind`): which objects the requests go to.
        self.s3_by_kind: Counter[tuple[str, str]] = Counter()
        self._active = active
        self._lock = threading.Lock()

    def attach(self, target: Any) -> Any:
        """Count the calls of a boto3 ``Session`` (clients it creates afterwards) or of one client; returns it."""
        events = target.meta.events if hasattr(target, "meta") else target.events
        events.register(_EVENT, self._count)
        return target

    def _count(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if not self._active():
            return
        service = model.service_model.service_name
        with self._lock:
            self.calls[(service, model.name)] += 1
            if service == "kinesis" and model.name in ("PutRecords", "PutRecord"):
                records = params.get("Records") or [params]
                self.kinesis_records += len(records)
                sizes = [len(r["Data"]) + len(r["PartitionKey"].encode()) for r in records]
                self.kinesis_bytes += sum(sizes)
                self.kinesis_record_kb.update(-(-size // 1024) for size in sizes)
            if service == "s3":
                self.s3_by_kind[(model.name, s3_key_kind(params))] += 1
            if service == "dynamodb" and "Item" in params:
                self.dynamodb_write_units += max(1, -(-item_bytes(params["Item"]) // 1024))
            elif service == "dynamodb" and model.name in ("UpdateItem", "DeleteItem"):
                self.dynamodb_write_units += 1  # the lease and marker items updated are well under 1 KB

    def by_service(self, service: str) -> dict[str, int]:
        """Calls per operation of one service."""
        return {op: n for (svc, op), n in sorted(self.calls.items()) if svc == service}


def item_bytes(item: dict[str, Any]) -> int:
    """A DynamoDB item's size as DynamoDB bills it: names plus values (strings and binaries by
    length, numbers about a byte per two digits, 3 bytes plus a byte per element for maps and lists)."""
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


def _value_bytes(value: dict[str, Any]) -> int:
    (kind, data), = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "B":
        return len(data)
    if kind == "N":
        return len(data.lstrip("-").replace(".", "")) // 2 + 1
    if kind == "M":
        return 3 + len(data) + item_bytes(data)
    if kind == "L":
        return 3 + len(data) + sum(_value_bytes(element) for element in data)
    if kind in ("SS", "NS", "BS"):
        return sum(_value_bytes({kind[0]: element}) for element in data)
    return 1  # BOOL, NULL


def s3_key_kind(params: dict[str, Any]) -> str:
    """What an S3 call touches, without the names that change per call: a key's folders above the
    object (``_manifests/well_data``; ``well_data`` for a data file, whatever its date), a listing's
    prefix likewise, ``(batch)`` for a multi-object delete."""
    if "Delete" in params:
        return "(batch)"
    key = params.get("Key", params.get("Prefix", ""))
    folders = [part for part in key.split("/")[:-1] if "=" not in part]
    return "/".join(folders[:2]) or key
