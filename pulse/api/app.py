"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import Depends, FastAPI
from temporalio.client import Client

from pulse.api.deps import reject_unknown_write_params
from pulse.api.errors import ERROR_RESPONSES, install_error_handlers
from pulse.api.limits import RequestLimits
from pulse.api.observability import ApiMetrics, Observability, bind_request_context, forget_this_process
from pulse.api.observability import router as metrics_router
from pulse.api.openapi import install_openapi
from pulse.api.routers import accounts, health, reference, sla, ticket_ops, tickets, views
from pulse.api.routers import automation, escalations, rotations
from pulse.api.routers import notifications
from pulse.api.routers import attachments, codec, maverick
from pulse.api.routers import reports
from pulse.codec import codec_from
from pulse.config import Settings, get_settings
from pulse.db import SessionFactory, make_engine, make_sessionmaker
from pulse.notifications.stream import NotificationHub, sessions_url
from pulse.search_index.engine import SearchIndexReader
from pulse.search_index.indexer import SearchIndexer
from pulse.services.auth import TokenCache
from pulse.telemetry import instrument_fastapi, shutdown, temporal_tracing, tracer_provider_from_env
from pulse.temporal import API_RETRY, connect


def create_app(settings: Settings | None = None, *, sessions: SessionFactory | None = None,
               temporal: Client | None = None, tracer_provider: Any | None = None) -> FastAPI:
    """Build the app. Tests may hand in a session factory and a Temporal client; otherwise they
    are made from the settings when the app starts. ``tracer_provider``: trace requests into it
    (a handed-in Temporal client carries its own tracing interceptor); else the ``OTEL_*``
    variables decide (pulse.telemetry: off unless they ask for it)."""
    settings = settings or get_settings()
    owns_provider = tracer_provider is None
    tracer_provider = tracer_provider if tracer_provider is not None else tracer_provider_from_env("pulse-api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = None
        app.state.settings = settings
        app.state.codec = codec_from(settings.payload_keys.get_secret_value() if settings.payload_keys else None)
        if sessions is None:
            if not settings.database_url:
                raise RuntimeError("DATABASE_URL is not set")
            engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
            app.state.sessions = make_sessionmaker(engine)
        else:
            app.state.sessions = sessions
        # Lazy: the API starts (and answers 503 to what needs Temporal) while Temporal is down.
        app.state.temporal = temporal or await connect(settings.temporal_target, settings.temporal_namespace,
                                                       lazy=True, retry_config=API_RETRY, codec=app.state.codec,
                                                       interceptors=temporal_tracing(tracer_provider))
        # One LISTEN connection per API process, opened by the first SSE subscriber.
        app.state.notification_hub = NotificationHub(
            settings.database_url or sessions_url(app.state.sessions) or "", app.state.sessions)
        # The search index: read by this process, written by whichever API process holds its lock.
        app.state.search_index, indexing = None, None
        if settings.search_engine == "tantivy":
            app.state.search_index = SearchIndexReader(settings.search_index_path)
            indexing = asyncio.create_task(SearchIndexer(app.state.sessions, settings.search_index_path).run(),
                                           name="search-indexer")
        try:
            yield
        finally:
            if indexing is not None:
                indexing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await indexing
            await app.state.notification_hub.stop()
            if engine is not None:
                await engine.dispose()
            if owns_provider:
                shutdown(tracer_provider)
            forget_this_process()  # its in-progress gauge no longer counts (several API processes)

    app = FastAPI(
        title="Pulse",
        version="0.1.0",
        description="Support tickets whose SLA promises are kept by durable Temporal timers.",
        lifespan=lifespan,
        dependencies=[Depends(reject_unknown_write_params), Depends(bind_request_context)],
    )
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(RequestLimits, settings=settings)
    app.state.metrics = ApiMetrics()
    app.state.token_cache = TokenCache()
    app.add_middleware(Observability, metrics=app.state.metrics)  # outermost: sees the limits' answers too
    instrument_fastapi(app, tracer_provider)
    app.include_router(tickets.list_router, responses=ERROR_RESPONSES)  # first: the route asked most
    app.include_router(metrics_router)
    app.include_router(health.router, responses=ERROR_RESPONSES)
    app.include_router(accounts.router, responses=ERROR_RESPONSES)
    app.include_router(reference.router, responses=ERROR_RESPONSES)
    app.include_router(rotations.router, responses=ERROR_RESPONSES)
    app.include_router(sla.router, responses=ERROR_RESPONSES)
    app.include_router(sla.ticket_router, responses=ERROR_RESPONSES)  # /api/tickets/{id}/sla/...: before the tickets router
    app.include_router(ticket_ops.router, responses=ERROR_RESPONSES)  # /api/tickets/bulk, /merge: before /api/tickets/{ticket_ref}
    app.include_router(escalations.router, responses=ERROR_RESPONSES)  # /api/tickets/escalation-rules: before /api/tickets/{ticket_ref}
    app.include_router(automation.router, responses=ERROR_RESPONSES)  # /api/tickets/automation-rules: before /api/tickets/{ticket_ref}
    app.include_router(escalations.ticket_router, responses=ERROR_RESPONSES)
    app.include_router(attachments.router, responses=ERROR_RESPONSES)
    app.include_router(tickets.router, responses=ERROR_RESPONSES)
    app.include_router(views.router, responses=ERROR_RESPONSES)
    app.include_router(notifications.settings_router, responses=ERROR_RESPONSES)
    app.include_router(notifications.router, responses=ERROR_RESPONSES)
    app.include_router(maverick.router, responses=ERROR_RESPONSES)
    app.include_router(codec.router, responses=ERROR_RESPONSES)
    app.include_router(reports.router, responses=ERROR_RESPONSES)
    return app
