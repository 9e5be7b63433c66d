"""An httpx client for Maverick's API: the one place Pulse speaks its wire format.

- ``Authorization: Bearer <apiKey>`` on every call.
- Lists are followed by their opaque ``nextCursor`` (never parsed, never built).
- 429 waits the ``Retry-After`` seconds, 5xx and transport errors back off exponentially with
  jitter; both give up after ``max_attempts`` with :class:`MaverickUnavailable`. Other 4xx are
  answered at once as :class:`MaverickError` (409 ``version_mismatch`` as :class:`VersionMismatch`).
- Writes that create (comments, documents) carry an ``externalId``, so retrying one — also after a
  timeout whose answer was lost — creates it once. A status change carries ``expectedVersion``.
"""

from __future__ import annotations

import asyncio
import functools
import random
import ssl
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, AsyncIterator, Callable, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from pulse.integrations.maverick.wire import (
    Category,
    ErrorBody,
    MaverickComment,
    MaverickDocument,
    MaverickTicket,
    Page,
)

T = TypeVar("T", bound=BaseModel)

DEFAULT_PAGE_SIZE = 100
MAX_RETRY_AFTER_SECONDS = 120.0


class MaverickError(Exception):
    """Maverick answered with an error that retrying will not fix (a 4xx other than 429)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"Maverick answered {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class VersionMismatch(MaverickError):
    """409 ``version_mismatch``: the ticket changed since the version we sent; read it again."""


class NotFoundAtMaverick(MaverickError):
    pass


class MaverickUnavailable(Exception):
    """Maverick could not be reached or kept failing (5xx, 429, timeouts) for every attempt."""


class MaverickProtocolError(Exception):
    """Maverick answered 2xx with a body that is not what the contract says."""


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process: building one (reading the CA bundle) took ~10 % of the
    worker's event loop when every webhook fetch and push made a client (bench/maverick_sync.py)."""
    return httpx.create_ssl_context()


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    initial_backoff: float = 0.2
    max_backoff: float = 10.0


class MaverickClient:
    """One account's connection to Maverick. Use as an async context manager, or hand in an
    ``httpx.AsyncClient`` whose life the caller owns."""

    def __init__(self, api_url: str, api_key: str, *, http: httpx.AsyncClient | None = None,
                 retry: RetryPolicy = RetryPolicy(), timeout: float = 30.0,
                 sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        self._base = api_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self._owned = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout, verify=_tls_context())
        self._retry = retry
        self._sleep = sleep

    async def __aenter__(self) -> "MaverickClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owned:
            await self._http.aclose()

    # -- resources --------------------------------------------------------------------------------

    async def categories(self) -> list[Category]:
        return await self._all("/v1/categories", Category)

    def tickets_updated_since(self, since: datetime | None, *, page_size: int = DEFAULT_PAGE_SIZE,
                              cursor: str | None = None) -> AsyncIterator[Page[MaverickTicket]]:
        """Pages of tickets changed since ``since`` (all tickets when None), oldest change first.
        Each page carries the cursor of the next, so a caller can store it and resume."""
        params: dict[str, str] = {}
        if since is not None:
            params["updatedSince"] = _iso(since)
        return self._pages("/v1/tickets", MaverickTicket, params, page_size, cursor)

    async def ticket(self, ticket_id: str) -> MaverickTicket:
        return _parse(MaverickTicket, await self._request("GET", f"/v1/tickets/{_segment(ticket_id)}"))

    async def change_status(self, ticket_id: str, status: str, expected_version: int) -> MaverickTicket:
        """Raises :class:`VersionMismatch` when the ticket is no longer at ``expected_version``."""
        body = await self._request("PATCH", f"/v1/tickets/{_segment(ticket_id)}",
                                   json={"status": status, "expectedVersion": expected_version})
        return _parse(MaverickTicket, body)

    async def comments(self, ticket_id: str) -> list[MaverickComment]:
        return await self._all(f"/v1/tickets/{_segment(ticket_id)}/comments", MaverickComment)

    async def add_comment(self, ticket_id: str, body: str, *, internal: bool, external_id: str) -> MaverickComment:
        answer = await self._request("POST", f"/v1/tickets/{_segment(ticket_id)}/comments",
                                     json={"body": body, "internal": internal, "externalId": external_id})
        return _parse(MaverickComment, answer)

    async def documents(self, ticket_id: str) -> list[MaverickDocument]:
        return await self._all(f"/v1/tickets/{_segment(ticket_id)}/documents", MaverickDocument)

    async def document_content(self, document_id: str) -> bytes:
        response = await self._send("GET", f"/v1/documents/{_segment(document_id)}/content")
        return response.content

    async def add_document(self, ticket_id: str, file_name: str, content: bytes, content_type: str, *,
                           external_id: str) -> MaverickDocument:
        answer = await self._request("POST", f"/v1/tickets/{_segment(ticket_id)}/documents",
                                     files={"file": (file_name, content, content_type)},
                                     data={"externalId": external_id})
        return _parse(MaverickDocument, answer)

    # -- paging -----------------------------------------------------------------------------------

    async def _pages(self, path: str, model: type[T], params: dict[str, str], page_size: int,
                     cursor: str | None) -> AsyncIterator[Page[T]]:
        adapter = TypeAdapter(Page[model])  # type: ignore[valid-type]
        while True:
            query = {**params, "limit": str(max(1, min(page_size, 100)))}
            if cursor is not None:
                query["cursor"] = cursor
            body = await self._request("GET", path, params=query)
            # A list answered as a bare array is one complete page.
            page = _parse(adapter, {"data": body} if isinstance(body, list) else body)
            yield page
            if not page.next_cursor or page.next_cursor == cursor:
                return
            cursor = page.next_cursor

    async def _all(self, path: str, model: type[T]) -> list[T]:
        items: list[T] = []
        async for page in self._pages(path, model, {}, DEFAULT_PAGE_SIZE, None):
            items.extend(page.data)
        return items

    # -- transport --------------------------------------------------------------------------------

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._send(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise MaverickProtocolError(f"{method} {path}: the answer is not JSON") from None

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One call with retries: 429 after ``Retry-After``, 5xx and transport errors with backoff.
        Only calls that are safe to repeat are sent here (reads, PATCH with expectedVersion,
        creates with externalId), so every one may be retried."""
        backoff = self._retry.initial_backoff
        last_problem = "no attempt made"
        for attempt in range(1, self._retry.max_attempts + 1):
            wait: float | None = None
            try:
                response = await self._http.request(method, self._base + path, headers=self._headers, **kwargs)
            except httpx.TransportError as error:
                last_problem = f"{type(error).__name__}"
            else:
                if response.status_code < 400:
                    return response
                if response.status_code == 429:
                    last_problem = "429 too many requests"
                    wait = _retry_after(response.headers.get("Retry-After"))
                elif response.status_code >= 500:
                    last_problem = f"{response.status_code} {_error_of(response).code}"
                else:
                    raise _client_error(response)
            if attempt == self._retry.max_attempts:
                break
            if wait is None:
                wait = random.uniform(backoff / 2, backoff)
                backoff = min(backoff * 2, self._retry.max_backoff)
            await self._sleep(wait)
        raise MaverickUnavailable(f"{method} {path}: {last_problem} after {self._retry.max_attempts} attempts")


def _client_error(response: httpx.Response) -> MaverickError:
    error = _error_of(response)
    if response.status_code == 409 and error.code == "version_mismatch":
        return VersionMismatch(409, error.code, error.message)
    if response.status_code == 404:
        return NotFoundAtMaverick(404, error.code, error.message)
    return MaverickError(response.status_code, error.code, error.message)


def _error_of(response: httpx.Response) -> ErrorBody:
    try:
        return ErrorBody.model_validate(response.json()["error"])
    except (ValueError, KeyError, TypeError, ValidationError):
        return ErrorBody(code=f"http_{response.status_code}", message=response.text[:200])


def _retry_after(value: str | None) -> float:
    """Seconds to wait: ``Retry-After`` as seconds or an HTTP date, capped; 1 s when absent."""
    if not value:
        return 1.0
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds()
        except (TypeError, ValueError):
            return 1.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _parse(model: Any, body: Any) -> Any:
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(body)
        return model.model_validate(body)
    except ValidationError as error:
        raise MaverickProtocolError(f"unexpected answer from Maverick: {error.error_count()} problems, "
                                    f"first: {error.errors()[0]['loc']}: {error.errors()[0]['msg']}") from None


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("timestamps sent to Maverick must be timezone-aware")
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _segment(identifier: str) -> str:
    """An id as one URL path segment (ids are opaque strings: they may hold anything)."""
    return quote(str(identifier), safe="")
