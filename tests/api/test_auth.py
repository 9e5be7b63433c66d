"""Authentication, permissions and tenant isolation, proved on every endpoint of the app.

The walk is built from the app's own route table and checked against ``WHO_MAY``, the table of
who may do what, which must have a row for every operation: each must answer 401 to a missing,
garbage, revoked or expired token, 403 to a token that lacks exactly the permission it needs,
and 404 (never 403/200/409) when another account's admin names this account's resource.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import update

from pulse.api.app import create_app
from pulse.config import Settings
from pulse.db import SessionFactory
from pulse.models import AccountMember, ApiToken
from pulse.services.auth import TokenCache, create_account_with_admin, issue_token
from tests.conftest import AccountContext

READ, WRITE, MANAGE = "readSupport", "writeSupport", "manageSettings"
PLATFORM_ADMIN = "platformAdmin"
ALL = frozenset({READ, WRITE, MANAGE})

# Routes that do not take a bearer token at all (health checks; webhooks are signed instead).
UNAUTHENTICATED = re.compile(r"^/api/health|webhook", re.IGNORECASE)

# Who may do what: every operation the app serves has a row, so a new route cannot ship without
# one (``test_every_operation_has_a_row_in_the_permission_table``). Settings are read with
# readSupport and changed with manageSettings; tickets are changed with writeSupport; credentials,
# channel secrets, the audit log, deliveries and the Maverick integration are settings matters
# even to read; saved views are personal (whoever may read tickets keeps their own).
WHO_MAY: dict[tuple[str, str], str] = {
    ("POST", "/api/accounts"): PLATFORM_ADMIN,
    ("GET", "/api/audit-log"): MANAGE,
    ("GET", "/api/integrations/maverick/config"): MANAGE,
    ("PUT", "/api/integrations/maverick/config"): MANAGE,
    ("POST", "/api/integrations/maverick/sync"): MANAGE,
    ("GET", "/api/integrations/maverick/sync-runs"): MANAGE,
    ("GET", "/api/integrations/maverick/sync-runs/{run_id}"): MANAGE,
    ("GET", "/api/integrations/maverick/ticket-type-mappings"): MANAGE,
    ("POST", "/api/integrations/maverick/ticket-type-mappings"): MANAGE,
    ("DELETE", "/api/integrations/maverick/ticket-type-mappings/{mapping_id}"): MANAGE,
    ("GET", "/api/integrations/maverick/ticket-type-mappings/{mapping_id}"): MANAGE,
    ("PUT", "/api/integrations/maverick/ticket-type-mappings/{mapping_id}"): MANAGE,
    ("GET", "/api/notifications"): READ,
    ("GET", "/api/notifications/deliveries"): MANAGE,
    ("GET", "/api/notifications/stream"): READ,
    ("POST", "/api/notifications/{notification_id}/read"): READ,
    ("GET", "/api/reports/summary"): READ,
    ("GET", "/api/reports/tickets"): READ,
    ("GET", "/api/rotations"): READ,
    ("POST", "/api/rotations"): MANAGE,
    ("DELETE", "/api/rotations/{rotation_id}"): MANAGE,
    ("GET", "/api/rotations/{rotation_id}"): READ,
    ("PATCH", "/api/rotations/{rotation_id}"): MANAGE,
    ("GET", "/api/rotations/{rotation_id}/next"): READ,
    ("GET", "/api/settings/notifications"): MANAGE,
    ("PUT", "/api/settings/notifications"): MANAGE,
    ("GET", "/api/sla/calendars"): READ,
    ("POST", "/api/sla/calendars"): MANAGE,
    ("DELETE", "/api/sla/calendars/{calendar_id}"): MANAGE,
    ("GET", "/api/sla/calendars/{calendar_id}"): READ,
    ("PUT", "/api/sla/calendars/{calendar_id}"): MANAGE,
    ("GET", "/api/sla/compliance"): READ,
    ("GET", "/api/sla/policies"): READ,
    ("POST", "/api/sla/policies"): MANAGE,
    ("PUT", "/api/sla/policies"): MANAGE,
    ("DELETE", "/api/sla/policies/{reference}"): MANAGE,
    ("GET", "/api/sla/policies/{reference}"): READ,
    ("PUT", "/api/sla/policies/{reference}"): MANAGE,
    ("GET", "/api/teams"): READ,
    ("POST", "/api/teams"): MANAGE,
    ("DELETE", "/api/teams/{row_id}"): MANAGE,
    ("GET", "/api/teams/{row_id}"): READ,
    ("PATCH", "/api/teams/{row_id}"): MANAGE,
    ("GET", "/api/ticket-categories"): READ,
    ("POST", "/api/ticket-categories"): MANAGE,
    ("DELETE", "/api/ticket-categories/{row_id}"): MANAGE,
    ("GET", "/api/ticket-categories/{row_id}"): READ,
    ("PATCH", "/api/ticket-categories/{row_id}"): MANAGE,
    ("GET", "/api/ticket-types"): READ,
    ("POST", "/api/ticket-types"): MANAGE,
    ("DELETE", "/api/ticket-types/{row_id}"): MANAGE,
    ("GET", "/api/ticket-types/{row_id}"): READ,
    ("PATCH", "/api/ticket-types/{row_id}"): MANAGE,
    ("GET", "/api/tickets"): READ,
    ("POST", "/api/tickets"): WRITE,
    ("GET", "/api/tickets/automation-rules"): READ,
    ("POST", "/api/tickets/automation-rules"): MANAGE,
    ("POST", "/api/tickets/automation-rules/test"): MANAGE,
    ("DELETE", "/api/tickets/automation-rules/{rule_id}"): MANAGE,
    ("GET", "/api/tickets/automation-rules/{rule_id}"): READ,
    ("PUT", "/api/tickets/automation-rules/{rule_id}"): MANAGE,
    ("GET", "/api/tickets/automation-rules/{rule_id}/executions"): READ,
    ("POST", "/api/tickets/automation-rules/{rule_id}/test"): MANAGE,
    ("POST", "/api/tickets/bulk"): WRITE,
    ("GET", "/api/tickets/bulk/{bulk_id}"): READ,
    ("GET", "/api/tickets/escalation-rules"): READ,
    ("POST", "/api/tickets/escalation-rules"): MANAGE,
    ("DELETE", "/api/tickets/escalation-rules/{rule_id}"): MANAGE,
    ("GET", "/api/tickets/escalation-rules/{rule_id}"): READ,
    ("PUT", "/api/tickets/escalation-rules/{rule_id}"): MANAGE,
    ("POST", "/api/tickets/merge"): WRITE,
    ("DELETE", "/api/tickets/{ticket_ref}"): WRITE,
    ("GET", "/api/tickets/{ticket_ref}"): READ,
    ("PATCH", "/api/tickets/{ticket_ref}"): WRITE,
    ("GET", "/api/tickets/{ticket_ref}/attachments"): READ,
    ("POST", "/api/tickets/{ticket_ref}/attachments"): WRITE,
    ("GET", "/api/tickets/{ticket_ref}/attachments/{attachment_id}/content"): READ,
    ("DELETE", "/api/tickets/{ticket_ref}/attachments/{attachment_id}"): WRITE,
    ("GET", "/api/tickets/{ticket_ref}/comments"): READ,
    ("POST", "/api/tickets/{ticket_ref}/comments"): WRITE,
    ("GET", "/api/tickets/{ticket_ref}/escalations"): READ,
    ("POST", "/api/tickets/{ticket_ref}/sla/pause"): WRITE,
    ("POST", "/api/tickets/{ticket_ref}/sla/resume"): WRITE,
    ("GET", "/api/tickets/{ticket_ref}/timeline"): READ,
    ("GET", "/api/tokens"): MANAGE,
    ("POST", "/api/tokens"): MANAGE,
    ("DELETE", "/api/tokens/{token_id}"): MANAGE,
    ("GET", "/api/tokens/{token_id}"): MANAGE,
    ("GET", "/api/users"): READ,
    ("POST", "/api/users"): MANAGE,
    ("DELETE", "/api/users/{row_id}"): MANAGE,
    ("GET", "/api/users/{row_id}"): READ,
    ("PATCH", "/api/users/{row_id}"): MANAGE,
    ("GET", "/api/views"): READ,
    ("POST", "/api/views"): READ,
    ("DELETE", "/api/views/{view_id}"): READ,
    ("GET", "/api/views/{view_id}"): READ,
    ("PUT", "/api/views/{view_id}"): READ,
    ("GET", "/api/views/{view_id}/tickets"): READ,
}


def required_permission(method: str, path: str) -> str:
    return WHO_MAY[(method, path)]


def lacking(permission: str) -> frozenset[str]:
    """The strongest token that must still be refused: every permission but the needed one."""
    if permission == PLATFORM_ADMIN:
        return ALL
    return ALL - {permission}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # the route's template, e.g. /api/tickets/{ticket_ref}/comments

    @property
    def params(self) -> list[str]:
        return re.findall(r"{([^}:]+)(?::[^}]*)?}", self.path)

    def url(self, values: dict[str, str]) -> str:
        return re.sub(r"{([^}:]+)(?::[^}]*)?}", lambda m: values[m.group(1)], self.path)


HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def api_endpoints(settings: Settings) -> list[Endpoint]:
    """Every (method, path) the app serves under /api, from its route table as the OpenAPI
    schema publishes it (FastAPI includes routers lazily, so ``app.routes`` is not flat)."""
    paths = create_app(settings).openapi()["paths"]
    found = {
        Endpoint(method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/api/") and not UNAUTHENTICATED.search(path)
        for method in operations
        if method in HTTP_METHODS
    }
    return sorted(found, key=lambda e: (e.path, e.method))


async def token_with(sessions: SessionFactory, ctx: AccountContext, permissions: frozenset[str], *,
                     name: str | None = None) -> str:
    async with sessions() as session, session.begin():
        _, plain = await issue_token(session, account_id=ctx.account_id, user_id=ctx.admin_user_id,
                                     name=name or "+".join(sorted(permissions)), permissions=sorted(permissions))
    return plain


async def platform_admin_token(sessions: SessionFactory) -> str:
    async with sessions() as session, session.begin():
        _, _, token = await create_account_with_admin(session, f"Platform {uuid.uuid4().hex[:6]}",
                                                      platform_admin=True)
    return token


def placeholder_body(endpoint: Endpoint) -> dict[str, Any] | None:
    """A body that passes validation where we know the route, so the answer shows the auth or
    ownership decision rather than a 422."""
    if endpoint.method in ("GET", "DELETE"):
        return None
    if endpoint.path.endswith("/comments"):
        return {"body": "probe"}
    if endpoint.path.startswith("/api/views") and endpoint.method == "PUT":
        return {"name": "probe"}
    return {}


async def call(http: httpx.AsyncClient, endpoint: Endpoint, url: str, headers: dict[str, str]) -> httpx.Response:
    if endpoint.method == "POST" and endpoint.path.endswith("/attachments"):  # a multipart upload
        return await http.post(url, headers=headers, files={"file": ("probe.txt", b"probe", "text/plain")})
    body = placeholder_body(endpoint)
    return await http.request(endpoint.method, url, headers=headers, json=body)


def describe(endpoint: Endpoint, response: httpx.Response) -> str:
    return f"{endpoint.method} {endpoint.path} → {response.status_code} {response.text[:300]}"


def assert_error_body(response: httpx.Response, status: int) -> None:
    body = response.json()
    assert response.status_code == status
    assert set(body) == {"error", "message", "details"}, body
    assert body["message"]


async def test_every_operation_has_a_row_in_the_permission_table(settings: Settings) -> None:
    served = {(e.method, e.path) for e in api_endpoints(settings)}
    assert ("POST", "/api/tickets") in served and ("DELETE", "/api/tokens/{token_id}") in served
    without_row = sorted(served - set(WHO_MAY))
    assert not without_row, f"operations without a row in WHO_MAY (say who may call them): {without_row}"
    stale = sorted(set(WHO_MAY) - served)
    assert not stale, f"rows in WHO_MAY for operations the app no longer serves: {stale}"


async def test_every_endpoint_refuses_a_missing_garbage_revoked_or_expired_token_with_401(
    account: AccountContext, settings: Settings, sessions: SessionFactory
) -> None:
    http = account.http
    revoked = await token_with(sessions, account, ALL, name="revoked")
    expired = await token_with(sessions, account, ALL, name="expired")
    async with sessions() as session, session.begin():
        now = datetime.now(timezone.utc)
        await session.execute(update(ApiToken).where(ApiToken.account_id == account.account_id,
                                                     ApiToken.name == "revoked").values(revoked_at=now))
        await session.execute(update(ApiToken).where(ApiToken.account_id == account.account_id,
                                                     ApiToken.name == "expired")
                              .values(expires_at=now - timedelta(seconds=1)))
    for endpoint in api_endpoints(settings):
        url = endpoint.url({name: "1" for name in endpoint.params})
        for headers in ({}, {"Authorization": "Bearer pulse_not-a-real-token"},
                        {"Authorization": f"Bearer {revoked}"}, {"Authorization": f"Bearer {expired}"}):
            response = await call(http, endpoint, url, headers)
            assert response.status_code == 401, describe(endpoint, response)
            assert_error_body(response, 401)
            assert response.headers.get("WWW-Authenticate") == "Bearer"
    # Malformed credentials, a valid token in the wrong scheme included.
    for value in ("Basic " + account.admin_token, "Bearer ", account.admin_token, "Bearer  ", "Token x"):
        response = await http.get("/api/tickets", headers={"Authorization": value})
        assert response.status_code == 401, (value, response.text)


async def test_every_endpoint_refuses_a_token_lacking_its_permission_with_403(
    account: AccountContext, settings: Settings, sessions: SessionFactory
) -> None:
    tokens: dict[frozenset[str], str] = {}
    for endpoint in api_endpoints(settings):
        needed = required_permission(endpoint.method, endpoint.path)
        held = lacking(needed)
        if held not in tokens:
            tokens[held] = await token_with(sessions, account, held)
        url = endpoint.url({name: "1" for name in endpoint.params})
        response = await call(account.http, endpoint, url, {"Authorization": f"Bearer {tokens[held]}"})
        assert response.status_code == 403, f"needs {needed}, token holds {sorted(held)}: " + describe(endpoint, response)
        assert_error_body(response, 403)


async def test_read_endpoints_refuse_a_token_without_read_support(
    account: AccountContext, settings: Settings, sessions: SessionFactory
) -> None:
    """Even a token with only writeSupport (no readSupport, no manageSettings) reads nothing."""
    write_only = await token_with(sessions, account, frozenset({WRITE}))
    for endpoint in api_endpoints(settings):
        if endpoint.method != "GET":
            continue
        url = endpoint.url({name: "1" for name in endpoint.params})
        response = await call(account.http, endpoint, url, {"Authorization": f"Bearer {write_only}"})
        assert response.status_code == 403, describe(endpoint, response)


@dataclass
class OwnedResources:
    ids: dict[str, str]
    ticket: dict[str, Any]
    token_id: int
    token: str


async def make_resources(account: AccountContext) -> OwnedResources:
    user = (await account.post("/api/users", json={"name": "Ada"})).json()
    team = (await account.post("/api/teams", json={"name": "Tier 1", "memberIds": [user["id"]]})).json()
    ticket_type = (await account.post("/api/ticket-types", json={"name": "Bug"})).json()
    category = (await account.post("/api/ticket-categories", json={"name": "Billing"})).json()
    ticket = await account.create_ticket(subject="Private to Acme", assignedToTeamId=team["id"])
    await account.post(f"/api/tickets/{ticket['id']}/comments", json={"body": "private note", "isInternal": True})
    ticket = (await account.get(f"/api/tickets/{ticket['id']}")).json()
    created = (await account.post("/api/tokens", json={"name": "probe", "permissions": [READ]})).json()
    view = (await account.post("/api/views", json={"name": "Acme VIPs", "filters": {"tags": "vip"}})).json()
    ids = {"views": str(view["id"]),"tickets": str(ticket["id"]), "users": str(user["id"]), "teams": str(team["id"]),
           "ticket-types": str(ticket_type["id"]), "ticket-categories": str(category["id"]),
           "tokens": str(created["id"])}
    return OwnedResources(ids=ids, ticket=ticket, token_id=created["id"], token=created["token"])


def substitute(endpoint: Endpoint, ids: dict[str, str]) -> str | None:
    """The endpoint's URL with this account's resource ids, or None when a path parameter names
    a kind of resource the walk cannot make (it is still covered by the 401/403 walks)."""
    segments = endpoint.path.strip("/").split("/")
    values: dict[str, str] = {}
    for index, segment in enumerate(segments):
        match = re.fullmatch(r"{([^}:]+)(?::[^}]*)?}", segment)
        if match is None:
            continue
        owner = segments[index - 1]
        if owner not in ids:
            return None
        values[match.group(1)] = ids[owner]
    return endpoint.url(values)


async def test_another_accounts_token_gets_404_for_every_resource_of_this_account(
    account: AccountContext, other_account: AccountContext, settings: Settings
) -> None:
    mine = await make_resources(account)
    intruder = {"Authorization": f"Bearer {other_account.admin_token}"}
    walked = 0
    for endpoint in api_endpoints(settings):
        if not endpoint.params or required_permission(endpoint.method, endpoint.path) == PLATFORM_ADMIN:
            continue
        url = substitute(endpoint, mine.ids)
        if url is None:
            continue
        response = await call(account.http, endpoint, url, intruder)
        assert response.status_code == 404, describe(endpoint, response)
        assert_error_body(response, 404)
        body_text = response.text
        assert "Private to Acme" not in body_text and "private note" not in body_text
        walked += 1
    assert walked >= 15

    # Nothing the intruder tried changed anything here.
    after = await account.get(f"/api/tickets/{mine.ticket['id']}")
    assert after.status_code == 200 and after.json()["version"] == mine.ticket["version"]
    comments = (await account.get(f"/api/tickets/{mine.ticket['id']}/comments")).json()
    assert [c["body"] for c in comments["data"]] == ["private note"]
    for kind in ("users", "teams", "ticket-types", "ticket-categories", "tokens", "views"):
        assert (await account.get(f"/api/{kind}/{mine.ids[kind]}")).status_code == 200, kind
    assert (await account.get("/api/tickets", token=mine.token)).status_code == 200


async def test_lists_only_show_the_callers_account(account: AccountContext, other_account: AccountContext) -> None:
    await make_resources(account)
    for path, key in [("/api/tickets", "tickets"), ("/api/users", "data"), ("/api/teams", "data"),
                      ("/api/ticket-types", "data"), ("/api/ticket-categories", "data"), ("/api/tokens", "data")]:
        listed = (await other_account.get(path)).json()
        names = " ".join(str(row.get("subject") or row.get("name")) for row in listed[key])
        for secret in ("Private to Acme", "Ada", "Tier 1", "Bug", "Billing", "probe"):
            assert secret not in names, (path, names)
    # A ticket number is per account: PULSE-1 of the other account is its own ticket, not ours.
    assert (await other_account.get("/api/tickets/PULSE-1")).status_code == 404


# -- x-account-id ---------------------------------------------------------------------------------


async def test_without_x_account_id_the_primary_account_is_used(account: AccountContext) -> None:
    ticket = await account.create_ticket(subject="Mine")
    listed = (await account.get("/api/tickets")).json()
    assert [t["id"] for t in listed["tickets"]] == [ticket["id"]]
    explicit = await account.get("/api/tickets", headers={"x-account-id": str(account.account_id)})
    assert explicit.status_code == 200 and explicit.json()["tickets"] == listed["tickets"]


async def test_x_account_id_of_an_account_the_caller_does_not_belong_to_is_403(
    account: AccountContext, other_account: AccountContext
) -> None:
    await other_account.create_ticket(subject="Globex secret")
    for value in (str(other_account.account_id), "999999999", "not-a-number", "99999999999999999999999"):
        for method, path, body in [("GET", "/api/tickets", None), ("POST", "/api/tickets", {"subject": "x"}),
                                   ("GET", "/api/users", None)]:
            response = await account.request(method, path, json=body, headers={"x-account-id": value})
            assert response.status_code == 403, (value, method, path, response.text)
            assert_error_body(response, 403)
            assert "Globex secret" not in response.text
    assert (await other_account.get("/api/tickets")).json()["pagination"]["total"] == 1


async def test_x_account_id_selects_another_account_the_user_belongs_to(
    account: AccountContext, other_account: AccountContext, sessions: SessionFactory
) -> None:
    theirs = await other_account.create_ticket(subject="Globex ticket")
    async with sessions() as session, session.begin():
        session.add(AccountMember(account_id=other_account.account_id, user_id=account.admin_user_id))
    switched = {"x-account-id": str(other_account.account_id)}

    listed = (await account.get("/api/tickets", headers=switched)).json()
    assert [t["id"] for t in listed["tickets"]] == [theirs["id"]]
    created = await account.post("/api/tickets", json={"subject": "Made for Globex"}, headers=switched)
    assert created.status_code == 201
    assert created.json()["ticketNumber"] == "PULSE-2"
    assert (await other_account.get(f"/api/tickets/{created.json()['id']}")).status_code == 200
    # Without the header the same token is back in its primary account.
    assert (await account.get(f"/api/tickets/{theirs['id']}")).status_code == 404


async def test_a_platform_admin_may_act_in_any_account(account: AccountContext, sessions: SessionFactory) -> None:
    ticket = await account.create_ticket(subject="Support me")
    admin = await platform_admin_token(sessions)
    response = await account.get(f"/api/tickets/{ticket['id']}", token=admin,
                                 headers={"x-account-id": str(account.account_id)})
    assert response.status_code == 200 and response.json()["subject"] == "Support me"


# -- tokens -----------------------------------------------------------------------------------------


async def test_expired_and_revoked_tokens_are_401(account: AccountContext, sessions: SessionFactory) -> None:
    expired = await token_with(sessions, account, ALL)
    async with sessions() as session, session.begin():
        await session.execute(update(ApiToken).where(ApiToken.name == "+".join(sorted(ALL)),
                                                     ApiToken.account_id == account.account_id)
                              .values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
    response = await account.get("/api/tickets", token=expired)
    assert response.status_code == 401
    assert_error_body(response, 401)


async def test_a_token_revoked_outside_the_api_process_is_refused_once_its_cache_window_has_passed(
    account: AccountContext, settings: Settings, sessions: SessionFactory
) -> None:
    token = await token_with(sessions, account, ALL, name="revoked elsewhere")
    app = create_app(settings, sessions=sessions)
    async with LifespanManager(app):
        app.state.token_cache = TokenCache(seconds=0.5)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pulse.test") as http:
            headers = {"Authorization": f"Bearer {token}"}
            assert (await http.get("/api/tickets", headers=headers)).status_code == 200
            async with sessions() as session, session.begin():
                await session.execute(update(ApiToken).where(ApiToken.account_id == account.account_id,
                                                             ApiToken.name == "revoked elsewhere")
                                      .values(revoked_at=datetime.now(timezone.utc)))
            assert (await http.get("/api/tickets", headers=headers)).status_code == 200  # verified 0.5 s ago
            await asyncio.sleep(0.6)
            assert (await http.get("/api/tickets", headers=headers)).status_code == 401


async def test_a_remembered_token_is_refused_the_moment_it_expires(
    account: AccountContext, sessions: SessionFactory
) -> None:
    token = await token_with(sessions, account, ALL, name="expiring")
    async with sessions() as session, session.begin():
        await session.execute(update(ApiToken).where(ApiToken.account_id == account.account_id,
                                                     ApiToken.name == "expiring")
                              .values(expires_at=datetime.now(timezone.utc) + timedelta(seconds=3)))
    assert (await account.get("/api/tickets", token=token)).status_code == 200  # now remembered for 5 s
    await asyncio.sleep(3.1)
    response = await account.get("/api/tickets", token=token)
    assert response.status_code == 401
    assert_error_body(response, 401)


async def test_tokens_are_shown_once_listed_without_secret_and_revoked_by_delete(account: AccountContext) -> None:
    created = await account.post("/api/tokens", json={"name": "reporting", "permissions": [READ]})
    assert created.status_code == 201, created.text
    token = created.json()
    assert token["token"].startswith("pulse_") and token["permissions"] == [READ]
    assert token["name"] == "reporting" and token["userId"] == account.admin_user_id

    listed = (await account.get("/api/tokens")).json()
    row = next(t for t in listed["data"] if t["id"] == token["id"])
    assert "token" not in row and token["token"] not in (await account.get("/api/tokens")).text
    assert listed["pagination"]["total"] == len(listed["data"])
    single = (await account.get(f"/api/tokens/{token['id']}")).json()
    assert "token" not in single and single["name"] == "reporting"

    assert (await account.get("/api/tickets", token=token["token"])).status_code == 200
    assert (await account.post("/api/tickets", token=token["token"], json={"subject": "x"})).status_code == 403

    deleted = await account.delete(f"/api/tokens/{token['id']}")
    assert deleted.status_code == 204
    assert (await account.get("/api/tickets", token=token["token"])).status_code == 401
    assert (await account.get(f"/api/tokens/{token['id']}")).status_code == 404
    assert (await account.delete(f"/api/tokens/{token['id']}")).status_code == 404
    assert token["id"] not in [t["id"] for t in (await account.get("/api/tokens")).json()["data"]]


async def test_token_creation_validates_its_input(account: AccountContext, other_account: AccountContext) -> None:
    for body, field in [({"name": "x", "permissions": ["godMode"]}, "permissions.0"),
                        ({"name": "x", "permissions": []}, "permissions"),
                        ({"permissions": [READ]}, "name"),
                        ({"name": "x", "permissions": [READ], "scope": "all"}, "scope"),
                        ({"name": "x", "permissions": [READ], "userId": other_account.admin_user_id}, "userId")]:
        response = await account.post("/api/tokens", json=body)
        assert response.status_code == 422, (body, response.text)
        assert field in [d["field"] for d in response.json()["details"]], response.json()


# -- accounts ---------------------------------------------------------------------------------------


async def test_a_platform_admin_creates_an_account_whose_admin_token_works(
    account: AccountContext, sessions: SessionFactory
) -> None:
    admin = await platform_admin_token(sessions)
    existing = await account.create_ticket(subject="Acme's own")
    created = await account.post("/api/accounts", token=admin, json={"name": "Initech"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"id", "name", "adminToken"} and body["name"] == "Initech"
    new_token = body["adminToken"]

    assert (await account.get("/api/tickets", token=new_token)).json()["tickets"] == []
    ticket = await account.post("/api/tickets", token=new_token, json={"subject": "First for Initech"})
    assert ticket.status_code == 201 and ticket.json()["ticketNumber"] == "PULSE-1"
    assert (await account.get(f"/api/tickets/{existing['id']}", token=new_token)).status_code == 404
    assert (await account.post("/api/ticket-types", token=new_token, json={"name": "Bug"})).status_code == 201
    # The new account's admin is not a platform admin.
    assert (await account.post("/api/accounts", token=new_token, json={"name": "Nope"})).status_code == 403


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x", "plan": "gold"}])
async def test_account_creation_rejects_bad_input(account: AccountContext, sessions: SessionFactory,
                                                  body: dict[str, Any]) -> None:
    admin = await platform_admin_token(sessions)
    response = await account.post("/api/accounts", token=admin, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["details"]


async def test_only_a_platform_admin_creates_accounts(account: AccountContext) -> None:
    response = await account.post("/api/accounts", json={"name": "Hooli"})
    assert response.status_code == 403
    assert_error_body(response, 403)
