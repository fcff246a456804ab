"""One actionable message per AWS failure, naming the resource and what to do about it.

boto3 raises a dozen exception types with service-specific error codes. A user needs to
know four things: credentials are missing or invalid, the resource does not exist (wrong
name, region, or the stack is down), access is denied, or AWS cannot be reached. Every AWS
call of the backend runs inside :func:`translated`, which turns those into one
:class:`~engine.errors.BackendError` line; codes a caller handles itself (a failed
condition, a missing object) must be caught inside the block.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from engine.errors import BackendError, TransientError

__all__ = ["Resource", "error_code", "is_access_denied", "is_transient", "translated"]

_NOT_FOUND = frozenset({
    "ResourceNotFoundException", "NoSuchBucket", "EntityNotFoundException", "ClusterNotFoundException",
    "ServiceNotFoundException", "NotFoundException",
})
_DENIED = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError",
    "KMSAccessDeniedException", "Forbidden", "403",
})
_BAD_CREDENTIALS = frozenset({
    "UnrecognizedClientException", "InvalidClientTokenId", "InvalidAccessKeyId", "SignatureDoesNotMatch",
    "InvalidSignatureException", "ExpiredToken", "ExpiredTokenException", "MissingAuthenticationToken",
})
#: Codes AWS documents as retryable: throttling, internal failures, an expired Kinesis iterator.
_TRANSIENT = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
    "LimitExceededException", "SlowDown", "BandwidthLimitExceeded", "KMSThrottlingException",
    "InternalFailure", "InternalError", "InternalServerError", "InternalServerException", "ServiceUnavailable",
    "ServiceUnavailableException", "ExpiredIteratorException", "RequestTimeout", "RequestTimeoutException",
    "TransactionInProgressException",
})
#: Connection refused, reset or closed, DNS failure, connect or read timeout.
_UNREACHABLE = (BotoConnectionError, HTTPClientError)


@dataclass(frozen=True)
class Resource:
    """An AWS resource the backend uses: what it is, its name, and the setting that names it."""

    kind: str
    name: str
    setting: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r}"


def error_code(exc: ClientError) -> str:
    """The service's error code of a client error (``""`` if it has none)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_access_denied(exc: ClientError) -> bool:
    """Whether AWS refused the call for lack of permission (each service names it its own way)."""
    return error_code(exc) in _DENIED


def is_transient(exc: ClientError) -> bool:
    """Whether a retry later may succeed: throttling, a server-side fault (HTTP 5xx), an expired iterator."""
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return error_code(exc) in _TRANSIENT or status >= 500


@contextmanager
def translated(resource: Resource) -> Iterator[None]:
    """Run AWS calls on ``resource``; re-raise their failures as one-line :class:`BackendError`."""
    try:
        yield
    except ClientError as exc:
        error = TransientError if is_transient(exc) else BackendError
        raise error(_client_error_message(resource, exc)) from exc
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise BackendError(
            f"no AWS credentials found for {resource}: set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (an ECS task gets them from its task role)") from exc
    except NoRegionError as exc:
        raise BackendError(f"no AWS region configured for {resource}: set AWS_REGION") from exc
    except _UNREACHABLE as exc:
        raise TransientError(
            f"cannot reach AWS for {resource} ({type(exc).__name__}); nothing was acknowledged, "
            "so the work is retried once AWS is reachable again") from exc
    except BotoCoreError as exc:
        raise BackendError(f"{resource}: {_first_line(str(exc))}") from exc


def _client_error_message(resource: Resource, exc: ClientError) -> str:
    code = error_code(exc)
    operation = exc.operation_name
    detail = _first_line(str(exc.response.get("Error", {}).get("Message", "")))
    if code in _NOT_FOUND or (code == "InvalidRequestException" and "not found" in detail.lower()):
        return (f"{resource} does not exist ({operation}: {code}): create it with ./project_up.sh, "
                f"or set {resource.setting} (and AWS_REGION) to where it is")
    if is_access_denied(exc):
        return (f"access denied to {resource} ({operation}): the AWS identity in use may not do this; "
                "check its IAM policy (infra/iam.tf grants each role what it needs)")
    if code in _BAD_CREDENTIALS:
        return (f"AWS rejected the credentials used for {resource} ({code}): refresh them "
                "(aws sso login, new access keys) or pick another AWS_PROFILE")
    return f"{resource}: {operation} failed: {code}: {detail}".rstrip(": ")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else ""
