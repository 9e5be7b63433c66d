"""The brief's Quick Start, verbatim: create, list open by priority, comment."""

from tests.conftest import AccountContext


async def test_quick_start_create_list_and_comment(account: AccountContext) -> None:
    ticket_type = (await account.post("/api/ticket-types", json={"name": "Bug"})).json()
    team = (await account.post("/api/teams", json={"name": "Support"})).json()

    created = await account.post("/api/tickets", json={
        "subject": "Unable to log in",
        "description": "User cannot log in to their account after password reset",
        "priority": "high",
        "typeId": ticket_type["id"],
        "assignedToTeamId": team["id"],
    })
    assert created.status_code == 201, created.text
    ticket = created.json()
    assert ticket["ticketNumber"].startswith("PULSE-")
    assert ticket["status"] == "open" and ticket["priority"] == "high"
    assert ticket["assignedToTeamId"] == team["id"] and ticket["typeId"] == ticket_type["id"]

    listed = await account.get("/api/tickets?status=open&sortBy=priority")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert set(body) == {"tickets", "pagination"}
    assert [t["ticketNumber"] for t in body["tickets"]] == [ticket["ticketNumber"]]
    assert body["pagination"] == {"page": 1, "pageSize": 50, "total": 1, "totalPages": 1}

    commented = await account.post(f"/api/tickets/{ticket['id']}/comments", json={
        "body": "We have identified the issue and are working on a resolution.",
        "isInternal": False,
        "notifyCustomer": True,
    })
    assert commented.status_code == 201, commented.text
    assert commented.json()["body"].startswith("We have identified")

    after = (await account.get(f"/api/tickets/{ticket['ticketNumber']}")).json()
    assert after["responseCount"] == 1 and after["firstRespondedAt"] is not None
