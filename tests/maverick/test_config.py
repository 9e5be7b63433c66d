"""The Maverick config and category mappings (spec §8): manageSettings only, secrets write-only,
encrypted at rest and masked on read, bad input a 422 naming the field."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from pulse.db import SessionFactory
from pulse.secretbox import SecretBox, UnreadableSecret, new_key
from pulse.services.maverick import MaverickMappingService
from tests.conftest import AccountContext
from tests.maverick.conftest import PUBLIC_URL

CONFIG = "/api/integrations/maverick/config"
MAPPINGS = "/api/integrations/maverick/ticket-type-mappings"
API_KEY = "mvk_live_0123456789abcdef"
WEBHOOK_SECRET = "whsec_abcdefghijklmnop"


async def test_an_unconfigured_account_shows_the_defaults_and_its_own_webhook_url(tenant: AccountContext) -> None:
    response = await tenant.get(CONFIG)
    assert response.status_code == 200, response.text
    config = response.json()
    assert config["webhookUrl"] == f"{PUBLIC_URL}/api/integrations/maverick/webhook/{tenant.account_id}"
    assert (config["enabled"], config["apiKey"], config["syncIntervalMinutes"], config["syncDirection"]) == \
        (False, None, 15, "bidirectional")
    assert config["statusMapping"] == {"new": "open", "assigned": "in_progress", "in_review": "in_progress",
                                       "pending_merchant": "waiting_customer", "resolved": "resolved",
                                       "closed": "closed", "cancelled": "closed"}
    assert config["version"] == 0


async def test_secrets_are_write_only_masked_on_read_and_encrypted_at_rest(tenant: AccountContext,
                                                                          sessions: SessionFactory) -> None:
    response = await tenant.request("PUT", CONFIG, json={"enabled": True, "apiUrl": "https://maverick.example/api",
                                              "apiKey": API_KEY, "webhookSecret": WEBHOOK_SECRET,
                                              "statusMapping": {"cancelled": "resolved"}})
    assert response.status_code == 200, response.text
    shown = response.json()
    assert (shown["apiKey"], shown["webhookSecret"]) == ("****cdef", "****mnop")
    assert shown["statusMapping"]["cancelled"] == "resolved" and shown["statusMapping"]["closed"] == "closed"
    assert API_KEY not in response.text and WEBHOOK_SECRET not in response.text
    async with sessions() as session:
        row = (await session.execute(text("SELECT api_key_encrypted, webhook_secret_encrypted, maverick_configs::text "
                                          "FROM maverick_configs WHERE account_id = :a"),
                                     {"a": tenant.account_id})).one()
    assert row[0].startswith("v1:") and API_KEY not in row[2] and WEBHOOK_SECRET not in row[2]

    # Left out, or sent back masked: kept. Other fields change.
    kept = await tenant.request("PUT", CONFIG, json={"apiKey": "****cdef", "syncIntervalMinutes": 5})
    assert kept.status_code == 200, kept.text
    assert (kept.json()["apiKey"], kept.json()["webhookSecret"], kept.json()["syncIntervalMinutes"]) == \
        ("****cdef", "****mnop", 5)
    async with sessions() as session:
        unchanged = await session.scalar(text("SELECT api_key_encrypted FROM maverick_configs WHERE account_id = :a"),
                                         {"a": tenant.account_id})
    assert unchanged == row[0]
    replaced = await tenant.request("PUT", CONFIG, json={"apiKey": "mvk_live_new_key_9999"})
    assert replaced.json()["apiKey"] == "****9999" and replaced.json()["version"] == 3
    assert (await tenant.get(CONFIG)).json()["apiKey"] == "****9999"


async def test_enabling_needs_the_url_the_key_and_the_webhook_secret(tenant: AccountContext) -> None:
    response = await tenant.request("PUT", CONFIG, json={"enabled": True, "apiUrl": "https://maverick.example"})
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"
    assert "apiKey" in response.json()["message"] and "webhookSecret" in response.json()["message"]


@pytest.mark.parametrize("body, field", [
    ({"syncDirection": "sideways"}, "syncDirection"),
    ({"syncIntervalMinutes": 0}, "syncIntervalMinutes"),
    ({"apiUrl": "ftp://maverick.example"}, "apiUrl"),
    ({"statusMapping": {"new": "nope"}}, "statusMapping.new"),
    ({"statusMapping": {"shipped": "open"}}, "statusMapping.shipped"),
    ({"webhookSecret": "short"}, "webhookSecret"),
    ({"colour": "blue"}, "colour"),
    ({"defaultAssigneeId": 0}, "defaultAssigneeId"),
])
async def test_bad_config_values_are_422_naming_the_field(tenant: AccountContext, body: dict, field: str) -> None:
    response = await tenant.request("PUT", CONFIG, json=body)
    assert response.status_code == 422, response.text
    assert field in [d["field"] for d in response.json()["details"]], response.json()
    assert "short" not in response.text or field != "webhookSecret"


async def test_default_team_and_assignee_must_belong_to_the_account(tenant: AccountContext,
                                                                    other_tenant: AccountContext) -> None:
    team = (await other_tenant.post("/api/teams", json={"name": "Theirs"})).json()
    response = await tenant.request("PUT", CONFIG, json={"defaultTeamId": team["id"]})
    assert response.status_code == 422 and response.json()["details"][0]["field"] == "defaultTeamId"
    mine = await tenant.request("PUT", CONFIG, json={"defaultAssigneeId": tenant.admin_user_id})
    assert mine.status_code == 200 and mine.json()["defaultAssigneeId"] == tenant.admin_user_id
    assert (await other_tenant.get(CONFIG)).json()["defaultAssigneeId"] is None


async def test_a_stale_version_is_a_conflict(tenant: AccountContext) -> None:
    first = (await tenant.request("PUT", CONFIG, json={"autoSync": False})).json()
    stale = await tenant.request("PUT", CONFIG, json={"autoSync": True}, headers={"If-Match": str(first["version"] - 1)})
    assert stale.status_code == 409 and stale.json()["error"] == "version_conflict"
    fresh = await tenant.request("PUT", CONFIG, json={"autoSync": True, "version": first["version"]})
    assert fresh.status_code == 200 and fresh.json()["autoSync"] is True


async def test_only_manage_settings_may_see_or_change_the_integration(tenant: AccountContext) -> None:
    for token in (tenant.tokens["read"], tenant.tokens["write"]):
        assert (await tenant.get(CONFIG, token=token)).status_code == 403
        assert (await tenant.request("PUT", CONFIG, json={"autoSync": False}, token=token)).status_code == 403
        assert (await tenant.get(MAPPINGS, token=token)).status_code == 403
    assert (await tenant.get(CONFIG, token=tenant.tokens["settings"])).status_code == 200


def test_a_sealed_secret_opens_only_with_its_key_and_for_its_own_account_and_field() -> None:
    key = new_key()
    sealed = SecretBox(key).seal("s3cret-value", "maverick_configs:1:api_key")
    assert SecretBox(key).open(sealed, "maverick_configs:1:api_key") == "s3cret-value"
    for box, context in ((SecretBox(key), "maverick_configs:2:api_key"),
                         (SecretBox(key), "maverick_configs:1:webhook_secret"),
                         (SecretBox(new_key()), "maverick_configs:1:api_key")):
        with pytest.raises(UnreadableSecret):
            box.open(sealed, context)


async def test_one_mapping_per_maverick_category_with_types_of_the_account(
        tenant: AccountContext, other_tenant: AccountContext) -> None:
    ticket_type = (await tenant.post("/api/ticket-types", json={"name": "Chargeback"})).json()
    category = (await tenant.post("/api/ticket-categories", json={"name": "Billing"})).json()
    created = await tenant.post(MAPPINGS, json={"maverickCategoryId": 1, "maverickCategoryName": "Chargebacks",
                                                "pulseTicketTypeId": ticket_type["id"], "pulseCategoryId": category["id"]})
    assert created.status_code == 201, created.text
    mapping = created.json()
    assert (mapping["maverickCategoryId"], mapping["pulseTicketTypeId"], mapping["version"]) == (1, ticket_type["id"], 1)
    again = await tenant.post(MAPPINGS, json={"maverickCategoryId": 1, "pulseTicketTypeId": ticket_type["id"]})
    assert again.status_code == 409 and again.json()["error"] == "duplicate"
    theirs = (await other_tenant.post("/api/ticket-types", json={"name": "Theirs"})).json()
    foreign = await tenant.post(MAPPINGS, json={"maverickCategoryId": 2, "pulseTicketTypeId": theirs["id"]})
    assert foreign.status_code == 422 and foreign.json()["details"][0]["field"] == "pulseTicketTypeId"
    assert (await tenant.post(MAPPINGS, json={"pulseTicketTypeId": ticket_type["id"]})).status_code == 422

    listed = (await tenant.get(MAPPINGS)).json()
    assert listed["totalCount"] == 1 and listed["data"][0]["id"] == mapping["id"]
    assert (await other_tenant.get(f"{MAPPINGS}/{mapping['id']}")).status_code == 404
    replaced = await tenant.request("PUT", f"{MAPPINGS}/{mapping['id']}", json={"maverickCategoryId": 1,
                                                                     "pulseTicketTypeId": ticket_type["id"]},
                                headers={"If-Match": "1"})
    assert replaced.status_code == 200 and replaced.json()["pulseCategoryId"] is None and replaced.json()["version"] == 2
    stale = await tenant.request("PUT", f"{MAPPINGS}/{mapping['id']}", json={"maverickCategoryId": 1}, headers={"If-Match": "1"})
    assert stale.status_code == 409
    assert (await tenant.delete(f"{MAPPINGS}/{mapping['id']}")).status_code == 204
    assert (await tenant.get(MAPPINGS)).json() == {"data": [], "totalCount": 0}


async def test_an_unmapped_category_lands_on_the_unmapped_maverick_tickets_type(
        tenant: AccountContext, sessions: SessionFactory) -> None:
    bug = (await tenant.post("/api/ticket-types", json={"name": "Equipment fault"})).json()
    await tenant.post(MAPPINGS, json={"maverickCategoryId": 4, "pulseTicketTypeId": bug["id"]})
    async with sessions() as session, session.begin():
        mappings = MaverickMappingService(session)
        assert await mappings.resolve(tenant.account_id, 4) == (bug["id"], None)
        unmapped = await mappings.resolve(tenant.account_id, 2)
        assert await mappings.resolve(tenant.account_id, None) == unmapped
        assert await mappings.resolve(tenant.account_id, 3) == unmapped
    types = (await tenant.get("/api/ticket-types", params={"pageSize": 200})).json()["data"]
    assert [t["id"] for t in types if t["name"] == "Unmapped Maverick Tickets"] == [unmapped[0]]
