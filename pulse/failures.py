"""Carrying a ``DomainError`` (with its HTTP status) through Temporal and back.

Activities and workflow validators raise ``to_application_error(error)``; the API turns the
failure it receives back into the same ``DomainError`` with ``from_application_error``.
"""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from pulse.domain.errors import DomainError


def to_application_error(error: DomainError) -> ApplicationError:
    return ApplicationError(
        error.message,
        {"status": error.status, "code": error.code, "details": error.details},
        type=error.code,
        non_retryable=True,
    )


def from_application_error(failure: ApplicationError) -> DomainError | None:
    """The domain error a failure carries, or None if it is not one of ours."""
    if not failure.details or not isinstance(failure.details[0], dict):
        return None
    payload = failure.details[0]
    if "status" not in payload or "code" not in payload:
        return None
    return DomainError(
        failure.message,
        code=str(payload["code"]),
        status=int(payload["status"]),
        details=list(payload.get("details") or []),
    )
