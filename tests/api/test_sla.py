"""SLA over HTTP (spec §3): policies and calendars, due dates on tickets, pause/resume, compliance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pulse.db import SessionFactory
from pulse.domain.calendar import BusinessCalendar, add_business_minutes
from pulse.models import Ticket
from pulse.repositories.tickets import TicketRepository
from tests.conftest import AccountContext

OFFICE = {"name": "Office", "timezone": "Europe/Paris",
          "weeklyHours": {"mon": [["09:00", "12:00"], ["13:00", "17:00"]], "fri": [["09:00", "15:00"]]}}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def timeline_types(account: AccountContext, ticket_id: int) -> list[str]:
    body = (await account.get(f"/api/tickets/{ticket_id}/timeline?pageSize=200")).json()
    return [entry["eventType"] for entry in body["data"]]


# -- policies -----------------------------------------------------------------------------------------

async def test_each_account_starts_with_the_briefs_policy_per_priority(account: AccountContext) -> None:
    response = await account.get("/api/sla/policies", token=account.tokens["read"])
    assert response.status_code == 200, response.text
    policies = response.json()["data"]
    assert [(p["priority"], p["firstResponseMinutes"], p["resolutionMinutes"]) for p in policies] == [
        ("urgent", 15, 240), ("high", 60, 480), ("medium", 240, 1440), ("low", 480, 2880)]
    assert all(p["atRiskPercent"] == 80 and p["calendarId"] is None and p["pauseStatuses"] == ["waiting_customer"]
               and p["conditions"] is None for p in policies)
    one = await account.get("/api/sla/policies/urgent", token=account.tokens["read"])
    assert one.status_code == 200 and one.json()["firstResponseMinutes"] == 15
    assert (await account.get("/api/sla/policies", token=account.tokens["settings"])).status_code == 403


async def test_a_ticket_is_created_with_its_due_dates(account: AccountContext) -> None:
    ticket = await account.create_ticket(priority="high")
    created = at(ticket["createdAt"])
    assert ticket["slaStatus"] == "on_time" and ticket["slaPolicyId"] is not None
    assert at(ticket["slaFirstResponseDue"]) == created + timedelta(minutes=60)
    assert at(ticket["slaResolutionDue"]) == created + timedelta(minutes=480)
    assert ticket["slaFirstResponseMet"] is None and ticket["slaResolutionMet"] is None
    assert "sla_started" in await timeline_types(account, ticket["id"])


async def test_managers_change_targets_per_priority_and_only_managers_may(account: AccountContext) -> None:
    denied = await account.request("PUT", "/api/sla/policies/high", json={"firstResponseMinutes": 30},
                                   token=account.tokens["write"])
    assert denied.status_code == 403
    changed = await account.request("PUT", "/api/sla/policies/high", token=account.tokens["settings"],
                                    json={"firstResponseMinutes": 30, "atRiskPercent": 50})
    assert changed.status_code == 200, changed.text
    policy = changed.json()
    assert (policy["firstResponseMinutes"], policy["resolutionMinutes"], policy["atRiskPercent"]) == (30, 480, 50)
    assert policy["version"] == 2
    stale = await account.request("PUT", f"/api/sla/policies/{policy['id']}", json={"resolutionMinutes": 100},
                                  headers={"If-Match": "1"})
    assert stale.status_code == 409 and stale.json()["error"] == "version_conflict"

    ticket = await account.create_ticket(priority="high")
    assert at(ticket["slaFirstResponseDue"]) == at(ticket["createdAt"]) + timedelta(minutes=30)

    several = await account.request("PUT", "/api/sla/policies", json=[
        {"priority": "low", "firstResponseMinutes": 600}, {"priority": "urgent", "resolutionMinutes": 120}])
    assert several.status_code == 200, several.text
    by_priority = {p["priority"]: p for p in several.json()["data"]}
    assert by_priority["low"]["firstResponseMinutes"] == 600 and by_priority["urgent"]["resolutionMinutes"] == 120
    wrapped = await account.request("PUT", "/api/sla/policies",
                                    json={"policies": [{"priority": "medium", "pauseStatuses": []}]})
    assert wrapped.status_code == 200, wrapped.text


async def test_bad_policy_input_is_a_422_naming_the_field(account: AccountContext) -> None:
    cases: list[tuple[str, Any, str]] = [
        ("/api/sla/policies/high", {"firstResponseMinutes": 0}, "firstResponseMinutes"),
        ("/api/sla/policies/high", {"atRiskPercent": 101}, "atRiskPercent"),
        ("/api/sla/policies/high", {"pauseStatuses": ["resolved"]}, "pauseStatuses"),
        ("/api/sla/policies/high", {"calendarId": 999999}, "calendarId"),
        ("/api/sla/policies/high", {"conditions": {"tags": ["vip"]}}, "conditions"),
        ("/api/sla/policies/high", {"surprise": 1}, "surprise"),
        ("/api/sla/policies", [{"priority": "high"}, {"priority": "high"}], "1.priority"),
    ]
    for path, body, field in cases:
        response = await account.request("PUT", path, json=body)
        assert response.status_code == 422, (body, response.text)
        assert field in [d["field"] for d in response.json()["details"]], (body, response.json())
    assert (await account.request("PUT", "/api/sla/policies/critical", json={})).status_code == 404


async def test_a_conditional_policy_wins_for_matching_tickets_first_by_order(account: AccountContext) -> None:
    vip = await account.post("/api/sla/policies", json={
        "name": "VIP", "conditions": {"tags": ["VIP"]}, "firstResponseMinutes": 5, "resolutionMinutes": 60,
        "order": 2})
    assert vip.status_code == 201, vip.text
    assert vip.json()["conditions"] == {"tags": ["vip"]} and vip.json()["priority"] is None
    vip_urgent = await account.post("/api/sla/policies", json={
        "name": "VIP urgent", "conditions": {"tags": ["vip"], "priorities": ["urgent"]},
        "firstResponseMinutes": 2, "resolutionMinutes": 30, "order": 1})
    assert vip_urgent.status_code == 201, vip_urgent.text

    plain = await account.create_ticket(priority="urgent")
    tagged = await account.create_ticket(priority="low", tags=["vip"])
    tagged_urgent = await account.create_ticket(priority="urgent", tags=["vip"])
    assert at(plain["slaFirstResponseDue"]) - at(plain["createdAt"]) == timedelta(minutes=15)
    assert tagged["slaPolicyId"] == vip.json()["id"]
    assert at(tagged["slaFirstResponseDue"]) - at(tagged["createdAt"]) == timedelta(minutes=5)
    assert tagged_urgent["slaPolicyId"] == vip_urgent.json()["id"]

    # Tagging a running ticket re-targets it at that update, keeping the time already used.
    retagged = await account.patch(f"/api/tickets/{plain['id']}", json={"tags": ["vip"]})
    assert retagged.json()["slaPolicyId"] == vip_urgent.json()["id"]
    assert at(retagged.json()["slaFirstResponseDue"]) == at(plain["createdAt"]) + timedelta(minutes=2)

    disabled = await account.request("PUT", f"/api/sla/policies/{vip_urgent.json()['id']}",
                                     json={"enabled": False, "order": 5, "conditions": {"tags": ["vip", "gold"]}})
    assert disabled.status_code == 200, disabled.text
    assert (disabled.json()["enabled"], disabled.json()["order"]) == (False, 5)
    assert disabled.json()["conditions"] == {"tags": ["vip", "gold"]}
    assert (await account.create_ticket(priority="urgent", tags=["vip"]))["slaPolicyId"] == vip.json()["id"]

    empty = await account.post("/api/sla/policies", json={
        "name": "Nothing", "conditions": {}, "firstResponseMinutes": 5, "resolutionMinutes": 60})
    assert empty.status_code == 422
    base = (await account.get("/api/sla/policies/urgent")).json()
    assert (await account.delete(f"/api/sla/policies/{base['id']}")).status_code == 409
    assert (await account.delete(f"/api/sla/policies/{vip.json()['id']}")).status_code == 204
    listed = (await account.get("/api/sla/policies")).json()["data"]
    assert [p["name"] for p in listed if p["conditions"]] == ["VIP urgent"]


# -- calendars ----------------------------------------------------------------------------------------

async def test_calendars_validate_time_zone_windows_and_holiday_country(account: AccountContext) -> None:
    cases = [
        ({**OFFICE, "timezone": "Mars/Olympus"}, "timezone"),
        ({**OFFICE, "weeklyHours": {"mon": [["17:00", "09:00"]]}}, "weeklyHours"),
        ({**OFFICE, "weeklyHours": {"mon": [["09:00", "13:00"], ["12:00", "17:00"]]}}, "weeklyHours"),
        ({**OFFICE, "weeklyHours": {"someday": [["09:00", "17:00"]]}}, "weeklyHours"),
        ({**OFFICE, "weeklyHours": {"mon": [["9am", "5pm"]]}}, "weeklyHours"),
        ({**OFFICE, "weeklyHours": {}}, "weeklyHours"),
        ({**OFFICE, "holidayCountry": "XX"}, "holidayCountry"),
        ({**OFFICE, "holidays": ["2026-02-30"]}, "holidays.0"),
    ]
    for body, field in cases:
        response = await account.post("/api/sla/calendars", json=body, token=account.tokens["settings"])
        assert response.status_code == 422, (body, response.text)
        assert any(d["field"].startswith(field) for d in response.json()["details"]), (body, response.json())

    created = await account.post("/api/sla/calendars", json={**OFFICE, "holidays": ["2026-12-25"],
                                                              "holidayCountry": "fr"})
    assert created.status_code == 201, created.text
    calendar = created.json()
    assert calendar["holidayCountry"] == "FR" and calendar["holidays"] == ["2026-12-25"]
    assert calendar["weeklyHours"]["mon"] == [["09:00", "12:00"], ["13:00", "17:00"]]
    assert (await account.post("/api/sla/calendars", json=OFFICE, token=account.tokens["write"])).status_code == 403

    renamed = await account.request("PUT", f"/api/sla/calendars/{calendar['id']}", json={"name": "Paris office"})
    assert renamed.status_code == 200 and renamed.json()["version"] == 2
    assert renamed.json()["timezone"] == "Europe/Paris"

    used = await account.request("PUT", "/api/sla/policies/low", json={"calendarId": calendar["id"]})
    assert used.status_code == 200 and used.json()["calendarId"] == calendar["id"]
    refused = await account.delete(f"/api/sla/calendars/{calendar['id']}")
    assert refused.status_code == 409 and refused.json()["error"] == "calendar_in_use"
    await account.request("PUT", "/api/sla/policies/low", json={"calendarId": None})
    assert (await account.delete(f"/api/sla/calendars/{calendar['id']}")).status_code == 204
    assert (await account.get(f"/api/sla/calendars/{calendar['id']}")).status_code == 404


async def test_a_calendar_of_another_account_is_invisible(account: AccountContext,
                                                          other_account: AccountContext) -> None:
    calendar = (await account.post("/api/sla/calendars", json=OFFICE)).json()
    assert (await other_account.get(f"/api/sla/calendars/{calendar['id']}")).status_code == 404
    refused = await other_account.request("PUT", "/api/sla/policies/low", json={"calendarId": calendar["id"]})
    assert refused.status_code == 422


async def test_a_business_calendar_moves_due_dates_out_of_closed_hours(account: AccountContext) -> None:
    # Open nowhere but a single far-away weekday hour: due dates land inside that hour.
    calendar = (await account.post("/api/sla/calendars", json={
        "name": "Thin", "timezone": "UTC", "weeklyHours": {"wed": [["10:00", "11:00"]]}})).json()
    await account.request("PUT", "/api/sla/policies/medium", json={"calendarId": calendar["id"],
                                                                   "firstResponseMinutes": 30})
    ticket = await account.create_ticket(priority="medium")
    thin = BusinessCalendar(timezone="UTC", weekly_hours={"wed": [("10:00", "11:00")]})
    due = at(ticket["slaFirstResponseDue"])
    assert due == add_business_minutes(thin, at(ticket["createdAt"]), 30)
    assert due.weekday() == 2 and 10 <= due.hour <= 11


# -- the clock through the API ----------------------------------------------------------------------------

async def test_the_first_public_agent_reply_meets_first_response(account: AccountContext) -> None:
    ticket = await account.create_ticket(priority="urgent")
    note = await account.post(f"/api/tickets/{ticket['id']}/comments", json={"body": "hm", "isInternal": True})
    assert note.status_code == 201
    assert (await account.get(f"/api/tickets/{ticket['id']}")).json()["slaFirstResponseMet"] is None
    await account.post(f"/api/tickets/{ticket['id']}/comments", json={"body": "On it"})
    after = (await account.get(f"/api/tickets/{ticket['id']}")).json()
    assert after["slaFirstResponseMet"] is True and after["firstResponseTime"] == 0
    assert after["slaStatus"] == "on_time"

    resolved = await account.patch(f"/api/tickets/{ticket['id']}", json={"status": "resolved"})
    assert resolved.json()["slaResolutionMet"] is True and resolved.json()["resolutionTime"] == 0


async def test_waiting_on_the_customer_pauses_and_a_customer_reply_resumes(account: AccountContext) -> None:
    ticket = await account.create_ticket()
    waiting = (await account.patch(f"/api/tickets/{ticket['id']}", json={"status": "waiting_customer"})).json()
    assert waiting["slaStatus"] == "paused" and waiting["slaPausedAt"] is not None
    listed = (await account.get("/api/tickets?slaStatus=paused")).json()["tickets"]
    assert [t["id"] for t in listed] == [ticket["id"]]

    resume = await account.post(f"/api/tickets/{ticket['id']}/sla/resume", json={})
    assert resume.status_code == 409 and resume.json()["error"] == "sla_paused_by_status"

    await account.post(f"/api/tickets/{ticket['id']}/comments", json={"body": "here", "authorType": "customer"})
    back = (await account.get(f"/api/tickets/{ticket['id']}")).json()
    assert back["status"] == "in_progress" and back["slaStatus"] == "on_time" and back["slaPausedAt"] is None
    types = await timeline_types(account, ticket["id"])
    assert types.index("sla_paused") < types.index("sla_resumed")


async def test_agents_pause_and_resume_the_clock_by_hand(account: AccountContext) -> None:
    ticket = await account.create_ticket(priority="high")
    denied = await account.post(f"/api/tickets/{ticket['id']}/sla/pause", json={}, token=account.tokens["read"])
    assert denied.status_code == 403
    paused = await account.post(f"/api/tickets/{ticket['ticketNumber']}/sla/pause",
                                json={"reason": "waiting for the bank"}, token=account.tokens["write"])
    assert paused.status_code == 200, paused.text
    assert paused.json()["slaStatus"] == "paused" and paused.json()["version"] == ticket["version"]
    again = await account.post(f"/api/tickets/{ticket['id']}/sla/pause", json={"reason": "still"})
    assert again.status_code == 200 and again.json()["slaPausedAt"] == paused.json()["slaPausedAt"]

    resumed = await account.post(f"/api/tickets/{ticket['id']}/sla/resume")
    assert resumed.status_code == 200, resumed.text
    body = resumed.json()
    assert body["slaStatus"] == "on_time" and body["slaPausedAt"] is None
    assert at(body["slaFirstResponseDue"]) >= at(ticket["slaFirstResponseDue"])
    timeline = (await account.get(f"/api/tickets/{ticket['id']}/timeline")).json()["data"]
    pause = next(e for e in timeline if e["eventType"] == "sla_paused")
    assert pause["data"]["reason"] == "waiting for the bank" and pause["actorUserId"] == account.admin_user_id

    unknown = await account.post(f"/api/tickets/{ticket['id']}/sla/pause", json={"why": "x"})
    assert unknown.status_code == 422
    await account.patch(f"/api/tickets/{ticket['id']}", json={"status": "resolved"})
    stopped = await account.post(f"/api/tickets/{ticket['id']}/sla/pause", json={})
    assert stopped.status_code == 409 and stopped.json()["error"] == "sla_not_running"
    assert (await account.post("/api/tickets/999999999/sla/pause", json={})).status_code == 404


# -- compliance ---------------------------------------------------------------------------------------

async def _seed(sessions: SessionFactory, account: AccountContext, rows: list[dict[str, Any]]) -> None:
    """Report input written straight to the tickets table (the report only reads it)."""
    async with sessions() as session, session.begin():
        repository = TicketRepository(session)
        for number, row in enumerate(rows, start=1000):
            ticket_id, _ = await repository.allocate(account.account_id)
            session.add(Ticket(
                id=ticket_id, account_id=account.account_id, number=number, subject="seeded", status="resolved",
                priority=row["priority"], priority_rank=1, version=1, created_at=row["created_at"],
                updated_at=row["created_at"], sla_policy_id=1, assigned_to_team_id=row.get("team"),
                sla_first_response_met=row.get("fr"), sla_resolution_met=row.get("res"),
                first_response_time=row.get("frt"), resolution_time=row.get("rt"),
            ))


async def test_compliance_counts_met_and_breached_per_metric_with_breakdowns(
    account: AccountContext, sessions: SessionFactory
) -> None:
    team = (await account.post("/api/teams", json={"name": "Billing"})).json()["id"]
    monday = datetime(2026, 3, 2, 10, tzinfo=UTC)
    await _seed(sessions, account, [
        {"priority": "urgent", "created_at": monday, "fr": True, "res": True, "frt": 10, "rt": 100, "team": team},
        {"priority": "urgent", "created_at": monday + timedelta(hours=1), "fr": False, "res": True, "frt": 30,
         "rt": 200, "team": team},
        {"priority": "low", "created_at": monday + timedelta(days=1), "fr": True, "res": None, "frt": 20},
        {"priority": "low", "created_at": monday + timedelta(days=8), "fr": True, "res": False, "frt": 40, "rt": 900},
        {"priority": "low", "created_at": monday - timedelta(days=1), "fr": False},  # before the range
    ])
    response = await account.get("/api/sla/compliance?from=2026-03-02&to=2026-03-15")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["totalTickets"] == 4
    assert report["firstResponse"] == {"met": 3, "breached": 1, "complianceRate": 75.0}
    assert report["resolution"] == {"met": 2, "breached": 1, "complianceRate": 66.67}
    assert report["averageFirstResponseTime"] == 25.0 and report["averageResolutionTime"] == 400.0
    assert report["breakdown"] == []

    by_day = (await account.get("/api/sla/compliance?from=2026-03-02&to=2026-03-15&groupBy=day")).json()
    assert [(b["date"], b["totalTickets"]) for b in by_day["breakdown"]] == [
        ("2026-03-02", 2), ("2026-03-03", 1), ("2026-03-10", 1)]
    by_week = (await account.get("/api/sla/compliance?from=2026-03-02&to=2026-03-15&groupBy=week")).json()
    assert [(b["week"], b["totalTickets"]) for b in by_week["breakdown"]] == [("2026-03-02", 3), ("2026-03-09", 1)]
    by_priority = (await account.get("/api/sla/compliance?from=2026-03-02&to=2026-03-15&groupBy=priority")).json()
    assert [(b["priority"], b["firstResponse"]["complianceRate"]) for b in by_priority["breakdown"]] == [
        ("urgent", 50.0), ("low", 100.0)]
    by_team = (await account.get(
        f"/api/sla/compliance?from=2026-03-02&to=2026-03-15&groupBy=team&priority=urgent,low")).json()
    assert [(b["teamId"], b["totalTickets"]) for b in by_team["breakdown"]] == [(team, 2), (None, 2)]
    one_team = (await account.get(f"/api/sla/compliance?from=2026-03-02&to=2026-03-15&teamId={team}")).json()
    assert one_team["totalTickets"] == 2 and one_team["resolution"]["complianceRate"] == 100.0
    urgent = (await account.get("/api/sla/compliance?from=2026-03-02&to=2026-03-15&priority=urgent")).json()
    assert urgent["totalTickets"] == 2

    for query, field in (("groupBy=month", "groupBy"), ("priority=critical", "priority"),
                         ("from=yesterday", "from"), ("from=2026-03-05&to=2026-03-01", "from"),
                         ("colour=blue", "colour")):
        bad = await account.get(f"/api/sla/compliance?{query}")
        assert bad.status_code == 422, (query, bad.text)
        assert bad.json()["details"][0]["field"] == field
    assert (await account.get("/api/sla/compliance", token=account.tokens["settings"])).status_code == 403


async def test_a_change_stands_when_the_sla_clock_cannot_follow_it(account: AccountContext, database_url: str) -> None:
    """The clock moves in the write's transaction, behind a savepoint: a policy that no longer
    loads (here a row edited outside the API) costs the clock that step, not the change."""
    import psycopg

    ticket = await account.create_ticket(priority="low")
    broken = await account.post("/api/sla/policies", json={
        "name": "Edited by hand", "conditions": {"tags": ["gold"]}, "firstResponseMinutes": 5, "resolutionMinutes": 60})
    assert broken.status_code == 201, broken.text
    with psycopg.connect(database_url, autocommit=True) as db:
        db.execute("UPDATE sla_policies SET conditions = '{\"colour\": \"red\"}' WHERE id = %s", (broken.json()["id"],))

    changed = await account.patch(f"/api/tickets/{ticket['id']}", json={"subject": "Still saved", "priority": "high"})

    assert changed.status_code == 200, changed.text
    assert changed.json()["subject"] == "Still saved" and changed.json()["version"] == 2
    assert changed.json()["slaFirstResponseDue"] == ticket["slaFirstResponseDue"]  # the clock did not move
