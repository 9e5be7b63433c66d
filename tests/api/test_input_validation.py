"""Input that looks valid but names something that does not exist or can never happen: time zones
that are not places, and SLA targets a calendar never reaches — 422 when saved, naming the field."""

from __future__ import annotations

from tests.conftest import AccountContext

ONE_MINUTE_A_WEEK = {"name": "Barely open", "timezone": "Europe/Berlin", "weeklyHours": {"mon": [["09:00", "09:01"]]}}


async def test_only_real_iana_time_zones_are_accepted(account: AccountContext) -> None:
    for zone in ("localtime", "Factory", "posixrules", "posix/Europe/Berlin", "Mars/Olympus_Mons"):
        response = await account.post("/api/sla/calendars", json={**ONE_MINUTE_A_WEEK, "timezone": zone})
        assert response.status_code == 422, (zone, response.text)
        assert "timezone" in [d["field"] for d in response.json()["details"]], response.json()
    ok = await account.post("/api/sla/calendars", json={**ONE_MINUTE_A_WEEK, "timezone": "America/Sao_Paulo"})
    assert ok.status_code == 201, ok.text


async def test_an_sla_target_the_calendar_never_reaches_is_refused_when_saved(account: AccountContext) -> None:
    calendar = await account.post("/api/sla/calendars", json=ONE_MINUTE_A_WEEK)
    assert calendar.status_code == 201, calendar.text
    calendar_id = calendar.json()["id"]
    before = (await account.get("/api/sla/policies/low")).json()

    never = await account.request("PUT", "/api/sla/policies/low", json={"calendarId": calendar_id, "resolutionMinutes": 100_000})
    assert never.status_code == 422, never.text
    assert [d["field"] for d in never.json()["details"]] == ["resolutionMinutes"]
    assert (await account.get("/api/sla/policies/low")).json() == before  # nothing applied

    reachable = await account.request("PUT", "/api/sla/policies/low", json={"calendarId": calendar_id,
                                                                 "firstResponseMinutes": 5, "resolutionMinutes": 60})
    assert reachable.status_code == 200, reachable.text

    office = {**ONE_MINUTE_A_WEEK, "name": "Office", "weeklyHours": {"mon": [["09:00", "17:00"]]}}
    wide = await account.post("/api/sla/calendars", json=office)
    assert (await account.request("PUT", "/api/sla/policies/medium", json={"calendarId": wide.json()["id"],
                                                                "resolutionMinutes": 50_000})).status_code == 200
    shrunk = await account.request("PUT", f"/api/sla/calendars/{wide.json()['id']}",
                                   json={"weeklyHours": {"mon": [["09:00", "09:05"]]}})
    assert shrunk.status_code == 422 and shrunk.json()["details"][0]["field"] == "weeklyHours", shrunk.text
