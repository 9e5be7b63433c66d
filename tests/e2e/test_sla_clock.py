"""The SLA clock in real time on the dev server (~65 s): a 1-minute first-response target turns
``at_risk`` at 48 s and ``breached`` at 60 s, as seen through the API, the list filter and the
Temporal search attribute."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from temporalio.client import Client

from pulse import search_attributes as sa
from tests.conftest import AccountContext


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_a_one_minute_policy_is_at_risk_at_48s_and_breached_at_60s(
    account: AccountContext, temporal_client: Client
) -> None:
    policy = await account.request("PUT", "/api/sla/policies/urgent",
                                   json={"firstResponseMinutes": 1, "resolutionMinutes": 10})
    assert policy.status_code == 200, policy.text
    ticket = await account.create_ticket(priority="urgent", subject="Checkout is down")
    created = at(ticket["createdAt"])
    assert (at(ticket["slaFirstResponseDue"]) - created).total_seconds() == 60

    first_seen: dict[str, float] = {}
    listed_while_at_risk: list[int] | None = None
    deadline = asyncio.get_running_loop().time() + 80
    while "breached" not in first_seen and asyncio.get_running_loop().time() < deadline:
        current = (await account.get(f"/api/tickets/{ticket['id']}")).json()
        elapsed = (datetime.now(timezone.utc) - created).total_seconds()
        first_seen.setdefault(current["slaStatus"], elapsed)
        if current["slaStatus"] == "at_risk" and listed_while_at_risk is None:
            listed = (await account.get("/api/tickets?slaStatus=at_risk")).json()["tickets"]
            listed_while_at_risk = [t["id"] for t in listed]
        await asyncio.sleep(0.2)

    assert set(first_seen) == {"on_time", "at_risk", "breached"}, first_seen
    assert 48 <= first_seen["at_risk"] < 50, first_seen
    assert 60 <= first_seen["breached"] < 62, first_seen
    assert listed_while_at_risk == [ticket["id"]]

    breached = (await account.get(f"/api/tickets/{ticket['id']}")).json()
    assert at(breached["slaBreachedAt"]) == at(breached["slaFirstResponseDue"])
    assert breached["slaFirstResponseMet"] is False
    assert [t["id"] for t in (await account.get("/api/tickets?slaStatus=breached")).json()["tickets"]] == [ticket["id"]]
    assert (await account.get("/api/tickets?slaStatus=at_risk")).json()["tickets"] == []
    timeline = (await account.get(f"/api/tickets/{ticket['id']}/timeline")).json()["data"]
    crossings = {e["eventType"]: (at(e["createdAt"]) - created).total_seconds() for e in timeline
                 if e["eventType"] in ("sla_at_risk", "sla_breached")}
    assert crossings == {"sla_at_risk": 48.0, "sla_breached": 60.0}  # the exact instants
    description = await temporal_client.get_workflow_handle(f"ticket-{account.account_id}-{ticket['id']}").describe()
    assert description.typed_search_attributes.get(sa.SLA_STATUS) == "breached"
