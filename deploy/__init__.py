"""Operations code behind ``project_up.sh`` / ``project_down.sh`` and the portal's cost view.

Kept apart from ``engine`` because it manages the AWS account the engine runs in: emptying
buckets, stopping stray tasks, proving nothing billable is left, and pricing the deployment.
"""

__all__ = ["aws", "cost", "outputs", "teardown"]
