"""What operators see: Prometheus metrics on /metrics, JSON log lines per request, and the probes
that tell a live process from a ready one."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import select
from temporalio.client import Client

from pulse import logs
from pulse.api.app import create_app
from pulse.config import Settings
from pulse.db import SessionFactory
from pulse.models import NotificationDelivery, TicketEvent
from tests.conftest import AccountContext


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one series in Prometheus' text format (labels in any order)."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[len(name):line.rindex("}") + 1]))
        if all(found.get(key) == value for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_metrics_count_requests_by_route_template_not_raw_path(account: AccountContext) -> None:
    ticket = await account.create_ticket()
    before = (await account.http.get("/metrics")).text
    for _ in range(3):
        assert (await account.get(f"/api/tickets/{ticket['id']}")).status_code == 200
    assert (await account.get("/api/tickets/987654321")).status_code == 404

    response = await account.http.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    route = "/api/tickets/{ticket_ref}"
    ok_before = sample(before, "pulse_http_requests_total", method="GET", route=route, status="200") or 0
    assert sample(text, "pulse_http_requests_total", method="GET", route=route, status="200") == ok_before + 3
    assert sample(text, "pulse_http_requests_total", method="GET", route=route, status="404") >= 1
    assert sample(text, "pulse_http_request_duration_seconds_count", method="GET", route=route, status="200") >= 3
    assert f"/api/tickets/{ticket['id']}\"" not in text and "987654321" not in text


async def test_metrics_show_open_tickets_by_sla_status_and_failing_deliveries(
        account: AccountContext, sessions: SessionFactory) -> None:
    ticket = await account.create_ticket(priority="urgent")
    await account.create_ticket(priority="low", status="waiting_customer")
    async with sessions() as session, session.begin():
        event_id = await session.scalar(select(TicketEvent.id).where(TicketEvent.ticket_id == ticket["id"]).limit(1))
        assert event_id is not None
        session.add(NotificationDelivery(account_id=account.account_id, ticket_id=ticket["id"], event_id=event_id,
                                         channel="slack", target="#support", status="failed", attempts=3,
                                         last_error="502 from Slack"))
    account.http._transport.app.state.metrics.gauges.refreshed_at = 0.0  # type: ignore[attr-defined]

    text = (await account.http.get("/metrics")).text
    mine = str(account.account_id)
    assert sample(text, "pulse_open_tickets", account_id=mine, sla_status="on_time") == 1
    assert sample(text, "pulse_open_tickets", account_id=mine, sla_status="paused") == 1
    assert sample(text, "pulse_notification_deliveries_failing", account_id=mine, channel="slack",
                  retryable="true") == 1


async def test_metrics_is_not_an_api_operation_and_needs_no_token(http: httpx.AsyncClient) -> None:
    assert "/metrics" not in (await http.get("/openapi.json")).json()["paths"]
    assert (await http.get("/metrics")).status_code == 200


async def test_a_requests_log_lines_carry_its_request_id_and_account_and_never_the_token(
        account: AccountContext) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("pulse")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    request_id = f"test-{uuid.uuid4().hex}"
    try:
        ticket = await account.create_ticket()
        response = await account.patch(f"/api/tickets/{ticket['id']}", json={"subject": "Still broken"},
                                       headers={"X-Request-ID": request_id})
        # A line that quotes a credential (as a careless one would) still shows no secret.
        logging.getLogger("pulse.test").warning("retrying with Authorization: Bearer %s", account.admin_token)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert response.status_code == 200 and response.headers["x-request-id"] == request_id
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [line for line in lines if line.get("request_id") == request_id]
    assert mine, lines
    for line in mine:
        assert line["account_id"] == account.account_id
        assert line["ticket_id"] == ticket["id"]
        assert line["workflow_id"] == f"ticket-{account.account_id}-{ticket['id']}"
    access = [line for line in mine if line["logger"] == "pulse.api.request"]
    assert access and access[0]["route"] == "/api/tickets/{ticket_ref}" and access[0]["status"] == 200
    assert account.admin_token not in stream.getvalue()
    assert "[redacted]" in lines[-1]["message"]


def test_log_lines_scrub_tokens_keys_and_secret_fields() -> None:
    record = logging.LogRecord("pulse.x", logging.INFO, __file__, 1, "got %s and key %s", None, None)
    record.args = ("pulse_abcdefghijklmnop", "test1:cHVsc2UtdGVzdC1wYXlsb2FkLWtleS0zMi1ieXRlcyE=")
    record.webhook_secret = "s3cr3t"
    record.config = {"apiKey": "k-123", "baseUrl": "https://maverick.example"}
    line = logs.JsonFormatter().format(record)
    for secret in ("pulse_abcdefghijklmnop", "cHVsc2UtdGVzdC1wYXlsb2FkLWtleS0zMi1ieXRlcyE=", "s3cr3t", "k-123"):
        assert secret not in line
    assert json.loads(line)["config"]["baseUrl"] == "https://maverick.example"


async def test_liveness_answers_while_readiness_waits_for_a_worker_on_the_task_queue(
        settings: Settings, sessions: SessionFactory, temporal_client: Client, http: httpx.AsyncClient) -> None:
    ready = await http.get("/api/health/ready")  # the suite's worker polls the suite's queue
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ok", "database": "ok", "temporal": "ok", "worker": "ok"}

    unattended = settings.model_copy(update={"task_queue": f"nobody-polls-{uuid.uuid4().hex[:8]}"})
    app = create_app(unattended, sessions=sessions, temporal=temporal_client)
    async with LifespanManager(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pulse.test") as client:
            live = await client.get("/api/health/live")
            not_ready = await client.get("/api/health/ready")
            health = await client.get("/api/health")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    assert not_ready.status_code == 503
    body = not_ready.json()
    assert body["status"] == "unavailable" and body["database"] == "ok" and body["temporal"] == "ok"
    assert body["worker"].startswith("error: no worker polled")
    assert health.status_code == 200  # /api/health keeps its meaning: PostgreSQL and Temporal
