"""Workflow payloads are encrypted at rest in Temporal, and readable to those allowed through the
codec endpoint the Temporal UI and CLI use."""

from __future__ import annotations

import base64
import json

import httpx
from asgi_lifespan import LifespanManager
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from pulse.api.app import create_app
from pulse.codec import ENCODING, EncryptionCodec, new_key_ring
from pulse.config import Settings
from pulse.db import SessionFactory
from pulse.temporal import connect
from tests.conftest import AccountContext

SECRET_SUBJECT = "Chargeback for card 4111-SECRET-SUBJECT"
SECRET_TEXT = "customer said SECRET-COMMENT-TEXT"
SECRET_EMAIL = "secret.requester@merchant.example"


def protobuf_json(payloads: list[Payload]) -> dict:
    return {"payloads": [{"metadata": {key: base64.b64encode(value).decode() for key, value in p.metadata.items()},
                          "data": base64.b64encode(p.data).decode()} for p in payloads]}


async def raw_history_payloads(temporal_address: str, workflow_id: str) -> tuple[bytes, list[Payload]]:
    """The history as the server stores it (a client without the codec): its bytes and payloads."""
    raw = await connect(temporal_address)
    history = await raw.get_workflow_handle(workflow_id).fetch_history()
    payloads: list[Payload] = []

    def collect(message) -> None:  # noqa: ANN001 - any protobuf message
        if isinstance(message, Payload):
            payloads.append(message)
            return
        for _, value in message.ListFields():
            if hasattr(value, "ListFields"):
                collect(value)
            elif hasattr(value, "values") and callable(value.values):  # a map field
                for item in value.values():
                    if hasattr(item, "ListFields"):
                        collect(item)
            elif isinstance(value, (str, bytes, int, float, bool)):
                continue
            else:
                for item in value:  # a repeated field
                    if hasattr(item, "ListFields"):
                        collect(item)

    for event in history.events:
        collect(event)
    return b"".join(event.SerializeToString() for event in history.events), payloads


async def test_a_tickets_history_holds_no_plaintext_and_the_codec_endpoint_reads_it(
    account: AccountContext, temporal_address: str
) -> None:
    ticket = await account.create_ticket(subject=SECRET_SUBJECT, requesterEmail=SECRET_EMAIL,
                                         description="SECRET-DESCRIPTION")
    comment = await account.post(f"/api/tickets/{ticket['id']}/comments", json={"body": SECRET_TEXT})
    assert comment.status_code == 201, comment.text

    stored, payloads = await raw_history_payloads(temporal_address, f"ticket-{account.account_id}-{ticket['id']}")
    for secret in (SECRET_SUBJECT, SECRET_TEXT, SECRET_EMAIL, "SECRET-DESCRIPTION", "SECRET"):
        assert secret.encode() not in stored, f"{secret!r} is in the history in plaintext"
    # Left readable by design: search attributes (typed, for visibility queries) and the SDK's own
    # marker metadata: local activities' (sequence, attempt, activity type) and patches' (the id).
    plain = [(dict(p.metadata), p.data[:60]) for p in payloads if p.metadata["encoding"] != ENCODING
             and "type" not in p.metadata and not p.data.startswith((b'{"seq":', b'{"id":'))]
    assert not plain, plain
    assert sum(p.metadata["encoding"] == ENCODING for p in payloads) >= 4  # input, create, comment, results

    decoded = await account.post("/codec/decode", json=protobuf_json(payloads),
                                 headers={"X-Namespace": "default"})
    assert decoded.status_code == 200, decoded.text
    plain = b"".join(base64.b64decode(p.get("data", "")) for p in decoded.json()["payloads"])  # empty: no "data"
    assert SECRET_SUBJECT.encode() in plain and SECRET_TEXT.encode() in plain


async def test_the_codec_endpoint_needs_a_reading_token_or_the_trusted_ui_origin(
    account: AccountContext, settings: Settings, sessions: SessionFactory, temporal_client: Client
) -> None:
    body = protobuf_json([Payload(metadata={"encoding": b"json/plain"}, data=b'"hello"')])
    assert (await account.http.post("/codec/decode", json=body)).status_code == 401
    assert (await account.post("/codec/decode", json=body, token=account.tokens["settings"])).status_code == 403
    assert (await account.post("/codec/decode", json=body, token=account.tokens["read"])).status_code == 200
    bad = await account.post("/codec/decode", json={"payloads": "not a list"})
    assert bad.status_code == 422

    ui = "http://127.0.0.1:8233"
    trusting = create_app(Settings(database_url=settings.database_url, temporal_address=settings.temporal_address,
                                   codec_trusted_origin=ui), sessions=sessions, temporal=temporal_client)
    async with LifespanManager(trusting):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=trusting), base_url="http://pulse.test") as http:
            preflight = await http.options("/codec/decode", headers={"Origin": ui,
                                                                     "Access-Control-Request-Method": "POST"})
            assert preflight.headers["access-control-allow-origin"] == ui
            from_ui = await http.post("/codec/decode", json=body, headers={"Origin": ui})
            assert from_ui.status_code == 200 and from_ui.headers["access-control-allow-origin"] == ui
            assert json.loads(base64.b64decode(from_ui.json()["payloads"][0]["data"])) == "hello"
            elsewhere = await http.post("/codec/decode", json=body, headers={"Origin": "http://evil.example"})
            assert elsewhere.status_code == 401


async def test_a_rotated_key_ring_encrypts_with_the_new_key_and_still_reads_the_old_one() -> None:
    old_ring = new_key_ring("k1")
    old = EncryptionCodec.from_setting(old_ring)
    rotated = EncryptionCodec.from_setting(new_key_ring("k2") + "," + old_ring)
    written_before = await old.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'"before"')])
    assert (await rotated.decode(written_before))[0].data == b'"before"'
    written_after = await rotated.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'"after"')])
    assert written_after[0].metadata["encryption-key-id"] == b"k2"
    plaintext_from_before_encryption = Payload(metadata={"encoding": b"json/plain"}, data=b'"plain"')
    assert (await rotated.decode([plaintext_from_before_encryption]))[0] == plaintext_from_before_encryption
