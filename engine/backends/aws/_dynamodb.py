"""Shard leases, worker heartbeats, replay progress and operators' alarm actions in one DynamoDB table.

The table (``petrostream-leases``, hash key ``lease_key``) holds several kinds of item,
told apart by a key prefix:

* ``lease#<application>#<shard>`` — a shard's lease; every write is conditional on the
  counter the writer last saw (``ConditionExpression``), which is all the KCL-style rules in
  :mod:`engine.leases` need to keep two workers from owning one shard. The item holds a
  pointer to the checkpoint's state object in S3 (:mod:`._state_objects`), never the state,
  so it stays a few hundred bytes — one write unit per renewal — whatever the shard carries;
* ``worker#<application>#<worker>`` — a worker's heartbeat and its expiry;
* ``replay#<replay id>`` — a replay's progress, and ``replay-latest`` pointing at the replay
  saved most recently (a conditional write keeps an older save from taking the pointer back);
* ``alarm#<event id>`` — the log of operators' actions on one alarm event, replaced only while
  it still has the length the writer read (``ConditionExpression``). Listing them is a scan of
  this small table, as for leases; acknowledgements are a few per alarm, made by hand.

Replay progress is zlib-compressed: DynamoDB bills writes per KiB and refuses items over
400 KB, and it is repetitive JSON.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from engine.alarm_acks import AlarmAckStore, AlarmAction, decode_log, encode_log
from engine.backends.aws._errors import Resource, error_code, translated
from engine.backends.aws._state_objects import S3StateObjects
from engine.leases import DEFAULT_LEASE_SECONDS, Lease, LeaseStore
from engine.replay_log import ReplayLog, ReplayProgress

__all__ = ["KEY", "DynamoAlarmAckStore", "DynamoLeaseStore", "DynamoReplayLog"]

#: The table's hash key (infra/catalog.tf).
KEY = "lease_key"
_LATEST_REPLAY = "replay-latest"
_CONDITION_FAILED = "ConditionalCheckFailedException"


class _Table:
    """The few DynamoDB calls the lease store and the replay log make, with errors translated."""

    def __init__(self, client: Any, resource: Resource) -> None:
        self.client = client
        self.resource = resource

    def put(self, item: dict[str, Any], condition: str | None = None,
            values: dict[str, Any] | None = None, names: dict[str, str] | None = None) -> bool:
        """Write an item; False if ``condition`` did not hold."""
        request: dict[str, Any] = {"TableName": self.resource.name, "Item": item}
        if condition:
            request["ConditionExpression"] = condition
        if values:
            request["ExpressionAttributeValues"] = values
        if names:
            request["ExpressionAttributeNames"] = names
        with translated(self.resource):
            try:
                self.client.put_item(**request)
            except ClientError as exc:
                if error_code(exc) == _CONDITION_FAILED:
                    return False
                raise
        return True

    def get(self, key: str) -> dict[str, Any] | None:
        with translated(self.resource):
            return self.client.get_item(TableName=self.resource.name, Key={KEY: {"S": key}},
                                        ConsistentRead=True).get("Item")

    def delete(self, key: str) -> None:
        with translated(self.resource):
            self.client.delete_item(TableName=self.resource.name, Key={KEY: {"S": key}})

    def scan(self, prefix: str) -> Iterator[dict[str, Any]]:
        """Every item whose key starts with ``prefix`` (strongly consistent)."""
        request = {"TableName": self.resource.name, "ConsistentRead": True,
                   "FilterExpression": "begins_with(#k, :p)", "ExpressionAttributeNames": {"#k": KEY},
                   "ExpressionAttributeValues": {":p": {"S": prefix}}}
        with translated(self.resource):
            for page in self.client.get_paginator("scan").paginate(**request):
                yield from page["Items"]


class DynamoLeaseStore(LeaseStore):
    """Leases of one consumer application; each application keeps its own progress."""

    def __init__(self, client: Any, resource: Resource, application: str, states: S3StateObjects,
                 lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        super().__init__(lease_seconds)
        self._table = _Table(client, resource)
        self._states = states
        self._leases = f"lease#{application}#"
        self._workers = f"worker#{application}#"

    def checkpoints(self) -> dict[str, str | None]:
        """Shard -> checkpointed sequence number (what the stream needs to order resharded shards)."""
        return {lease.shard_id: lease.checkpoint for lease in self._read_all()}

    def _read_all(self) -> list[Lease]:
        return [_lease(item) for item in self._table.scan(self._leases)]

    def _read(self, shard_id: str) -> Lease | None:
        item = self._table.get(self._leases + shard_id)
        return None if item is None else _lease(item)

    def _insert(self, lease: Lease) -> bool:
        return self._table.put(self._item(lease), "attribute_not_exists(lease_key)")

    def _replace(self, lease: Lease, expected_counter: int) -> bool:
        return self._table.put(self._item(lease), "attribute_exists(lease_key) AND lease_counter = :expected",
                               {":expected": {"N": str(expected_counter)}})

    def _put_state(self, shard_id: str, ref: str, state: bytes) -> None:
        self._states.put(shard_id, ref, state)

    def _get_state(self, shard_id: str, ref: str) -> bytes | None:
        return self._states.get(shard_id, ref)

    def _delete_state(self, shard_id: str, ref: str) -> None:
        self._states.delete(shard_id, ref)

    def _heartbeat(self, worker_id: str, expires_at: float) -> None:
        self._table.put({KEY: {"S": self._workers + worker_id}, "expires_at": {"N": repr(expires_at)}})

    def _forget_worker(self, worker_id: str) -> None:
        self._table.delete(self._workers + worker_id)

    def live_workers(self) -> list[str]:
        now = time.time()
        return sorted(item[KEY]["S"][len(self._workers):] for item in self._table.scan(self._workers)
                      if float(item["expires_at"]["N"]) >= now)

    def _item(self, lease: Lease) -> dict[str, Any]:
        item: dict[str, Any] = {
            KEY: {"S": self._leases + lease.shard_id}, "shard_id": {"S": lease.shard_id},
            "lease_counter": {"N": str(lease.counter)}, "expires_at": {"N": repr(lease.expires_at)},
        }
        if lease.owner is not None:
            item["owner"] = {"S": lease.owner}
        if lease.checkpoint is not None:
            item["checkpoint"] = {"S": lease.checkpoint}
        if lease.state_ref is not None:
            item["state_ref"] = {"S": lease.state_ref}
        if lease.millis_behind is not None:
            item["millis_behind"] = {"N": str(lease.millis_behind)}
        if lease.pending is not None:
            item["pending"] = {"S": lease.pending}
        return item


def _lease(item: dict[str, Any]) -> Lease:
    return Lease(
        shard_id=item["shard_id"]["S"],
        owner=item.get("owner", {}).get("S"),
        counter=int(item["lease_counter"]["N"]),
        expires_at=float(item["expires_at"]["N"]),
        checkpoint=item.get("checkpoint", {}).get("S"),
        state_ref=item.get("state_ref", {}).get("S"),
        millis_behind=int(item["millis_behind"]["N"]) if "millis_behind" in item else None,
        pending=item.get("pending", {}).get("S"),
    )


class DynamoReplayLog(ReplayLog):
    """Replay progress items next to the leases."""

    def __init__(self, client: Any, resource: Resource) -> None:
        self._table = _Table(client, resource)

    def load(self, replay_id: str) -> ReplayProgress | None:
        item = self._table.get(f"replay#{replay_id}")
        return ReplayProgress.from_json(zlib.decompress(item["progress"]["B"])) if item else None

    def save(self, progress: ReplayProgress) -> None:
        stamp = {"N": repr(progress.updated_at)}
        self._table.put({KEY: {"S": f"replay#{progress.replay_id}"}, "updated_at": stamp,
                         "progress": {"B": zlib.compress(progress.to_json().encode())}})
        self._table.put({KEY: {"S": _LATEST_REPLAY}, "replay_id": {"S": progress.replay_id}, "updated_at": stamp},
                        "attribute_not_exists(updated_at) OR updated_at <= :stamp", {":stamp": stamp})

    def latest(self) -> ReplayProgress | None:
        pointer = self._table.get(_LATEST_REPLAY)
        return self.load(pointer["replay_id"]["S"]) if pointer else None


class DynamoAlarmAckStore(AlarmAckStore):
    """Alarm action logs next to the leases, one item per event."""

    _PREFIX = "alarm#"

    def __init__(self, client: Any, resource: Resource) -> None:
        self._table = _Table(client, resource)

    def _read(self, event_id: str) -> tuple[AlarmAction, ...]:
        item = self._table.get(self._PREFIX + event_id)
        return decode_log(item["log"]["S"]) if item else ()

    def _read_all(self) -> dict[str, tuple[AlarmAction, ...]]:
        return {item[KEY]["S"][len(self._PREFIX):]: decode_log(item["log"]["S"])
                for item in self._table.scan(self._PREFIX)}

    def _write(self, event_id: str, log: tuple[AlarmAction, ...], expected_length: int) -> bool:
        item = {KEY: {"S": self._PREFIX + event_id}, "log": {"S": encode_log(log)}, "length": {"N": str(len(log))}}
        if expected_length == 0:
            return self._table.put(item, "attribute_not_exists(lease_key)")
        return self._table.put(item, "#n = :expected", {":expected": {"N": str(expected_length)}},
                               names={"#n": "length"})
