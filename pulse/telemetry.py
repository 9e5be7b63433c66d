"""Traces and the worker's metrics.

**Tracing** (OpenTelemetry) is off unless the standard environment asks for it:
``OTEL_TRACES_EXPORTER`` (``otlp`` or ``console``, comma-separated; ``none`` turns it off) or an
OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, OTLP over
HTTP/protobuf, e.g. ``http://127.0.0.1:4318``). The SDK reads the rest itself:
``OTEL_SERVICE_NAME`` (default ``pulse-api`` / ``pulse-worker``), ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_TRACES_SAMPLER(_ARG)``, ``OTEL_BSP_*``; ``OTEL_SDK_DISABLED=true``
wins over everything. One provider per process, handed explicitly to FastAPI's instrumentation
and Temporal's ``TracingInterceptor`` (no global state, so tests can trace into memory): the
HTTP span → the client's update → the workflow's update handler → its (local) activity, one trace.

**Worker metrics**: the Temporal SDK's own Prometheus endpoint (``PULSE_WORKER_METRICS_PORT``;
``temporal_*`` metrics: task latencies, slots, polls, sticky cache, activity failures) and, on the
same endpoint, ``pulse_activity_outcomes`` by activity and outcome, counted by a worker
interceptor through the SDK's metric meter. One port, one scrape job.
"""

from __future__ import annotations

import asyncio
import os
from contextlib import contextmanager
from typing import Any, Iterator

from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

TRACER_NAME = "pulse"


def tracing_requested(environ: dict[str, str] | None = None) -> bool:
    environ = dict(os.environ) if environ is None else environ
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return exporters != "none"
    return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def tracer_provider_from_env(service_name: str, environ: dict[str, str] | None = None) -> Any | None:
    """A TracerProvider exporting as the ``OTEL_*`` variables say, or None when tracing is off."""
    environ = dict(os.environ) if environ is None else environ
    if not tracing_requested(environ):
        return None
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    attributes = {} if environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    for name in (environ.get("OTEL_TRACES_EXPORTER") or "otlp").split(","):
        name = name.strip().lower()
        if name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        elif name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        elif name not in ("", "none"):
            raise ValueError(f"OTEL_TRACES_EXPORTER: Pulse exports traces with otlp or console, not {name!r}")
    return provider


def temporal_tracing(provider: Any | None) -> list[Any]:
    """The client interceptors that carry a trace through Temporal (a worker built on the client
    takes them too): none without a provider."""
    if provider is None:
        return []
    return [_tracing_interceptor_class()(provider.get_tracer(TRACER_NAME))]


def _tracing_interceptor_class() -> type:
    """Temporal's ``TracingInterceptor``, with one change: an update's spans (validator, handler,
    and so the activity its handler runs) continue the **caller's** trace, as a query's do. The
    stock interceptor puts them under the workflow's start (and only links the caller), so every
    change of a ticket open for weeks would land in the trace of the request that created it."""
    import opentelemetry.trace
    from temporalio.contrib.opentelemetry import TracingInterceptor, TracingWorkflowInboundInterceptor
    from temporalio.contrib.opentelemetry._context import attached_context
    from temporalio.worker import HandleUpdateInput, WorkflowInterceptorClassInput

    class UpdateTracingWorkflowInbound(TracingWorkflowInboundInterceptor):
        @contextmanager
        def _caller_context(self, input: HandleUpdateInput) -> Iterator[None]:
            header = input.headers.get(self.header_key)
            if not header:  # an update sent without a trace: the workflow's own context
                with self._top_level_workflow_context(success_is_complete=False):
                    yield
                return
            carrier = self.payload_converter.from_payloads([header])[0]
            with attached_context(self._set_on_context(self.text_map_propagator.extract(carrier))):
                yield

        def handle_update_validator(self, input: HandleUpdateInput) -> None:
            with self._caller_context(input):
                self._completed_span(f"ValidateUpdate:{input.update}", kind=opentelemetry.trace.SpanKind.SERVER)
                self.next.handle_update_validator(input)

        async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
            with self._caller_context(input):
                self._completed_span(f"HandleUpdate:{input.update}", kind=opentelemetry.trace.SpanKind.SERVER)
                return await self.next.handle_update_handler(input)

    class UpdateTracingInterceptor(TracingInterceptor):
        def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type:
            super().workflow_interceptor_class(input)  # registers the span-reporting extern function
            return UpdateTracingWorkflowInbound

    return UpdateTracingInterceptor


def instrument_fastapi(app: Any, provider: Any | None) -> None:
    """HTTP server spans for every request but the probes and the scrapes."""
    if provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls="/metrics,/api/health")


def shutdown(provider: Any | None) -> None:
    """Flush the spans still batched (a process that stops)."""
    if provider is not None:
        provider.shutdown()


def worker_runtime(host: str, port: int) -> Runtime:
    """A Temporal runtime serving the SDK's metrics (and ``pulse_activity_outcomes``) for Prometheus
    at ``http://host:port/metrics``; latencies in seconds, counters with ``_total``."""
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(
        bind_address=f"{host}:{port}", counters_total_suffix=True, durations_as_seconds=True)))


def _outcome(error: BaseException) -> str:
    if isinstance(error, activity._CompleteAsyncError):  # type: ignore[attr-defined]
        return "completed_async"
    if isinstance(error, (CancelledError, asyncio.CancelledError)):
        return "cancelled"
    if isinstance(error, ApplicationError) and error.non_retryable:
        return "failed_for_good"
    return "failed"


class _CountOutcomes(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        outcome = "completed"
        try:
            return await self.next.execute_activity(input)
        except BaseException as error:
            outcome = _outcome(error)
            raise
        finally:
            info = activity.info()
            activity.metric_meter().create_counter(
                "pulse_activity_outcomes", "Activity attempts by activity, outcome and kind (local or not)",
            ).add(1, {"outcome": outcome, "local": "true" if info.is_local else "false"})


class ActivityOutcomes(Interceptor):
    """Counts every activity attempt's outcome (``completed``, ``failed`` — retried —,
    ``failed_for_good``, ``cancelled``) by activity type, through the worker runtime's meter."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _CountOutcomes(next)
