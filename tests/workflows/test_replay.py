"""Workflow code changes must replay the histories of tickets already running.

``tests/histories/*.json`` are histories saved from real runs of released workflow code (see
``test_record_histories`` below). Every change to ``TicketWorkflow`` that would make them fail
to replay has to go behind ``workflow.patched``."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from pulse.codec import codec_from, data_converter
from pulse.workflows.bulk import BulkOperationWorkflow
from pulse.workflows.ticket import TicketWorkflow
from tests.conftest import TEST_PAYLOAD_KEYS, AccountContext

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
# Recordings are kept: each generation of the workflow code must go on replaying them all.
# v3: the ticket engine (agenda, pipeline, outbox, gateway). Earlier recordings were of pre-release
# code and were dropped with it (docs/decisions.md). v4: write sequences, escalations on the agenda.
# v5: the agenda's timer kept across writes; payloads encrypted with the suite's test key (v3, v4 are plain).
RECORDING = "v5"


def saved_histories() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


@pytest.mark.parametrize("path", saved_histories(), ids=lambda path: path.stem)
async def test_saved_ticket_histories_replay_on_the_current_workflow_code(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=[TicketWorkflow, BulkOperationWorkflow],
                        data_converter=data_converter(codec_from(TEST_PAYLOAD_KEYS)))
    await replayer.replay_workflow(history)


def test_there_are_saved_histories_to_replay() -> None:
    assert len(saved_histories()) >= 2


@pytest.mark.skipif(not os.environ.get("PULSE_RECORD_HISTORIES"), reason="records histories on demand")
async def test_record_histories(account: AccountContext, temporal_client: Client) -> None:
    """``PULSE_RECORD_HISTORIES=1 pytest tests/workflows/test_replay.py -k record`` saves the
    histories of a full ticket life and of a ticket still open (incl. SLA pause)."""
    full = await account.create_ticket(priority="high", tags=["billing"])
    ref = f"/api/tickets/{full['id']}"
    for step in (
        ("patch", {"priority": "urgent", "customFields": {"plan": "gold"}}),
        ("comment", {"body": "Looking into it", "isInternal": False, "mentions": [account.admin_user_id]}),
        ("comment", {"body": "Internal: check logs", "isInternal": True}),
        ("patch", {"status": "waiting_customer"}),
        ("comment", {"body": "Here is the screenshot", "authorType": "customer"}),
        ("pause", {"reason": "waiting on vendor"}),
        ("resume", {}),
        ("patch", {"status": "resolved"}),
        ("patch", {"status": "in_progress"}),
        ("patch", {"status": "closed"}),
    ):
        kind, body = step
        if kind == "patch":
            response = await account.patch(ref, json=body)
        elif kind == "comment":
            response = await account.post(f"{ref}/comments", json=body)
        else:
            response = await account.post(f"{ref}/sla/{kind}", json=body)
        assert response.status_code in (200, 201), response.text

    rule = await account.post("/api/tickets/escalation-rules", json={
        "name": "Low waits 0 min", "priority": "low", "when": {"afterMinutes": 0}, "escalateTo": "specific_user",
        "escalateToUserId": account.admin_user_id, "notificationChannels": ["in_app"], "addInternalNote": True})
    assert rule.status_code == 201, rule.text
    still_open = await account.create_ticket(priority="low")
    await asyncio.sleep(1)  # its escalation fires
    await account.post(f"/api/tickets/{still_open['id']}/comments", json={"body": "On it"})
    await account.post(f"/api/tickets/{still_open['id']}/sla/pause", json={"reason": "customer on holiday"})

    await asyncio.sleep(1)
    HISTORIES.mkdir(exist_ok=True)
    for name, ticket in (("ticket-full-life", full), ("ticket-open-paused", still_open)):
        handle = temporal_client.get_workflow_handle(f"ticket-{account.account_id}-{ticket['id']}")
        history = await handle.fetch_history()
        (HISTORIES / f"{name}-{RECORDING}.json").write_text(json.dumps(json.loads(history.to_json()), indent=1))
