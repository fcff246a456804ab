"""Undo a "Stop pipeline" so ``project_up.sh`` leaves the consumers running.

The portal's *Stop pipeline* suspends the consumer service's auto-scaling and sets its
desired count to 0. Terraform ignores both (the auto-scaler owns the count), so a later
``project_up.sh`` would wait for a service that is "stable" at zero tasks. This resumes the
scaling target and raises the desired count to at least the target's minimum (1 at least),
and says what it changed.

Usage::

    python -m deploy.resume --cluster petrostream --service petrostream-consumer

Clients honour ``AWS_REGION`` and ``AWS_ENDPOINT_URL`` (see :mod:`deploy.aws`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError

from deploy import aws

__all__ = ["main", "resume_service"]

_SUSPENDED = ("DynamicScalingInSuspended", "DynamicScalingOutSuspended", "ScheduledScalingSuspended")


def resume_service(cluster: str, service: str) -> list[str]:
    """Resume the service's auto-scaling and give it at least one task; return what was changed."""
    ecs, scaling = aws.client("ecs"), aws.client("application-autoscaling")
    resource = f"service/{cluster}/{service}"
    targets = scaling.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[resource],
                                                ScalableDimension="ecs:service:DesiredCount")["ScalableTargets"]
    changes, minimum = [], 1
    if targets:
        target = targets[0]
        minimum = max(1, int(target["MinCapacity"]))
        if any((target.get("SuspendedState") or {}).get(flag) for flag in _SUSPENDED):
            scaling.register_scalable_target(ServiceNamespace="ecs", ResourceId=resource,
                                             ScalableDimension="ecs:service:DesiredCount",
                                             SuspendedState=dict.fromkeys(_SUSPENDED, False))
            changes.append("auto-scaling resumed")
    desired = int(ecs.describe_services(cluster=cluster, services=[service])["services"][0]["desiredCount"])
    if desired < minimum:
        ecs.update_service(cluster=cluster, service=service, desiredCount=minimum)
        changes.append(f"desired count {desired} -> {minimum}")
    return changes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.resume", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--service", required=True)
    args = parser.parse_args(argv)
    try:
        changes = resume_service(args.cluster, args.service)
    except (BotoCoreError, ClientError) as exc:
        print(f"error: cannot resume {args.service}: {exc}", file=sys.stderr)
        return 1
    if changes:
        print(f"{args.service} had been stopped (the portal's Stop pipeline): {'; '.join(changes)}")
    else:
        print(f"{args.service} is running under auto-scaling; nothing to resume")
    return 0


if __name__ == "__main__":
    sys.exit(main())
