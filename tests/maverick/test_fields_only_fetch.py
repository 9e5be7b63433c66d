"""A webhook announcing a change of a ticket's own fields reads the ticket alone (not its comments
and documents): the change arrives, the remote version stays for the next pull to apply, and that
pull brings what was left unread — while an older read applied late changes no field."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client

from pulse.activities.maverick import MaverickSyncActivities
from pulse.config import Settings
from pulse.db import SessionFactory
from pulse.domain.maverick_sync import FIELDS_VERSION, FetchRequested, RemoteTicket, fields_only
from pulse.integrations.maverick.simulator import build, running_simulator
from pulse.integrations.maverick.wire import Author
from pulse.repositories.maverick_sync import MaverickLinkRepository
from pulse.secretbox import SecretBox
from tests.conftest import AccountContext
from tests.maverick.conftest import MAVERICK_TASK_QUEUE
from tests.maverick.test_inbound_content import comments_of
from tests.maverick.test_inbound_sync import connect, sync
from tests.maverick.test_webhook_sync import _has, eventually

SECRET = "whsec_fields_only_secret"


def test_only_field_events_make_a_fields_only_read() -> None:
    assert fields_only({"ticket.updated", "ticket.status_changed"})
    assert not fields_only({"ticket.updated", "comment.created"})
    assert not fields_only({"ticket.created"}) and not fields_only({"document.created"})
    assert not fields_only(set())  # nothing announced yet: read everything
    assert not fields_only({FetchRequested(event_id="evt_1").event_type})  # a signal without its type


async def test_a_field_change_webhook_leaves_comments_for_the_next_pull_and_a_late_older_read_changes_nothing(
        tenant: AccountContext, pulse_server: str, sessions: SessionFactory, temporal_client: Client,
        maverick_settings: Settings) -> None:
    sim = build("sim-fields-only-key")
    sim.send_webhooks_to(f"{pulse_server}/api/integrations/maverick/webhook/{tenant.account_id}", SECRET)

    async def link() -> Any:
        async with sessions() as session:
            return await MaverickLinkRepository(session).get(tenant.account_id, remote.id)

    async with running_simulator(sim) as maverick:
        await connect(tenant, maverick, webhookSecret=SECRET)
        state, sender = sim.state, sim.sender
        assert sender is not None
        remote = state.create_ticket(subject="Terminal offline", merchant_name="Luna Florist")
        ticket = await eventually(lambda: _has(tenant, remote.id))
        await eventually(lambda: _linked_at(link, 1))
        merchant = Author(type="merchant", name="Luna Florist")

        sim.faults.drop_webhooks = 1  # the comment's own event never comes
        state.add_comment(remote.id, body="Still offline today", internal=False, author=merchant)
        older = state.ticket(remote.id)  # version 2
        state.change_ticket(remote.id, {"subject": "Terminal offline (day 2)"}, changed_by=merchant)  # 3
        await sender.idle()

        changed = await eventually(lambda: _subject_is(tenant, ticket["id"], "Terminal offline (day 2)"))
        assert changed["id"] == ticket["id"]
        applied = await eventually(lambda: _fields_at(link, 3))
        assert applied.remote_version == 1  # left for the next pull: the comment was not read
        assert await comments_of(tenant, ticket["id"]) == []

        # A read of version 2 (e.g. a sync's page read before the change) applied late: no field goes back.
        assert maverick_settings.secrets_key is not None
        activities = MaverickSyncActivities(sessions, temporal_client, MAVERICK_TASK_QUEUE,
                                            SecretBox(maverick_settings.secrets_key.get_secret_value()))
        settings = await activities.settings(tenant.account_id)
        assert settings is not None
        late = RemoteTicket(id=older.id, version=older.version, updated_at=older.updated_at, subject=older.subject,
                            body=older.body, status=older.status, priority=older.priority,
                            category_id=older.category_id, merchant_name=older.merchant_name)
        assert (await activities.importer.apply(tenant.account_id, settings, late)).kind == "unchanged"
        assert (await tenant.get(f"/api/tickets/{ticket['id']}")).json()["subject"] == "Terminal offline (day 2)"
        assert (await link()).remote_fields["subject"] == "Terminal offline (day 2)"

        run = await sync(tenant)
        assert run["status"] == "succeeded", run
        assert [c["body"] for c in await comments_of(tenant, ticket["id"])] == ["Still offline today"]
        assert (await tenant.get(f"/api/tickets/{ticket['id']}")).json()["subject"] == "Terminal offline (day 2)"
        assert (await link()).remote_version == 3
        await tenant.request("PUT", "/api/integrations/maverick/config", json={"enabled": False})


async def _linked_at(link: Any, version: int) -> Any:
    found = await link()
    return found if found is not None and found.remote_version >= version else None


async def _fields_at(link: Any, version: int) -> Any:
    found = await link()
    return found if found is not None and (found.remote_fields or {}).get(FIELDS_VERSION) == version else None


async def _subject_is(tenant: AccountContext, ticket_id: int, subject: str) -> dict[str, Any] | None:
    current = (await tenant.get(f"/api/tickets/{ticket_id}")).json()
    return current if current["subject"] == subject else None
