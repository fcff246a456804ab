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

__all__ = ["ApiCallCounter"]

#: Fired once per API call (not per retry), with the call's own parameters.
_EVENT = "before-parameter-build"


class ApiCallCounter:
    """Calls per ``(service, operation)``, counted while ``active()`` says so (always by default)."""

    def __init__(self, active: Callable[[], bool] = lambda: True) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.kinesis_records = 0
        self.kinesis_bytes = 0
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
                self.kinesis_bytes += sum(len(r["Data"]) + len(r["PartitionKey"].encode()) for r in records)

    def by_service(self, service: str) -> dict[str, int]:
        """Calls per operation of one service."""
        return {op: n for (svc, op), n in sorted(self.calls.items()) if svc == service}
