"""Notifications as users and receivers see them: a real SMTP server (aiosmtpd), a real HTTP
receiver for the SMS gateway and Slack, live SSE streams from API processes served by uvicorn,
retries through a real Temporal activity. Outbox events are written directly (the engine wires
them); ``deliver`` is what the ``notify:<channel>`` consumer calls."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import json
import ssl
import subprocess
import time
import uuid
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Callable
from urllib.parse import parse_qs

import aiosmtplib
import httpx
import psycopg
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from pulse.api.app import create_app
from pulse.config import Settings
from pulse.db import SessionFactory
from pulse.devstack import free_port
from pulse.models import TicketEvent
from pulse.notifications.delivery import DeliveryIncomplete, NotificationDelivery, deliver
from pulse.notifications.settings import EmailSettings
from pulse.notifications.stream import LISTENER_NAME
from pulse.services.auth import issue_token
from tests.conftest import AccountContext

# The plain-text SMTP receivers require AUTH without TLS on purpose (the STARTTLS test requires both).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

# -- receivers ----------------------------------------------------------------------------------------


class SmtpInbox:
    """An aiosmtpd handler: keeps every message; may refuse recipients (``refuse``: address →
    list of replies to give, one per attempt, before accepting)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.logins: list[tuple[str, str]] = []
        self.refuse: dict[str, list[str]] = {}

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        replies = self.refuse.get(address)
        if replies:
            return replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append({"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
                              "message": parsed, "tls": session.ssl is not None})
        return "250 Message accepted"

    def authenticator(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((login, password))
        return AuthResult(success=(login, password) == ("pulse", "smtp-secret-2468"))

    def to(self, address: str) -> list[Any]:
        return [m["message"] for m in self.messages if m["rcpt_tos"] == [address]]


@asynccontextmanager
async def smtp_server(**options: Any) -> AsyncIterator[tuple[SmtpInbox, int]]:
    inbox = SmtpInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticator,
                            auth_required=True, **{"auth_require_tls": False, **options})
    await asyncio.to_thread(controller.start)
    try:
        yield inbox, port
    finally:
        await asyncio.to_thread(controller.stop)


class HttpSink:
    """A raw ASGI receiver for the SMS gateway and Slack webhooks: keeps every request; answers
    500 to the first ``fail_first[path]`` requests of a path."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_first: dict[str, int] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        failing = self.fail_first.get(path, 0) > 0
        if failing:
            self.fail_first[path] -= 1
        self.requests.append({"method": scope["method"], "path": path, "body": body, "failed": failing,
                              "headers": {k.decode().lower(): v.decode() for k, v in scope["headers"]}})
        status, text = (500, b"upstream trouble") if failing else (200, b"ok")
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": text})

    def to(self, path: str, *, accepted: bool = True) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path and (not accepted or not r["failed"])]


@asynccontextmanager
async def serving(app: Any, *, lifespan: str = "off") -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on a free port in this event loop."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan=lifespan, timeout_graceful_shutdown=5))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def http_sink() -> AsyncIterator[tuple[HttpSink, str]]:
    sink = HttpSink()
    async with serving(sink) as base_url:
        yield sink, base_url


# -- helpers ------------------------------------------------------------------------------------------


def rows(database_url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url, autocommit=True) as db:
        return db.execute(query, params).fetchall()


async def eventually(check: Callable[[], Any], timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def notify_event(sessions: SessionFactory, account: AccountContext, ticket: dict[str, Any],
                       **notify: Any) -> int:
    """An outbox event asking for notifications, as the engine writes it."""
    payload = {"kind": "escalation", "reason": "escalation:7", "channels": ["email", "sms", "slack", "in_app"],
               "userIds": [], "teamId": None, "emails": [], "subject": None, "text": "Please take a look", **notify}
    async with sessions() as session, session.begin():
        event = TicketEvent(account_id=account.account_id, ticket_id=ticket["id"], event_type="escalated",
                            data={"notify": payload, "ticketNumber": ticket["ticketNumber"]},
                            occurred_at=datetime.now(timezone.utc))
        session.add(event)
        await session.flush()
        return event.id


async def add_user(account: AccountContext, **fields: Any) -> dict[str, Any]:
    response = await account.post("/api/users", json={"name": f"Agent {uuid.uuid4().hex[:6]}", **fields})
    assert response.status_code == 201, response.text
    return response.json()


async def user_token(sessions: SessionFactory, account: AccountContext, user_id: int) -> str:
    async with sessions() as session, session.begin():
        _, plain = await issue_token(session, account_id=account.account_id, user_id=user_id, name="agent",
                                     permissions=["readSupport", "writeSupport"])
    return plain


async def configure(account: AccountContext, **channels: Any) -> dict[str, Any]:
    response = await account.request("PUT", "/api/settings/notifications", json=channels)
    assert response.status_code == 200, response.text
    return response.json()


def email_settings(port: int, **overrides: Any) -> dict[str, Any]:
    return {"smtpHost": "127.0.0.1", "smtpPort": port, "starttls": False, "username": "pulse",
            "password": "smtp-secret-2468", "fromAddress": "support@pulse.example", **overrides}


def deliveries(database_url: str, event_id: int, channel: str) -> dict[str, tuple[str, int, str | None]]:
    found = rows(database_url, "SELECT target, status, attempts, last_error FROM notification_deliveries "
                               "WHERE event_id = %s AND channel = %s", event_id, channel)
    return {target: (status, attempts, error) for target, status, attempts, error in found}


# -- settings -----------------------------------------------------------------------------------------


async def test_notification_settings_never_show_secrets_and_a_put_without_them_keeps_them(
    account: AccountContext, database_url: str
) -> None:
    shown = await configure(
        account,
        email=email_settings(2525, password="correct-horse-battery"),
        sms={"gatewayUrl": "https://sms.example", "accountSid": "AC42", "authToken": "tok-abcdefgh-9876",
             "fromNumber": "+15550001"},
        slack={"webhookUrl": "https://hooks.slack.example/services/T0/B0/sekret-wxyz"},
    )
    assert shown["email"]["password"] == "****tery"
    assert shown["sms"]["authToken"] == "****9876"
    assert shown["slack"]["webhookUrl"] == "****wxyz"
    assert shown["email"]["smtpHost"] == "127.0.0.1" and shown["sms"]["accountSid"] == "AC42"

    fetched = await account.get("/api/settings/notifications")
    assert fetched.status_code == 200
    for secret in ("correct-horse-battery", "tok-abcdefgh-9876", "sekret-wxyz"):
        assert secret not in fetched.text
    assert fetched.json()["slack"] == {"webhookUrl": "****wxyz"}

    # A PUT that leaves the secrets out (or sends back what GET showed) keeps them.
    changed = await configure(account, email={**email_settings(2626), "password": "****tery"},
                              sms={"gatewayUrl": "https://sms2.example", "accountSid": "AC42", "fromNumber": "+1555"})
    assert changed["email"]["smtpPort"] == 2626 and changed["email"]["password"] == "****tery"
    changed = await configure(account, email={k: v for k, v in email_settings(2727).items() if k != "password"})
    assert changed["email"]["smtpPort"] == 2727 and changed["email"]["password"] == "****tery"
    assert changed["sms"]["authToken"] == "****9876" and changed["sms"]["gatewayUrl"] == "https://sms2.example"
    assert changed["slack"]["webhookUrl"] == "****wxyz"  # a channel left out keeps its settings
    stored = rows(database_url, "SELECT sms->>'auth_token', slack->>'webhook_url', email->>'password' "
                                "FROM notification_settings WHERE account_id = %s", account.account_id)
    assert stored == [("tok-abcdefgh-9876", "https://hooks.slack.example/services/T0/B0/sekret-wxyz",
                       "correct-horse-battery")]

    # null removes a channel; a bad value is a 422 that does not echo it.
    assert (await configure(account, slack=None))["slack"] is None
    bad = await account.request("PUT", "/api/settings/notifications", json={"slack": {"webhookUrl": "not a url sekret"}})
    assert bad.status_code == 422 and "sekret" not in bad.text
    assert bad.json()["details"][0]["field"] == "slack.webhookUrl"
    missing = await account.request("PUT", "/api/settings/notifications", json={"slack": {}})
    assert missing.status_code == 422 and missing.json()["details"][0]["field"] == "slack.webhookUrl"
    unknown = await account.request("PUT", "/api/settings/notifications", json={"sms": {"apiKey": "x"}})
    assert unknown.status_code == 422


async def test_notification_settings_need_manage_settings_and_stay_in_their_account(
    account: AccountContext, other_account: AccountContext
) -> None:
    await configure(account, slack={"webhookUrl": "https://hooks.slack.example/acme-secret"})
    for token in ("read", "write"):
        assert (await account.get("/api/settings/notifications", token=account.tokens[token])).status_code == 403
        put = await account.request("PUT", "/api/settings/notifications", token=account.tokens[token], json={})
        assert put.status_code == 403
    assert (await account.get("/api/settings/notifications", token=account.tokens["settings"])).status_code == 200
    assert (await other_account.get("/api/settings/notifications")).json()["slack"] is None


async def test_a_stale_settings_version_is_a_conflict(account: AccountContext) -> None:
    first = await configure(account, slack={"webhookUrl": "https://hooks.slack.example/one-1234"})
    await configure(account, slack={"webhookUrl": "https://hooks.slack.example/two-5678"})
    stale = await account.request("PUT", "/api/settings/notifications", headers={"If-Match": str(first["version"])},
                                  json={"slack": None})
    assert stale.status_code == 409


# -- email --------------------------------------------------------------------------------------------


async def test_email_goes_to_each_recipient_once_over_smtp_with_the_ticket_number_in_the_subject(
    account: AccountContext, sessions: SessionFactory, database_url: str
) -> None:
    async with smtp_server() as (inbox, port):
        await configure(account, email=email_settings(port))
        dana = await add_user(account, email="dana@acme.example")
        lee = await add_user(account, email="lee@acme.example")
        ticket = await account.create_ticket(subject="Checkout fails", requesterEmail="cara@customer.example")
        event_id = await notify_event(sessions, account, ticket, userIds=[dana["id"], lee["id"]],
                                      emails=["cara@customer.example"], subject="Ticket escalated",
                                      text="Level 2 reached: please take a look.")

        report = await deliver(sessions, event_id, "email")
        assert sorted(report.sent) == ["cara@customer.example", "dana@acme.example", "lee@acme.example"]
        assert len(inbox.messages) == 3
        assert inbox.logins == [("pulse", "smtp-secret-2468")]  # one connection for the three
        for address in ("dana@acme.example", "lee@acme.example", "cara@customer.example"):
            (message,) = inbox.to(address)
            assert message["From"] == "support@pulse.example"
            assert message["To"] == address
            assert ticket["ticketNumber"] in message["Subject"] and "Ticket escalated" in message["Subject"]
            assert message.get_content_type() == "text/plain"
            assert "Level 2 reached: please take a look." in message.get_content()

        # Retried (at-least-once): nothing is sent twice.
        again = await deliver(sessions, event_id, "email")
        assert again.sent == [] and len(again.already_sent) == 3
        assert len(inbox.messages) == 3
        recorded = deliveries(database_url, event_id, "email")
        assert {status for status, _, _ in recorded.values()} == {"sent"}
        assert {attempts for _, attempts, _ in recorded.values()} == {1}


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


async def test_email_upgrades_to_starttls_before_logging_in(
    account: AccountContext, sessions: SessionFactory, tmp_path: Path
) -> None:
    cert, key = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=str(cert))

    def smtp_trusting_the_test_ca(settings: EmailSettings) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(hostname=settings.smtp_host, port=settings.smtp_port, start_tls=settings.starttls,
                               tls_context=client_tls, timeout=10)

    # The server refuses AUTH and MAIL before STARTTLS: only a client that upgrades gets through.
    async with smtp_server(tls_context=server_tls, require_starttls=True, auth_require_tls=True) as (inbox, port):
        await configure(account, email=email_settings(port, starttls=True))
        ticket = await account.create_ticket(subject="TLS please")
        event_id = await notify_event(sessions, account, ticket, emails=["ops@acme.example"], channels=["email"])
        delivery = NotificationDelivery(sessions, smtp_factory=smtp_trusting_the_test_ca)
        report = await delivery.deliver(event_id, "email")
        await delivery.aclose()
    assert report.sent == ["ops@acme.example"]
    assert inbox.messages[0]["tls"] is True and inbox.logins == [("pulse", "smtp-secret-2468")]


async def test_only_the_recipients_that_failed_are_tried_again(
    account: AccountContext, sessions: SessionFactory, database_url: str
) -> None:
    async with smtp_server() as (inbox, port):
        inbox.refuse["busy@acme.example"] = ["451 4.3.0 mailbox busy, try later"]
        inbox.refuse["nobody@acme.example"] = ["550 5.1.1 no such user"] * 5
        await configure(account, email=email_settings(port))
        ticket = await account.create_ticket(subject="Partial failure")
        event_id = await notify_event(sessions, account, ticket, channels=["email"],
                                      emails=["ok@acme.example", "busy@acme.example", "nobody@acme.example"])

        with pytest.raises(DeliveryIncomplete):
            await deliver(sessions, event_id, "email")
        recorded = deliveries(database_url, event_id, "email")
        assert recorded["ok@acme.example"][:2] == ("sent", 1)
        assert recorded["busy@acme.example"][:2] == ("failed", 1) and "451" in recorded["busy@acme.example"][2]
        assert recorded["nobody@acme.example"][:2] == ("failed", 1) and "550" in recorded["nobody@acme.example"][2]

        report = await deliver(sessions, event_id, "email")  # the retry: only busy@ is tried again
        assert report.sent == ["busy@acme.example"] and report.failed == ["nobody@acme.example"]
        recorded = deliveries(database_url, event_id, "email")
        assert recorded["busy@acme.example"][:2] == ("sent", 2)
        assert recorded["ok@acme.example"][:2] == ("sent", 1)
        assert recorded["nobody@acme.example"][:2] == ("failed", 1)  # refused for good: not retried
        assert len(inbox.to("ok@acme.example")) == 1 and len(inbox.to("busy@acme.example")) == 1


# -- sms and slack ------------------------------------------------------------------------------------


async def test_sms_is_a_twilio_compatible_form_post_with_basic_auth(
    account: AccountContext, sessions: SessionFactory, database_url: str
) -> None:
    async with http_sink() as (sink, base_url):
        await configure(account, sms={"gatewayUrl": f"{base_url}/gw/", "accountSid": "AC123",
                                      "authToken": "sms-token-5555", "fromNumber": "+15550100"})
        agent = await add_user(account, phone="+15550111")
        no_phone = await add_user(account, email="x@acme.example")
        ticket = await account.create_ticket(subject="Outage")
        event_id = await notify_event(sessions, account, ticket, userIds=[agent["id"], no_phone["id"]],
                                      channels=["sms"], text="x" * 3000)
        report = await deliver(sessions, event_id, "sms")
    assert report.sent == ["+15550111"]
    (request,) = sink.requests
    assert request["method"] == "POST" and request["path"] == "/gw/2010-04-01/Accounts/AC123/Messages.json"
    assert request["headers"]["authorization"] == "Basic " + base64.b64encode(b"AC123:sms-token-5555").decode()
    assert request["headers"]["content-type"] == "application/x-www-form-urlencoded"
    form = parse_qs(request["body"].decode())
    assert form["To"] == ["+15550111"] and form["From"] == ["+15550100"]
    assert form["Body"][0].startswith(ticket["ticketNumber"]) and len(form["Body"][0]) == 1600
    assert deliveries(database_url, event_id, "sms") == {"+15550111": ("sent", 1, None)}


async def test_slack_posts_text_and_blocks_to_the_team_webhook_else_the_account_webhook(
    account: AccountContext, sessions: SessionFactory, database_url: str
) -> None:
    async with http_sink() as (sink, base_url):
        await configure(account, slack={"webhookUrl": f"{base_url}/hooks/account-secret"})
        team = (await account.post("/api/teams", json={"name": f"Tier 2 {uuid.uuid4().hex[:6]}",
                                                        "slackWebhookUrl": f"{base_url}/hooks/team-secret"})).json()
        plain_team = (await account.post("/api/teams", json={"name": f"Tier 3 {uuid.uuid4().hex[:6]}"})).json()
        ticket = await account.create_ticket(subject="Payments <down> & out")
        to_team = await notify_event(sessions, account, ticket, channels=["slack"], teamId=team["id"])
        to_account = await notify_event(sessions, account, ticket, channels=["slack"], teamId=plain_team["id"])
        assert (await deliver(sessions, to_team, "slack")).sent == [f"team:{team['id']}"]
        assert (await deliver(sessions, to_account, "slack")).sent == ["account"]
    assert [r["path"] for r in sink.requests] == ["/hooks/team-secret", "/hooks/account-secret"]
    payload = json.loads(sink.requests[0]["body"])
    assert sink.requests[0]["headers"]["content-type"] == "application/json"
    assert ticket["ticketNumber"] in payload["text"] and "Payments &lt;down&gt; &amp; out" in payload["text"]
    assert isinstance(payload["blocks"], list) and payload["blocks"][0]["type"] == "section"
    assert ticket["ticketNumber"] in payload["blocks"][0]["text"]["text"]
    # The webhook URL is a secret: the delivery record names the team or the account instead.
    listed = await account.get("/api/notifications/deliveries", params={"ticketId": ticket["id"], "channel": "slack"})
    assert "secret" not in listed.text
    assert {d["target"] for d in listed.json()["data"]} == {f"team:{team['id']}", "account"}


async def test_a_channel_without_settings_is_skipped_with_a_reason(
    account: AccountContext, sessions: SessionFactory
) -> None:
    agent = await add_user(account, email="a@acme.example", phone="+1555")
    ticket = await account.create_ticket(subject="Nobody configured anything")
    event_id = await notify_event(sessions, account, ticket, userIds=[agent["id"]],
                                  channels=["email", "sms", "slack"])
    for channel in ("email", "sms", "slack"):
        report = await deliver(sessions, event_id, channel)  # no exception: nothing to retry
        assert report.sent == [] and len(report.skipped) == 1
    listed = (await account.get("/api/notifications/deliveries", params={"ticketId": ticket["id"]})).json()
    assert {(d["channel"], d["target"], d["status"]) for d in listed["data"]} == {
        ("email", "a@acme.example", "skipped"), ("sms", "+1555", "skipped"), ("slack", "account", "skipped")}
    reasons = {d["channel"]: d["lastError"] for d in listed["data"]}
    assert "email" in reasons["email"] and "SMS" in reasons["sms"] and "Slack" in reasons["slack"]
    assert {d["reason"] for d in listed["data"]} == {"escalation:7"}


# -- retries ------------------------------------------------------------------------------------------


async def test_a_failing_receiver_gets_the_message_after_retries_while_other_channels_are_not_held_back(
    account: AccountContext, sessions: SessionFactory, database_url: str
) -> None:
    async with smtp_server() as (inbox, port), http_sink() as (sink, base_url):
        sink.fail_first["/hooks/flaky"] = 2
        await configure(account, email=email_settings(port),
                        sms={"gatewayUrl": base_url, "accountSid": "AC1", "authToken": "t0k3n-xyz", "fromNumber": "+1"},
                        slack={"webhookUrl": f"{base_url}/hooks/flaky"})
        agent = await add_user(account, email="agent@acme.example", phone="+1555000")
        ticket = await account.create_ticket(subject="Flaky Slack")
        event_id = await notify_event(sessions, account, ticket, userIds=[agent["id"]])

        with pytest.raises(DeliveryIncomplete):
            await deliver(sessions, event_id, "slack")
        status, attempts, error = deliveries(database_url, event_id, "slack")["account"]
        assert (status, attempts) == ("failed", 1) and "HTTP 500" in error and "flaky" not in error
        # The other channels are their own activities: delivered while Slack still fails.
        assert (await deliver(sessions, event_id, "email")).sent == ["agent@acme.example"]
        assert (await deliver(sessions, event_id, "sms")).sent == ["+1555000"]
        assert (await deliver(sessions, event_id, "in_app")).sent == [f"user:{agent['id']}"]
        with pytest.raises(DeliveryIncomplete):
            await deliver(sessions, event_id, "slack")
        assert (await deliver(sessions, event_id, "slack")).sent == ["account"]
        assert deliveries(database_url, event_id, "slack")["account"][:2] == ("sent", 3)
        assert len(sink.to("/hooks/flaky")) == 1 and len(sink.to("/hooks/flaky", accepted=False)) == 3
        assert len(inbox.messages) == 1 and len(sink.to("/2010-04-01/Accounts/AC1/Messages.json")) == 1


@activity.defn(name="notify_channel")
async def notify_channel(args: list[Any]) -> list[str]:
    sessions, event_id, channel = DELIVERY_DEPS["sessions"], int(args[0]), str(args[1])
    return (await deliver(sessions, event_id, channel)).sent


DELIVERY_DEPS: dict[str, Any] = {}


@workflow.defn(sandboxed=False)
class NotifyChannelsWorkflow:
    """What the ticket workflow does with a notifying event: one activity per channel, with
    retries and backoff, none waiting for another."""

    @workflow.run
    async def run(self, event_id: int) -> dict[str, list[str]]:
        channels = ["email", "slack"]
        results = await asyncio.gather(*[
            workflow.execute_activity(notify_channel, [event_id, channel], start_to_close_timeout=timedelta(seconds=30),
                                      retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=300),
                                                               backoff_coefficient=2.0, maximum_attempts=10))
            for channel in channels])
        return dict(zip(channels, results))


async def test_temporal_retries_a_failing_channel_with_backoff_and_delivers_it_once(
    account: AccountContext, sessions: SessionFactory, database_url: str, temporal_client: Client
) -> None:
    DELIVERY_DEPS["sessions"] = sessions
    task_queue = f"notify-test-{uuid.uuid4().hex[:8]}"
    client = temporal_client
    async with smtp_server() as (inbox, port), http_sink() as (sink, base_url):
        sink.fail_first["/hooks/flaky"] = 2
        await configure(account, email=email_settings(port), slack={"webhookUrl": f"{base_url}/hooks/flaky"})
        ticket = await account.create_ticket(subject="Retry me")
        event_id = await notify_event(sessions, account, ticket, channels=["email", "slack"],
                                      emails=["watcher@acme.example"])
        async with Worker(client, task_queue=task_queue, workflows=[NotifyChannelsWorkflow],
                          activities=[notify_channel], workflow_runner=UnsandboxedWorkflowRunner()):
            result = await client.execute_workflow(NotifyChannelsWorkflow.run, event_id,
                                                   id=f"notify-{event_id}-{uuid.uuid4().hex[:6]}",
                                                   task_queue=task_queue)
    assert result == {"email": ["watcher@acme.example"], "slack": ["account"]}
    assert len(inbox.messages) == 1 and len(sink.to("/hooks/flaky")) == 1
    sent_at = dict(rows(database_url, "SELECT channel, sent_at FROM notification_deliveries WHERE event_id = %s",
                        event_id))
    assert sent_at["email"] < sent_at["slack"]  # email did not wait for Slack's retries
    assert deliveries(database_url, event_id, "slack")["account"][:2] == ("sent", 3)


# -- in-app -------------------------------------------------------------------------------------------


async def test_in_app_notifications_are_listed_newest_first_and_can_be_marked_read(
    account: AccountContext, other_account: AccountContext, sessions: SessionFactory
) -> None:
    colleague = await add_user(account)
    ticket = await account.create_ticket(subject="Invoice wrong")
    first = await notify_event(sessions, account, ticket, channels=["in_app"], kind="assignment",
                               userIds=[account.admin_user_id, colleague["id"]], subject="Assigned to you",
                               text="You now own this ticket")
    second = await notify_event(sessions, account, ticket, channels=["in_app"], kind="escalation",
                                userIds=[account.admin_user_id])
    await deliver(sessions, first, "in_app")
    assert (await deliver(sessions, first, "in_app")).sent == []  # idempotent
    await deliver(sessions, second, "in_app")

    listed = (await account.get("/api/notifications")).json()
    assert listed["pagination"]["total"] == 2
    newest, oldest = listed["data"]
    assert newest["kind"] == "escalation" and oldest["kind"] == "assignment"
    assert oldest == {"id": oldest["id"], "ticketId": ticket["id"], "kind": "assignment",
                      "title": f"[{ticket['ticketNumber']}] Assigned to you", "body": "You now own this ticket",
                      "read": False, "createdAt": oldest["createdAt"]}
    assert ticket["ticketNumber"] in newest["title"]

    read = await account.post(f"/api/notifications/{oldest['id']}/read")
    assert read.status_code == 200 and read.json()["read"] is True
    assert (await account.post(f"/api/notifications/{oldest['id']}/read")).json()["read"] is True
    unread = (await account.get("/api/notifications", params={"unread": "true"})).json()
    assert [n["id"] for n in unread["data"]] == [newest["id"]]

    # Someone else's notification is not found, nor is it in another account.
    colleague_token = await user_token(sessions, account, colleague["id"])
    theirs = (await account.get("/api/notifications", token=colleague_token)).json()["data"]
    assert [n["kind"] for n in theirs] == ["assignment"]
    assert (await account.post(f"/api/notifications/{theirs[0]['id']}/read")).status_code == 404
    assert (await other_account.post(f"/api/notifications/{oldest['id']}/read")).status_code == 404
    assert (await other_account.get("/api/notifications")).json()["data"] == []
    assert (await account.get("/api/notifications", token=account.tokens["settings"])).status_code == 403


async def test_a_team_notification_reaches_each_team_member_in_app(
    account: AccountContext, sessions: SessionFactory
) -> None:
    members = [await add_user(account), await add_user(account)]
    team = (await account.post("/api/teams", json={"name": f"Billing {uuid.uuid4().hex[:6]}",
                                                    "memberIds": [m["id"] for m in members]})).json()
    ticket = await account.create_ticket(subject="Team ping")
    event_id = await notify_event(sessions, account, ticket, channels=["in_app"], teamId=team["id"])
    report = await deliver(sessions, event_id, "in_app")
    assert sorted(report.sent) == sorted(f"user:{m['id']}" for m in members)
    for member in members:
        token = await user_token(sessions, account, member["id"])
        assert len((await account.get("/api/notifications", token=token)).json()["data"]) == 1


class SseReader:
    """Reads one SSE stream in a task; parsed events land in ``events``."""

    def __init__(self, client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        self.events: list[dict[str, str]] = []
        self.connected = asyncio.Event()
        self.status: int | None = None
        self._task = asyncio.create_task(self._read(client, url, headers))

    async def _read(self, client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        async with client.stream("GET", url, headers=headers) as response:
            self.status = response.status_code
            self.content_type = response.headers.get("content-type", "")
            self.connected.set()
            event: dict[str, str] = {}
            async for line in response.aiter_lines():
                if not line:
                    if event:
                        self.events.append(event)
                    event = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(":")
                    event[name] = value.removeprefix(" ")

    async def started(self) -> "SseReader":
        await asyncio.wait_for(self.connected.wait(), 15)
        return self

    def notifications(self) -> list[dict[str, Any]]:
        return [json.loads(e["data"]) for e in self.events if e.get("event") == "notification"]

    async def close(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, httpx.HTTPError):
            pass


@asynccontextmanager
async def api_process(settings: Settings, sessions: SessionFactory, temporal_client: Client) -> AsyncIterator[str]:
    """An API process of its own (its own app, notification hub and LISTEN connection)."""
    async with serving(create_app(settings, sessions=sessions, temporal=temporal_client), lifespan="on") as url:
        yield url


async def test_every_api_process_streams_a_new_notification_live_to_its_own_subscribers(
    account: AccountContext, sessions: SessionFactory, settings: Settings, temporal_client: Client
) -> None:
    dana, lee = await add_user(account), await add_user(account)
    dana_token, lee_token = await user_token(sessions, account, dana["id"]), await user_token(sessions, account, lee["id"])
    ticket = await account.create_ticket(subject="Live")
    async with api_process(settings, sessions, temporal_client) as first, \
            api_process(settings, sessions, temporal_client) as second, \
            httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as client:
        readers = {name: await SseReader(client, f"{base}/api/notifications/stream",
                                         {"Authorization": f"Bearer {token}"}).started()
                   for name, base, token in (("dana@1", first, dana_token), ("dana@2", second, dana_token),
                                             ("lee@2", second, lee_token))}
        try:
            assert {r.status for r in readers.values()} == {200}
            assert readers["dana@1"].content_type.startswith("text/event-stream")
            to_dana = await notify_event(sessions, account, ticket, channels=["in_app"], kind="mention",
                                         userIds=[dana["id"]], subject="Dana, have a look")
            await deliver(sessions, to_dana, "in_app")
            assert await eventually(lambda: readers["dana@1"].notifications() and readers["dana@2"].notifications())
            (streamed,) = readers["dana@1"].notifications()
            assert readers["dana@2"].notifications() == [streamed]
            listed = (await account.get("/api/notifications", token=dana_token)).json()["data"]
            assert streamed == listed[0]
            assert readers["dana@1"].events[0]["event"] == "notification"
            assert readers["dana@1"].events[0]["id"] == str(streamed["id"])

            to_lee = await notify_event(sessions, account, ticket, channels=["in_app"], userIds=[lee["id"]])
            await deliver(sessions, to_lee, "in_app")
            assert await eventually(lambda: readers["lee@2"].notifications())
            assert [n["kind"] for n in readers["lee@2"].notifications()] == ["escalation"]  # not Dana's
            assert len(readers["dana@1"].notifications()) == 1
        finally:
            for reader in readers.values():
                await reader.close()


async def test_a_stream_resumed_with_last_event_id_first_sends_what_was_missed(
    account: AccountContext, sessions: SessionFactory, settings: Settings, temporal_client: Client
) -> None:
    ticket = await account.create_ticket(subject="Resume")
    for text in ("one", "two", "three"):
        event_id = await notify_event(sessions, account, ticket, channels=["in_app"], text=text,
                                      userIds=[account.admin_user_id])
        await deliver(sessions, event_id, "in_app")
    listed = (await account.get("/api/notifications")).json()["data"]
    ids = sorted(n["id"] for n in listed)
    async with api_process(settings, sessions, temporal_client) as base, \
            httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as client:
        reader = await SseReader(client, f"{base}/api/notifications/stream",
                                 {"Authorization": f"Bearer {account.admin_token}", "Last-Event-ID": str(ids[0])}).started()
        try:
            assert await eventually(lambda: len(reader.notifications()) >= 2)
            assert [n["body"] for n in reader.notifications()] == ["two", "three"]
            event_id = await notify_event(sessions, account, ticket, channels=["in_app"], text="four",
                                          userIds=[account.admin_user_id])
            await deliver(sessions, event_id, "in_app")
            assert await eventually(lambda: len(reader.notifications()) >= 3)
            assert [n["body"] for n in reader.notifications()] == ["two", "three", "four"]
        finally:
            await reader.close()


# -- deliveries API -----------------------------------------------------------------------------------


async def test_deliveries_are_listed_newest_first_with_filters_for_settings_managers_only(
    account: AccountContext, other_account: AccountContext, sessions: SessionFactory
) -> None:
    agent = await add_user(account, email="d@acme.example")
    ticket, other_ticket = await account.create_ticket(subject="A"), await account.create_ticket(subject="B")
    first = await notify_event(sessions, account, ticket, userIds=[agent["id"]], channels=["email", "in_app"])
    await notify_event(sessions, account, other_ticket, userIds=[agent["id"]], channels=["in_app"])
    await deliver(sessions, first, "email")
    await deliver(sessions, first, "in_app")

    listed = await account.get("/api/notifications/deliveries", params={"ticketId": ticket["id"]},
                               token=account.tokens["settings"])
    assert listed.status_code == 200
    body = listed.json()
    assert body["pagination"] == {"page": 1, "pageSize": 50, "total": 2, "totalPages": 1}
    assert [d["channel"] for d in body["data"]] == ["in_app", "email"]  # newest first
    in_app = body["data"][0]
    assert in_app == {"id": in_app["id"], "channel": "in_app", "target": f"user:{agent['id']}",
                      "ticketId": ticket["id"], "eventId": first, "reason": "escalation:7", "status": "sent",
                      "attempts": 1, "lastError": None, "createdAt": in_app["createdAt"], "sentAt": in_app["sentAt"]}
    skipped = (await account.get("/api/notifications/deliveries",
                                 params={"ticketId": ticket["id"], "status": "skipped", "channel": "email"})).json()
    assert [d["target"] for d in skipped["data"]] == ["d@acme.example"]
    assert (await account.get("/api/notifications/deliveries", params={"channel": "fax"})).status_code == 422
    assert (await account.get("/api/notifications/deliveries", token=account.tokens["write"])).status_code == 403
    assert (await other_account.get("/api/notifications/deliveries")).json()["data"] == []


async def test_a_stream_catches_up_after_its_process_lost_the_database_connection(
    account: AccountContext, sessions: SessionFactory, settings: Settings, temporal_client: Client, database_url: str
) -> None:
    ticket = await account.create_ticket(subject="Reconnect")
    async with api_process(settings, sessions, temporal_client) as base, \
            httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as client:
        reader = await SseReader(client, f"{base}/api/notifications/stream",
                                 {"Authorization": f"Bearer {account.admin_token}"}).started()
        try:
            # The listener's connection dies (a failover, a restart); a notification is committed meanwhile.
            killed = rows(database_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                        "WHERE application_name = %s AND datname = current_database()",
                          LISTENER_NAME)
            assert killed == [(True,)]
            event_id = await notify_event(sessions, account, ticket, channels=["in_app"], text="while away",
                                          userIds=[account.admin_user_id])
            await deliver(sessions, event_id, "in_app")
            assert await eventually(lambda: reader.notifications())
            assert [n["body"] for n in reader.notifications()] == ["while away"]
        finally:
            await reader.close()
