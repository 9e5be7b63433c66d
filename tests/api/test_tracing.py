"""Tracing across the API, Temporal and the worker: one PATCH is one trace."""

from __future__ import annotations

import asyncio
import os
import uuid

import httpx
from asgi_lifespan import LifespanManager
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pulse.api.app import create_app
from pulse.codec import codec_from
from pulse.config import Settings
from pulse.db import SessionFactory
from pulse.telemetry import temporal_tracing, tracer_provider_from_env, tracing_requested
from pulse.temporal import connect
from pulse.worker import build_worker
from tests.conftest import make_account


async def test_one_patch_is_one_trace_from_the_http_span_through_the_update_to_its_write(
        settings: Settings, sessions: SessionFactory, temporal_address: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    client = await connect(temporal_address, codec=codec_from(os.environ["PULSE_PAYLOAD_KEYS"]),
                           interceptors=temporal_tracing(provider))
    queue = f"traced-{uuid.uuid4().hex[:8]}"
    app = create_app(settings.model_copy(update={"task_queue": queue}), sessions=sessions, temporal=client,
                     tracer_provider=provider)
    worker = build_worker(client, sessions, queue)  # sandboxed, as every test worker: the interceptor copes
    async with worker, LifespanManager(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pulse.test",
                                     timeout=60) as http:
            account = await make_account(http, sessions)
            ticket = await account.create_ticket()
            await asyncio.sleep(0.2)
            exporter.clear()
            response = await account.patch(f"/api/tickets/{ticket['id']}", json={"priority": "urgent"})
            assert response.status_code == 200, response.text
            await asyncio.sleep(0.5)  # the workflow task that completes the update reports its spans
    spans = exporter.get_finished_spans()
    names = {span.name for span in spans}
    assert "PATCH /api/tickets/{ticket_ref}" in names, names
    assert "StartWorkflowUpdate:update" in names and "HandleUpdate:update" in names, names
    writes = [name for name in names if name.startswith("RunActivity:")]
    assert writes, names  # the write's (local) activity
    assert len({span.context.trace_id for span in spans}) == 1
    by_id = {span.context.span_id: span for span in spans}
    http_span = next(span for span in spans if span.name == "PATCH /api/tickets/{ticket_ref}" and span.parent is None)
    for span in spans:  # connected: every span's parents lead up to the request's span
        while span.parent is not None:
            span = by_id[span.parent.span_id]
        assert span is http_span


def test_tracing_is_off_unless_the_otel_variables_ask_for_it() -> None:
    assert not tracing_requested({})
    assert tracer_provider_from_env("pulse-api", {}) is None
    assert not tracing_requested({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"})
    assert not tracing_requested({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"})
    assert tracing_requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    provider = tracer_provider_from_env("pulse-api", {"OTEL_TRACES_EXPORTER": "console"})
    assert provider is not None and provider.resource.attributes["service.name"] == "pulse-api"
    provider.shutdown()
