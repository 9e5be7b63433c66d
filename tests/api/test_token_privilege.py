"""Least privilege for API tokens: a token mints only what it holds, for its own user unless it
is the account admin's; revoking another user's token takes the account admin; every token change
is on the audit log; lastUsedAt is kept; token responses are never cached."""

from __future__ import annotations

from typing import Any

from pulse.db import SessionFactory
from pulse.services.auth import issue_token
from tests.conftest import AccountContext

READ, WRITE, MANAGE = "readSupport", "writeSupport", "manageSettings"


async def agent_with_token(account: AccountContext, sessions: SessionFactory,
                           permissions: list[str]) -> tuple[int, str]:
    """A non-admin user of the account and a token of theirs."""
    user = await account.post("/api/users", json={"name": "Agent Smith", "email": "smith@example.com"})
    assert user.status_code == 201, user.text
    user_id = user.json()["id"]
    async with sessions() as session, session.begin():
        _, plain = await issue_token(session, account_id=account.account_id, user_id=user_id, name="agent",
                                     permissions=permissions)
    return user_id, plain


async def mint(account: AccountContext, token: str, **body: Any) -> Any:
    return await account.post("/api/tokens", token=token, json={"name": "minted", **body})


async def test_a_token_cannot_mint_permissions_it_does_not_hold(account: AccountContext) -> None:
    settings_only = account.tokens["settings"]
    for permissions in ([READ, WRITE, MANAGE], [WRITE], [MANAGE, READ]):
        refused = await mint(account, settings_only, permissions=permissions)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "permission_escalation"
    allowed = await mint(account, settings_only, permissions=[MANAGE])
    assert allowed.status_code == 201, allowed.text
    minted = allowed.json()["token"]
    assert (await account.get("/api/tickets", token=minted)).status_code == 403


async def test_only_the_account_admin_mints_tokens_for_another_user(account: AccountContext,
                                                                    sessions: SessionFactory) -> None:
    agent_id, agent_token = await agent_with_token(account, sessions, [READ, MANAGE])
    for_admin = await mint(account, agent_token, permissions=[READ], userId=account.admin_user_id)
    assert for_admin.status_code == 403, for_admin.text
    assert for_admin.json()["error"] == "not_account_admin"
    for_self = await mint(account, agent_token, permissions=[READ])
    assert for_self.status_code == 201 and for_self.json()["userId"] == agent_id
    by_admin = await mint(account, account.tokens["settings"], permissions=[MANAGE], userId=agent_id)
    assert by_admin.status_code == 201 and by_admin.json()["userId"] == agent_id


async def test_revoking_another_users_token_takes_the_account_admin(account: AccountContext,
                                                                    sessions: SessionFactory) -> None:
    _, agent_token = await agent_with_token(account, sessions, [READ, MANAGE])
    admin_tokens = (await account.get("/api/tokens")).json()["data"]
    admin_token_id = next(t["id"] for t in admin_tokens if t["name"] == "admin")
    refused = await account.delete(f"/api/tokens/{admin_token_id}", token=agent_token)
    assert refused.status_code == 403 and refused.json()["error"] == "not_account_admin"
    assert (await account.get("/api/tickets")).status_code == 200  # the admin's token still works

    own = (await mint(account, agent_token, permissions=[READ])).json()
    assert (await account.delete(f"/api/tokens/{own['id']}", token=agent_token)).status_code == 204
    agents = (await mint(account, agent_token, permissions=[READ])).json()
    assert (await account.delete(f"/api/tokens/{agents['id']}")).status_code == 204  # the admin may
    assert (await account.get("/api/tickets", token=agents["token"])).status_code == 401


async def test_every_token_change_is_on_the_audit_log(account: AccountContext, other_account: AccountContext,
                                                      sessions: SessionFactory) -> None:
    agent_id, agent_token = await agent_with_token(account, sessions, [READ, MANAGE])
    created = (await mint(account, agent_token, permissions=[READ])).json()
    assert (await account.delete(f"/api/tokens/{created['id']}")).status_code == 204
    refused = await mint(account, agent_token, permissions=[WRITE])
    assert refused.status_code == 403

    log = await account.get("/api/audit-log")
    assert log.status_code == 200, log.text
    entries = log.json()["data"]
    assert [(e["action"], e["targetId"]) for e in entries[:2]] == [("token.revoked", created["id"]),
                                                                   ("token.created", created["id"])]
    revoked, minted = entries[0], entries[1]
    assert minted["actorUserId"] == agent_id and minted["details"]["permissions"] == [READ]
    assert revoked["actorUserId"] == account.admin_user_id and revoked["targetType"] == "token"
    assert minted["createdAt"] <= revoked["createdAt"]
    assert log.json()["pagination"]["total"] == len(entries) == 2  # a refused mint changes nothing

    theirs = (await other_account.get("/api/audit-log")).json()
    assert created["id"] not in [e["targetId"] for e in theirs["data"]]
    assert (await account.get("/api/audit-log", token=account.tokens["write"])).status_code == 403
    assert (await account.get("/api/audit-log?page=1000000")).json()["data"] == []


async def test_last_used_at_is_set_by_use_and_written_at_most_once_a_minute(account: AccountContext) -> None:
    created = (await account.post("/api/tokens", json={"name": "used", "permissions": [READ]})).json()
    assert created["lastUsedAt"] is None
    assert (await account.get("/api/tickets", token=created["token"])).status_code == 200
    first = (await account.get(f"/api/tokens/{created['id']}")).json()["lastUsedAt"]
    assert first is not None
    assert (await account.get("/api/tickets", token=created["token"])).status_code == 200
    assert (await account.get(f"/api/tokens/{created['id']}")).json()["lastUsedAt"] == first


async def test_token_responses_are_never_cached(account: AccountContext) -> None:
    created = await account.post("/api/tokens", json={"name": "cached?", "permissions": [READ]})
    token_id = created.json()["id"]
    for response in (created, await account.get("/api/tokens"), await account.get(f"/api/tokens/{token_id}"),
                     await account.delete(f"/api/tokens/{token_id}")):
        assert response.headers.get("cache-control") == "no-store", response.request.url
