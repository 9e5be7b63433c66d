"""Automation rules through the API: validation naming the exact part, isolation, statistics, the
brief's auto-assignment, ordering, a failed rule rolled back alone, the loop guard, the audit
trail and timeline, dry runs that write nothing and equal the real run."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.conftest import AccountContext

RULES = "/api/tickets/automation-rules"


def rule(**overrides: Any) -> dict[str, Any]:
    return {"name": "Urgent to the on-call team", "trigger": "ticket_created",
            "conditions": [{"field": "priority", "operator": "equals", "value": "urgent"}],
            "actions": [{"type": "add_tags", "tags": ["hot"]}], **overrides}


def rows(database_url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url, autocommit=True) as db:
        return db.execute(query, params).fetchall()


async def make_team(account: AccountContext, name: str = "On call") -> int:
    response = await account.post("/api/teams", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def create_rule(account: AccountContext, **overrides: Any) -> dict[str, Any]:
    response = await account.post(RULES, json=rule(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


async def test_an_invalid_rule_is_refused_naming_the_exact_part(account: AccountContext,
                                                               other_account: AccountContext) -> None:
    foreign_team = await make_team(other_account, "Elsewhere")
    foreign_user = other_account.admin_user_id
    foreign_rotation = (await other_account.post("/api/rotations", json={"name": "Theirs", "members": []})).json()["id"]
    cases = [
        (rule(trigger="ticket_exploded"), "trigger"),
        (rule(conditions=[{"field": "priority", "operator": "equals", "value": "urgent"},
                          {"field": "priority", "operator": "resembles", "value": "x"}]), "conditions[1].operator"),
        (rule(conditions=[{"field": "customFields.plan", "operator": "equals", "value": "gold"},
                          {"field": "priority", "operator": "equals", "value": 3}]), "conditions[1].value"),
        (rule(actions=[{"type": "assign_to_team"}]), "actions[0].teamId"),
        (rule(actions=[{"type": "teleport"}]), "actions[0].type"),
        (rule(actions=[{"type": "assign_to_team", "teamId": foreign_team}]), "actions[0].teamId"),
        (rule(actions=[{"type": "assign_to_user", "userId": foreign_user}]), "actions[0].userId"),
        (rule(actions=[{"type": "assign_to_rotation", "rotationId": foreign_rotation}]), "actions[0].rotationId"),
        (rule(trigger="time_in_status", triggerConfig={"status": "resolved", "afterMinutes": "soon"}),
         "triggerConfig.afterMinutes"),
    ]
    for body, field in cases:
        response = await account.post(RULES, json=body)
        assert response.status_code == 422, (body, response.text)
        assert [d["field"] for d in response.json()["details"]] == [field], (body, response.json())
    assert (await account.post(RULES, json=rule(), token=account.tokens["write"])).status_code == 403
    assert (await account.get(RULES)).json()["data"] == []


async def test_rules_are_listed_filtered_read_replaced_and_deleted_within_their_account(
        account: AccountContext, other_account: AccountContext) -> None:
    created = await create_rule(account, description="page the on-call team")
    closer = await create_rule(account, name="Auto-close", trigger={"type": "time_in_status", "status": "resolved",
                                                                     "afterMinutes": 10080},
                               conditions=[], actions=[{"type": "change_status", "status": "closed"}], enabled=False)
    assert closer["trigger"] == "time_in_status"
    assert closer["triggerConfig"] == {"status": "resolved", "afterMinutes": 10080}
    assert (await other_account.get(f"{RULES}/{created['id']}")).status_code == 404
    by_trigger = (await account.get(f"{RULES}?trigger=time_in_status")).json()["data"]
    assert [r["id"] for r in by_trigger] == [closer["id"]]
    assert [r["id"] for r in (await account.get(f"{RULES}?enabled=true")).json()["data"]] == [created["id"]]
    assert [r["id"] for r in (await account.get(f"{RULES}?search=ON-CALL")).json()["data"]] == [created["id"]]
    assert (await account.get(f"{RULES}?trigger=nonsense")).status_code == 422
    replaced = await account.request("PUT", f"{RULES}/{created['id']}", json=rule(executionOrder=4),
                                     headers={"If-Match": "1"})
    assert replaced.status_code == 200 and replaced.json()["executionOrder"] == 4 and replaced.json()["version"] == 2
    assert (await account.request("PUT", f"{RULES}/{created['id']}", json=rule(),
                                  headers={"If-Match": "1"})).status_code == 409
    fetched = (await account.get(f"{RULES}/{created['id']}")).json()
    assert fetched["statistics"] == {"totalExecutions": 0, "successfulExecutions": 0, "failedExecutions": 0,
                                     "lastExecutedAt": None, "averageExecutionTime": 0.0}
    assert (await account.delete(f"{RULES}/{created['id']}")).status_code == 204
    assert (await account.get(f"{RULES}/{created['id']}")).status_code == 404


async def test_an_idempotency_key_creates_one_rule(account: AccountContext) -> None:
    first = await account.post(RULES, json=rule(), headers={"Idempotency-Key": "rule-1"})
    again = await account.post(RULES, json=rule(), headers={"Idempotency-Key": "rule-1"})
    assert first.status_code == again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    other_body = await account.post(RULES, json=rule(name="Another"), headers={"Idempotency-Key": "rule-1"})
    assert other_body.status_code == 422 and other_body.json()["details"][0]["field"] == "Idempotency-Key"
    assert len((await account.get(RULES)).json()["data"]) == 1


async def test_an_urgent_ticket_is_assigned_to_a_team_on_creation_and_the_audit_trail_shows_it(
        account: AccountContext) -> None:
    team = await make_team(account)
    created = await create_rule(account, actions=[{"type": "assign_to_team", "teamId": team}])
    ticket = await account.create_ticket(subject="Payment processing error", priority="urgent")
    assert ticket["assignedToTeamId"] == team and ticket["version"] == 1
    quiet = await account.create_ticket(subject="Question", priority="low")
    assert quiet["assignedToTeamId"] is None

    timeline = (await account.get(f"/api/tickets/{ticket['id']}/timeline")).json()["data"]
    by_rule = [(e["eventType"], e.get("field")) for e in timeline if e["actor"] == f"automation:{created['id']}"]
    assert by_rule == [("automation_executed", None), ("field_changed", "assignedToTeamId")]
    executions = (await account.get(f"{RULES}/{created['id']}/executions")).json()
    assert [(e["ticketId"], e["executionStatus"]) for e in executions["data"]] == [
        (quiet["id"], "skipped"), (ticket["id"], "success")]
    success = executions["data"][1]
    assert success["before"] == {"assignedToTeamId": None} and success["after"] == {"assignedToTeamId": team}
    assert success["causedBy"]["event"] == "ticket_created" and success["conditionResults"][0]["actualValue"] == "urgent"
    assert len({e["id"] for e in executions["data"]}) == 2  # ids are unique across skipped and run evaluations
    only_skipped = (await account.get(f"{RULES}/{created['id']}/executions?executionStatus=skipped")).json()
    assert [e["ticketId"] for e in only_skipped["data"]] == [quiet["id"]]
    assert only_skipped["pagination"]["total"] == 1
    on_ticket = (await account.get(f"{RULES}/{created['id']}/executions?ticketId={ticket['id']}")).json()["data"]
    assert [e["executionStatus"] for e in on_ticket] == ["success"]
    assert (await account.get(f"{RULES}/{created['id']}/executions?executionStatus=maybe")).status_code == 422
    stats = (await account.get(f"{RULES}/{created['id']}")).json()["statistics"]
    assert (stats["totalExecutions"], stats["successfulExecutions"], stats["failedExecutions"]) == (1, 1, 0)
    assert stats["lastExecutedAt"] is not None


async def test_every_evaluation_of_a_write_is_stored_with_its_outcome(account: AccountContext,
                                                                      database_url: str) -> None:
    quiet = [await create_rule(account, name=f"Plan {plan}", trigger="ticket_updated", executionOrder=index,
                               conditions=[{"field": "customFields.plan", "operator": "equals", "value": plan}])
             for index, plan in enumerate(("gold", "silver", "bronze"))]
    firing = await create_rule(account, name="Any edit", trigger="ticket_updated", executionOrder=9,
                               conditions=[{"field": "priority", "operator": "equals", "value": "medium"}])
    ticket = await account.create_ticket(priority="medium")
    patched = await account.patch(f"/api/tickets/{ticket['id']}", json={"subject": "Edited"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["tags"] == ["hot"]
    for created, plan in zip(quiet, ("gold", "silver", "bronze")):
        # Skipped for the PATCH (depth 1) and again for the tag the firing rule added (depth 2).
        evaluations = sorted((await account.get(f"{RULES}/{created['id']}/executions")).json()["data"],
                             key=lambda e: e["depth"])
        assert [(e["ticketId"], e["executionStatus"], e["depth"]) for e in evaluations] == [
            (ticket["id"], "skipped", 1), (ticket["id"], "skipped", 2)]
        assert [e["causedBy"] for e in evaluations] == [
            {"kind": "event", "actor": "user", "event": "field_changed"},
            {"kind": "execution", "ruleId": firing["id"], "depth": 1, "event": "field_changed"}]
        for evaluation in evaluations:
            assert evaluation["conditionResults"] == [{"field": "customFields.plan", "operator": "equals",
                                                       "value": plan, "actualValue": None, "matched": False}]
            assert evaluation["executionTime"] >= 0
    ran = (await account.get(f"{RULES}/{firing['id']}/executions")).json()["data"]
    assert [(e["executionStatus"], e["after"]) for e in ran] == [("success", {"tags": ["hot"]})]
    # The write's outcome, its skipped evaluations (one row) and the one that ran, all committed.
    assert rows(database_url, "SELECT count(*) FROM applied_commands WHERE ticket_id = %s", ticket["id"]) == [(2,)]
    # The skipped evaluations of a write in one row, here two: each rule was skipped twice, and a row
    # holds a rule once (each evaluation has the id of its own row).
    assert rows(database_url, "SELECT rule_ids FROM automation_skips WHERE ticket_id = %s ORDER BY id",
                ticket["id"]) == [([r["id"] for r in quiet],)] * 2
    assert rows(database_url, "SELECT rule_id, status FROM automation_executions WHERE ticket_id = %s",
                ticket["id"]) == [(firing["id"], "success")]


async def test_a_rule_skipped_twice_in_one_write_lists_two_evaluations_with_their_own_ids(
        account: AccountContext) -> None:
    quiet = await create_rule(account, name="Gold plan", trigger="ticket_updated", executionOrder=1,
                              conditions=[{"field": "customFields.plan", "operator": "equals", "value": "gold"}])
    await create_rule(account, name="Any edit", trigger="ticket_updated", executionOrder=2, conditions=[])
    other = await create_rule(account, name="Silver plan", trigger="ticket_updated", executionOrder=3,
                              conditions=[{"field": "customFields.plan", "operator": "equals", "value": "silver"}])
    ticket = await account.create_ticket()
    for subject in ("First edit", "Second edit"):  # each PATCH: skipped at depth 1 and at depth 2
        patched = await account.patch(f"/api/tickets/{ticket['id']}", json={"subject": subject})
        assert patched.status_code == 200, patched.text
    listed = (await account.get(f"{RULES}/{quiet['id']}/executions")).json()
    assert listed["pagination"]["total"] == 3  # depth 1 + 2 of the first PATCH, depth 1 of the second (fired once)
    assert sorted(e["depth"] for e in listed["data"]) == [1, 1, 2]
    ids = [e["id"] for e in listed["data"]]
    theirs = [e["id"] for e in (await account.get(f"{RULES}/{other['id']}/executions")).json()["data"]]
    assert len(set(ids)) == 3 and len(set(theirs)) == len(theirs) == 3  # every evaluation its own id
    one_by_one = [(await account.get(f"{RULES}/{quiet['id']}/executions?pageSize=1&page={page}")).json()["data"]
                  for page in (1, 2, 3)]
    assert [page[0]["id"] for page in one_by_one] == ids  # a stable order across pages


async def test_rules_run_in_order_and_a_failed_rule_is_rolled_back_alone(account: AccountContext) -> None:
    failing = await create_rule(account, name="Reopen (cannot)", trigger="status_changed", conditions=[],
                                actions=[{"type": "add_tags", "tags": ["half-done"]},
                                         {"type": "change_status", "status": "open"}], executionOrder=1)
    tagging = await create_rule(account, name="Tag resolved", trigger="status_changed", executionOrder=2,
                                conditions=[{"field": "status", "operator": "changed_to", "value": "resolved"}],
                                actions=[{"type": "add_tags", "tags": ["done"]},
                                         {"type": "set_custom_field", "key": "closedBy", "value": "automation"}])
    ticket = await account.create_ticket()
    patched = await account.patch(f"/api/tickets/{ticket['id']}", json={"status": "resolved"})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["status"] == "resolved" and body["tags"] == ["done"] and body["customFields"] == {"closedBy": "automation"}
    assert body["version"] == ticket["version"] + 1
    failed = (await account.get(f"{RULES}/{failing['id']}/executions?executionStatus=failed")).json()["data"]
    assert len(failed) == 1 and "resolved" in failed[0]["errorMessage"]
    stats = (await account.get(f"{RULES}/{failing['id']}")).json()["statistics"]
    assert (stats["totalExecutions"], stats["failedExecutions"]) == (1, 1)
    assert (await account.get(f"{RULES}/{tagging['id']}/executions")).json()["data"][0]["executionStatus"] == "success"


async def test_a_cascade_of_rules_stops_at_depth_ten_with_loop_stopped(account: AccountContext) -> None:
    chain = []
    for link in range(12):  # tag t<n> → tag t<n+1>, the last links first so each fires one step later
        chain.append(await create_rule(account, name=f"link {link}", trigger="ticket_updated", executionOrder=-link,
                                       conditions=[{"field": "tags", "operator": "contains", "value": f"t{link}"}],
                                       actions=[{"type": "add_tags", "tags": [f"t{link + 1}"]}]))
    ticket = await account.create_ticket()
    patched = (await account.patch(f"/api/tickets/{ticket['id']}", json={"tags": ["t0"]})).json()
    assert patched["tags"] == [f"t{n}" for n in range(11)]
    stopped = (await account.get(f"{RULES}/{chain[10]['id']}/executions?executionStatus=loop_stopped")).json()["data"]
    assert len(stopped) == 1 and stopped[0]["depth"] == 11
    assert (await account.get(f"{RULES}/{chain[11]['id']}/executions")).json()["data"][0]["executionStatus"] == "skipped"


async def test_a_dry_run_writes_nothing_and_equals_the_real_run(account: AccountContext, database_url: str) -> None:
    team = await make_team(account)
    tested = await create_rule(account, name="Escalate VIP", trigger="ticket_updated",
                               conditions=[{"field": "tags", "operator": "contains", "value": "vip"}],
                               actions=[{"type": "change_priority", "priority": "increase"},
                                        {"type": "add_internal_note", "body": "VIP: priority raised"},
                                        {"type": "send_notification", "channels": ["in_app"], "to": "user",
                                         "userId": account.admin_user_id}])
    follower = await create_rule(account, name="High to team", trigger="priority_changed",
                                 conditions=[{"field": "priority", "operator": "in", "value": ["high", "urgent"]}],
                                 actions=[{"type": "assign_to_team", "teamId": team}])
    ticket = await account.create_ticket(priority="medium", tags=["vip"])
    counts = ("SELECT (SELECT count(*) FROM automation_executions WHERE ticket_id = %(t)s),"
              " (SELECT count(*) FROM ticket_events WHERE ticket_id = %(t)s),"
              " (SELECT count(*) FROM notifications WHERE ticket_id = %(t)s),"
              " (SELECT count(*) FROM ticket_comments WHERE ticket_id = %(t)s)")
    before = rows(database_url, counts.replace("%(t)s", str(ticket["id"])))

    dry = await account.post(f"{RULES}/{tested['id']}/test", json={"ticketId": ticket["id"]})
    assert dry.status_code == 200, dry.text
    result = dry.json()
    assert result["wouldExecute"] is True and result["conditionsMatched"] is True
    assert result["conditionResults"] == [{"field": "tags", "operator": "contains", "value": "vip",
                                           "actualValue": ["vip"], "matched": True}]
    assert [a["type"] for a in result["actionsToPerform"]] == ["change_priority", "add_internal_note",
                                                                "send_notification"]
    assert [(c["ruleId"], c["executionStatus"]) for c in result["cascade"]] == [(follower["id"], "success")]
    assert rows(database_url, counts.replace("%(t)s", str(ticket["id"]))) == before
    assert (await account.get(f"/api/tickets/{ticket['id']}")).json()["version"] == ticket["version"]

    unsaved = await account.post(f"{RULES}/test", json={"ticketId": ticket["id"], "rule": {
        "trigger": "ticket_updated", "actions": [{"type": "add_tags", "tags": ["seen"]}],
        "conditions": [{"field": "priority", "operator": "bogus"}]}})
    assert unsaved.status_code == 422 and unsaved.json()["details"][0]["field"] == "rule.conditions[0].operator"

    real = (await account.patch(f"/api/tickets/{ticket['id']}", json={"description": "any update"})).json()
    # The same pipeline: the rules, then the SLA clock (the new priority's policy), then the rules
    # its thresholds would trigger. Only the PATCH's own field and the instant differ.
    same = [k for k in result["resultingTicket"] if k not in ("updatedAt", "description")]
    assert {k: real[k] for k in same} == {k: result["resultingTicket"][k] for k in same}
    assert real["slaPolicyId"] != ticket["slaPolicyId"]  # re-targeted, in both
    assert real["priority"] == "high" and real["assignedToTeamId"] == team and real["internalNoteCount"] == 1
    notes = rows(database_url, "SELECT body, author_type FROM ticket_comments WHERE ticket_id = %s", ticket["id"])
    assert notes == [("VIP: priority raised", "system")]


async def eventually(check: Any, timeout: float = 20) -> Any:
    import asyncio
    import time
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


async def test_a_customer_comment_rule_sees_the_comment_and_notifies_the_team_manager(
        account: AccountContext, database_url: str) -> None:
    manager = (await account.post("/api/users", json={"name": "Mia", "email": "mia@example.com"})).json()["id"]
    team = (await account.post("/api/teams", json={"name": "Billing", "managerUserId": manager})).json()["id"]
    created = await create_rule(account, name="Refund requests", trigger="comment_added", conditions=[
        {"field": "comment.authorType", "operator": "equals", "value": "customer"},
        {"field": "comment.body", "operator": "contains", "value": "refund"}],
        actions=[{"type": "add_tags", "tags": ["refund"]},
                 {"type": "send_notification", "channels": ["in_app"], "to": "manager",
                  "subject": "Refund requested"}])
    ticket = await account.create_ticket(assignedToTeamId=team)
    path = f"/api/tickets/{ticket['id']}"
    await account.post(f"{path}/comments", json={"body": "A refund? Let me check"})
    assert (await account.get(path)).json()["tags"] == []  # an agent's comment: the rule is skipped
    customer = await account.post(f"{path}/comments", json={"body": "I want a REFUND please", "authorType": "customer"})
    assert customer.status_code == 201 and (await account.get(path)).json()["tags"] == ["refund"]

    def notified() -> list[tuple[Any, ...]]:
        return rows(database_url, "SELECT user_id, kind, title FROM notifications WHERE ticket_id = %s", ticket["id"])

    assert await eventually(notified) == [(manager, "automation", f"[{ticket['ticketNumber']}] Refund requested")]
    statuses = [e["executionStatus"] for e in (await account.get(f"{RULES}/{created['id']}/executions")).json()["data"]]
    assert statuses == ["success", "skipped"]


async def test_a_rule_assigns_from_a_rotation_which_moves_on_and_a_dry_run_does_not_move_it(
        account: AccountContext) -> None:
    first = (await account.post("/api/users", json={"name": "Ann", "email": "ann@example.com"})).json()["id"]
    second = (await account.post("/api/users", json={"name": "Bob", "email": "bob@example.com"})).json()["id"]
    rotation = (await account.post("/api/rotations", json={"name": "Tier 1", "members": [
        {"userId": first}, {"userId": second}]})).json()["id"]
    created = await create_rule(account, name="Round robin", conditions=[],
                                actions=[{"type": "assign_to_rotation", "rotationId": rotation}])
    assigned = [(await account.create_ticket())["assignedToUserId"] for _ in range(3)]
    assert assigned == [first, second, first]
    upcoming = (await account.get(f"/api/rotations/{rotation}/next")).json()["userId"]
    ticket = await account.create_ticket(assignedToUserId=None)
    after_create = (await account.get(f"/api/rotations/{rotation}/next")).json()["userId"]
    dry = (await account.post(f"{RULES}/{created['id']}/test", json={"ticketId": ticket["id"]})).json()
    assert dry["resultingTicket"]["assignedToUserId"] == after_create == upcoming ^ first ^ second
    assert (await account.get(f"/api/rotations/{rotation}/next")).json()["userId"] == after_create


async def test_a_rule_pauses_the_sla_clock(account: AccountContext) -> None:
    await create_rule(account, name="On hold", trigger="ticket_updated", conditions=[
        {"field": "tags", "operator": "contains", "value": "on-hold"}],
        actions=[{"type": "pause_sla", "reason": "waiting on a supplier"}])
    ticket = await account.create_ticket(priority="high")
    assert ticket["slaStatus"] == "on_time"
    patched = (await account.patch(f"/api/tickets/{ticket['id']}", json={"tags": ["on-hold"]})).json()
    assert patched["slaStatus"] == "paused" and patched["slaPausedAt"] is not None


async def test_a_rule_assigning_a_user_deleted_since_fails_alone_and_the_write_goes_through(
        account: AccountContext) -> None:
    leaver = (await account.post("/api/users", json={"name": "Lee", "email": "lee@example.com"})).json()["id"]
    assigning = await create_rule(account, name="To Lee", conditions=[],
                                  actions=[{"type": "assign_to_user", "userId": leaver}])
    tagging = await create_rule(account, name="Tag", conditions=[], executionOrder=5,
                                actions=[{"type": "add_tags", "tags": ["seen"]}])
    assert (await account.delete(f"/api/users/{leaver}")).status_code == 204
    ticket = await account.create_ticket()
    assert ticket["assignedToUserId"] is None and ticket["tags"] == ["seen"]
    [failed] = (await account.get(f"{RULES}/{assigning['id']}/executions")).json()["data"]
    assert failed["executionStatus"] == "failed" and f"no user with id {leaver}" in failed["errorMessage"]
    assert (await account.get(f"{RULES}/{tagging['id']}/executions")).json()["data"][0]["success"] is True


async def test_a_dry_run_emails_no_one_and_the_real_run_emails_the_receiver(account: AccountContext) -> None:
    import asyncio
    import time

    from tests.api.test_notifications import configure, email_settings, smtp_server

    boss = (await account.post("/api/users", json={"name": "Bo", "email": "bo@example.com"})).json()["id"]
    async with smtp_server() as (inbox, port):
        await configure(account, email=email_settings(port))
        rule_body = rule(name="Tell Bo about VIPs", trigger="ticket_updated",
                         conditions=[{"field": "tags", "operator": "contains", "value": "vip"}],
                         actions=[{"type": "send_notification", "channels": ["email"], "to": "user", "userId": boss,
                                   "subject": "VIP ticket", "message": "A VIP needs you"}])
        ticket = await account.create_ticket(tags=["vip"])
        unsaved = await account.post(f"{RULES}/test", json={"ticketId": ticket["id"], "rule": {
            k: v for k, v in rule_body.items() if k != "name"}})
        assert unsaved.status_code == 200 and unsaved.json()["wouldExecute"] is True
        created = await create_rule(account, **rule_body)
        saved = await account.post(f"{RULES}/{created['id']}/test", json={"ticketId": ticket["id"]})
        assert saved.json()["wouldExecute"] is True
        await asyncio.sleep(1.0)
        assert inbox.messages == []  # neither dry run sent anything

        await account.patch(f"/api/tickets/{ticket['id']}", json={"description": "now for real"})
        deadline = time.monotonic() + 30
        while not inbox.to("bo@example.com") and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        [mail] = inbox.to("bo@example.com")
        assert "VIP ticket" in mail["Subject"] and "A VIP needs you" in mail.get_content()
    # A delivery is marked sent after the receiver took the message: wait for the row to say so.
    expected = [("email", "sent", f"automation:{created['id']}")]
    deadline = time.monotonic() + 30
    while True:
        sent = (await account.get(f"/api/notifications/deliveries?ticketId={ticket['id']}")).json()["data"]
        found = [(d["channel"], d["status"], d["reason"]) for d in sent]
        if found == expected or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert found == expected
