from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

router = APIRouter(tags=["health"])


@router.get("/api/health")
async def health(request: Request) -> JSONResponse:
    """200 when PostgreSQL and Temporal both answer; 503 naming the failing part otherwise."""
    state = request.app.state
    body = {"status": "ok", "database": "ok", "temporal": "ok"}
    try:
        async with state.sessions() as session:
            await asyncio.wait_for(session.execute(text("SELECT 1")), timeout=3)
    except Exception as error:  # noqa: BLE001 - any failure means "not healthy"
        body["database"] = f"error: {type(error).__name__}"
    try:
        await asyncio.wait_for(state.temporal.service_client.check_health(), timeout=3)
    except Exception as error:  # noqa: BLE001
        body["temporal"] = f"error: {type(error).__name__}"
    healthy = body["database"] == "ok" and body["temporal"] == "ok"
    if not healthy:
        body["status"] = "unavailable"
    return JSONResponse(body, status_code=200 if healthy else 503)
