"""What the API tells its operators: Prometheus metrics and one structured log line per request.

``Observability`` is the outermost ASGI middleware (so it sees the 413s and 429s of the request
limits too). For every HTTP request it

- takes the caller's ``X-Request-ID`` (if it is a sane one) or makes one, answers it in the
  response's ``X-Request-ID``, and opens the request's log context (pulse.logs);
- counts the request and observes its latency in ``pulse_http_requests_total`` and
  ``pulse_http_request_duration_seconds`` by method, **route template** (``/api/tickets/{ticket_ref}``,
  never the raw path: ids would make a series per ticket) and status. A request answered before
  routing (a 413, 429 or 401 of the limits) or matching no route is labelled ``unrouted``;
- writes one ``request`` log line (method, route, status, duration);
- tells the time until the answer's headers left in ``Server-Timing: app;dur=<ms>`` (a handler
  may add its own entries, e.g. the ticket list's ``repo``: the repository call).

``GET /metrics`` (not part of the API's schema) serves the app's registry in Prometheus' text
format (with several API processes, ``PULSE_API_PROCESSES``, the HTTP metrics of all of them:
prometheus_client's multiprocess mode), after refreshing the support-lead gauges (open tickets
by SLA status, failing notification deliveries) with one cheap query each
(pulse.repositories.operations).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from pulse import logs
from pulse.api.limits import ASGIApp, Message, Receive, Scope, Send
from pulse.services.operations import support_lead_numbers

log = logging.getLogger("pulse.api.request")

REQUEST_ID_HEADER = b"x-request-id"
SERVER_TIMING_HEADER = b"server-timing"  # app;dur=<ms until the answer's headers were sent>
_SANE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")
# Buckets from 5 ms (a cached read) to 10 s (a write that waited out a busy ticket).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Where the API processes of one `pulse api` keep their metrics' values (prometheus_client's
# multiprocess mode), so that a scrape, whichever process answers it, sees them all.
MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# The gauges are refreshed at most this often, however many scrapers ask.
GAUGE_MAX_AGE_SECONDS = 5.0


class SupportLeadGauges:
    """A collector over the last snapshot of the support-lead numbers: the ``/metrics`` handler
    refreshes the snapshot (async, from the database) and ``collect`` only reads it."""

    def __init__(self) -> None:
        self.open_tickets: list[tuple[int, str, int]] = []
        self.failing_deliveries: list[tuple[int, str, bool, int]] = []
        self.refreshed_at = 0.0
        self.scrape_errors = 0

    def collect(self) -> Any:
        open_tickets = GaugeMetricFamily("pulse_open_tickets", "Open tickets (not resolved, closed or deleted) "
                                         "by account and SLA status", labels=["account_id", "sla_status"])
        for account_id, sla_status, count in self.open_tickets:
            open_tickets.add_metric([str(account_id), sla_status], count)
        yield open_tickets
        failing = GaugeMetricFamily("pulse_notification_deliveries_failing", "Notification deliveries whose last "
                                    "attempt failed, by account, channel and whether they are still retried",
                                    labels=["account_id", "channel", "retryable"])
        for account_id, channel, retryable, count in self.failing_deliveries:
            failing.add_metric([str(account_id), channel, "true" if retryable else "false"], count)
        yield failing


class ApiMetrics:
    """The API's metrics, in a registry of their own (one per app, so apps in one process do not
    share or clash)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("pulse_http_requests", "HTTP requests answered, by method, route template and "
                                "status", ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("pulse_http_request_duration_seconds", "Time to answer an HTTP request, by "
                                 "method, route template and status", ["method", "route", "status"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.in_progress = Gauge("pulse_http_requests_in_progress", "HTTP requests being answered",
                                 registry=self.registry, multiprocess_mode="livesum")
        self.gauges = SupportLeadGauges()
        self.registry.register(self.gauges)
        # What /metrics serves: this registry; with several API processes (PROMETHEUS_MULTIPROC_DIR,
        # set by `pulse api` for its workers) the HTTP metrics summed over every live process.
        self.exposed = self.registry
        if multiprocess_metrics():
            self.exposed = CollectorRegistry()
            MultiProcessCollector(self.exposed)
            self.exposed.register(self.gauges)


def multiprocess_metrics() -> bool:
    return bool(os.environ.get(MULTIPROCESS_DIR_VARIABLE))


def use_multiprocess_metrics(directory: Path) -> None:
    """Before `pulse api` starts several processes: their metrics go to ``directory`` (emptied:
    what an earlier run left is not this run's), and each process's /metrics sums them all."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[MULTIPROCESS_DIR_VARIABLE] = str(directory)


def forget_this_process() -> None:
    """An API process that ends takes its live gauges out of the sum (several API processes)."""
    if multiprocess_metrics():
        mark_process_dead(os.getpid())


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers") or ():
        if name == REQUEST_ID_HEADER:
            return value.decode() if _SANE_REQUEST_ID.match(value) else uuid.uuid4().hex
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unrouted"


class Observability:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        token = logs.open_context(request_id)
        started = time.perf_counter()
        status = 500
        header = (REQUEST_ID_HEADER, request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                timing = (SERVER_TIMING_HEADER, f"app;dur={(time.perf_counter() - started) * 1000:.2f}".encode())
                message = {**message, "headers": [*message.get("headers", ()), header, timing]}
            await send(message)

        self.metrics.in_progress.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.in_progress.dec()
            method, route, code = scope["method"], route_template(scope), str(status)
            self.metrics.requests.labels(method, route, code).inc()
            self.metrics.latency.labels(method, route, code).observe(elapsed)
            log.info("%s %s %s", method, route, status, extra={
                "http_method": method, "route": route, "status": status,
                "duration_ms": round(elapsed * 1000, 2)})
            logs.close_context(token)


async def bind_request_context(request: Request) -> None:
    """An app-wide dependency: the ticket a route names joins the request's log context."""
    reference = request.path_params.get("ticket_ref") or request.path_params.get("ticket_id")
    if isinstance(reference, str) and reference.isascii() and reference.isdigit() and len(reference) < 19:
        logs.bind(ticket_id=int(reference))


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus' text format. Not an API operation: no token (scrape it from inside the network)."""
    app_metrics: ApiMetrics = request.app.state.metrics
    gauges = app_metrics.gauges
    if time.monotonic() - gauges.refreshed_at >= GAUGE_MAX_AGE_SECONDS:
        try:
            numbers = await asyncio.wait_for(support_lead_numbers(request.app.state.sessions), timeout=5)
            gauges.open_tickets, gauges.failing_deliveries = numbers.open_tickets, numbers.failing_deliveries
            gauges.refreshed_at = time.monotonic()
        except Exception as error:  # noqa: BLE001 - the HTTP metrics are still worth serving
            gauges.scrape_errors += 1
            log.warning("support-lead gauges not refreshed: %s", type(error).__name__)
    return Response(generate_latest(app_metrics.exposed), media_type=CONTENT_TYPE_LATEST)
