"""Errors that carry their HTTP status; mapped once in ``pulse.api.errors``."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details or []

    def to_body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "details": self.details}


class Unauthorized(DomainError):
    status, code = 401, "unauthorized"


class Forbidden(DomainError):
    status, code = 403, "forbidden"


class NotFound(DomainError):
    status, code = 404, "not_found"


class Conflict(DomainError):
    status, code = 409, "conflict"


class Gone(DomainError):
    status, code = 410, "gone"


class ValidationFailed(DomainError):
    status, code = 422, "validation_error"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class VersionConflict(Conflict):
    code = "version_conflict"


def field_error(field: str, message: str) -> ValidationFailed:
    """A 422 naming one bad field."""
    return ValidationFailed(f"{field}: {message}", details=[{"field": field, "message": message}])
