"""Every error leaves the API in the contract's shape: {error, message, details}."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from pulse.domain.errors import DomainError

log = logging.getLogger("pulse.api")
RETRY_AFTER_SECONDS = "5"  # on every 503: the database or Temporal is away, retry shortly

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    415: "unsupported_media_type",
    422: "validation_error",
    503: "unavailable",
}


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    """Every error's body (the contract's format)."""

    error: str
    message: str
    details: list[ErrorDetail]


_DESCRIPTIONS = {
    401: "no valid bearer token", 403: "the token lacks the permission, or the account is not the caller's",
    404: "no such resource in the caller's account", 409: "a conflict (stale version, duplicate, in use)",
    412: "If-Match does not match", 413: "the request body is over the limit",
    422: "invalid input; details name the fields", 429: "rate limited; see Retry-After",
    503: "the database or Temporal is unreachable; see Retry-After",
}
# The error statuses any operation of the API may answer, documented on each (OpenAPI).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description} for status, description in _DESCRIPTIONS.items()}


def error_response(status: int, code: str, message: str, details: list[dict[str, Any]] | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        status_code=status, content={"error": code, "message": message, "details": details or []}, headers=headers
    )


def _field_name(location: tuple[Any, ...]) -> str:
    parts = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_details(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    details = []
    for error in errors:
        message = error.get("msg", "invalid")
        if error.get("type") == "extra_forbidden":
            message = "unknown field"
        elif error.get("type") == "json_invalid":
            message = "the body is not valid JSON"
        details.append({"field": _field_name(tuple(error.get("loc", ()))), "message": message})
    return details


def allowed_methods(request: Request) -> list[str] | None:
    """The methods the API documents for this path (the most specific path template that matches:
    ``/api/tickets/bulk`` over ``/api/tickets/{ticket_ref}``); None for a path it does not document.
    FastAPI makes one route per method, and Starlette's own 405 names only the first route that
    matched the path."""
    templates = getattr(request.app.state, "path_templates", None)
    if templates is None:
        templates = [(re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path)) + "$"), path.count("{"),
                      sorted(method.upper() for method in operations))
                     for path, operations in request.app.openapi().get("paths", {}).items()]
        request.app.state.path_templates = templates
    matching = [(parameters, methods) for pattern, parameters, methods in templates
                if pattern.match(request.url.path)]
    return min(matching)[1] if matching else None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(_: Request, error: DomainError) -> JSONResponse:
        response = error_response(error.status, error.code, error.message, error.details)
        if error.status == 503:
            response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        return response

    @app.exception_handler(RequestValidationError)
    async def request_validation(_: Request, error: RequestValidationError) -> JSONResponse:
        details = validation_details(list(error.errors()))
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
        return error_response(422, "validation_error", f"invalid request: {summary}", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400:
            # A body that cannot be parsed at all (bytes that are not JSON text, a multipart body
            # without its boundary): bad input like any other, a 422.
            if error.detail == "There was an error parsing the body":
                return error_response(422, "validation_error", "the body is not valid JSON",
                                      [{"field": "body", "message": "not valid JSON (UTF-8)"}])
            message = error.detail if isinstance(error.detail, str) else "the body cannot be parsed"
            return error_response(422, "validation_error", message, [{"field": "body", "message": message}])
        code = _HTTP_CODES.get(error.status_code, "error")
        message = error.detail if isinstance(error.detail, str) else code
        if error.status_code == 404 and message == "Not Found":
            message = "no such endpoint"
        response = error_response(error.status_code, code, message)
        response.headers.update(error.headers or {})
        if error.status_code == 405 and (methods := allowed_methods(request)) is not None:
            response.headers["Allow"] = ", ".join(methods)
        return response

    @app.exception_handler(IntegrityError)
    async def integrity(_: Request, error: IntegrityError) -> JSONResponse:
        log.info("integrity error: %s", error.orig)
        return error_response(409, "conflict", "the change conflicts with existing data (it is referenced or duplicated)")

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(PoolTimeout)
    async def database_unavailable(_: Request, error: Exception) -> JSONResponse:
        """The database cannot be reached (down, restarting, connections dropped, the pool
        exhausted): nothing was applied, so the client may retry."""
        log.warning("database unavailable: %s", getattr(error, "orig", error))
        response = error_response(503, "unavailable", "the database is not reachable right now; retry shortly")
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        return response

    @app.exception_handler(RuntimeError)
    async def temporal_unreachable(_: Request, error: RuntimeError) -> JSONResponse:
        """The Temporal client (it connects lazily) could not reach the server: nothing was sent."""
        if "client connect" not in str(error):
            raise error  # not ours to explain: the 500 below
        log.warning("Temporal unavailable: %s", error)
        response = error_response(503, "unavailable", "the ticket engine is not reachable right now; retry shortly")
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        return response

    @app.exception_handler(Exception)
    async def unexpected(_: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")
