"""Reports (spec §7, issue 14): ticket volume per bucket and the summary, against ticket histories
built through the real write pipeline (``TicketEngine``, one transaction per change, at chosen
instants) and compared with figures worked out by hand. What counts: docs/decisions.md, "Reports"."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from pulse.db import SessionFactory
from pulse.domain.changes import Actor, NewTicket, TicketChanges
from pulse.domain.commands import (
    AddCommentInput,
    CommentCommand,
    CreateCommand,
    CreateTicketInput,
    DeleteCommand,
    DeleteTicketInput,
    MergeIntoCommand,
    MergeIntoInput,
    SlaPauseCommand,
    UpdateCommand,
    UpdateTicketInput,
)
from pulse.domain.reports import COUNTS, SUMMARY_COUNTS, on_slot
from pulse.domain.tickets import AuthorType, TicketStatus
from pulse.repositories.reports import ReportQueries, ReportRollup
from pulse.repositories.tickets import TicketRepository
from pulse.services.ticket_engine import TicketEngine
from tests.conftest import AccountContext

AGENT = Actor(kind="user")


def at(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


class History:
    """Writes a ticket's history through the engine, each change at the instant given."""

    def __init__(self, sessions: SessionFactory, account_id: int) -> None:
        self.sessions, self.account_id = sessions, account_id
        self.numbers: dict[int, int] = {}

    def _ids(self, ticket_id: int, now: datetime) -> dict[str, Any]:
        return {"command_id": f"test-{uuid.uuid4()}", "account_id": self.account_id, "ticket_id": ticket_id,
                "now": now}

    async def create(self, now: datetime, **fields: Any) -> int:
        async with self.sessions() as session, session.begin():
            ticket_id, number = await TicketRepository(session).allocate(self.account_id)
            await TicketEngine(session).create(CreateCommand(**self._ids(ticket_id, now), input=CreateTicketInput(
                account_id=self.account_id, ticket_id=ticket_id, number=number, actor=AGENT,
                ticket=NewTicket(subject="history", **fields))))
        self.numbers[ticket_id] = number
        return ticket_id

    async def status(self, ticket_id: int, status: str, now: datetime) -> None:
        await self.change(ticket_id, now, status=TicketStatus(status))

    async def customer_reply(self, ticket_id: int, now: datetime) -> None:
        await self.reply(ticket_id, now, AuthorType.CUSTOMER)

    async def reply(self, ticket_id: int, now: datetime, author: AuthorType = AuthorType.AGENT) -> None:
        async with self.sessions() as session, session.begin():
            await TicketEngine(session).comment(CommentCommand(**self._ids(ticket_id, now), input=AddCommentInput(
                actor=AGENT, body="It is broken again", author_type=author)))

    async def change(self, ticket_id: int, now: datetime, **fields: Any) -> None:
        async with self.sessions() as session, session.begin():
            await TicketEngine(session).update(UpdateCommand(**self._ids(ticket_id, now), input=UpdateTicketInput(
                actor=AGENT, changes=TicketChanges(**fields))))

    async def pause(self, ticket_id: int, now: datetime) -> None:
        async with self.sessions() as session, session.begin():
            await TicketEngine(session).pause_or_resume(SlaPauseCommand(**self._ids(ticket_id, now), actor=AGENT,
                                                                        pause=True, reason="waiting on a vendor"))

    async def merge(self, secondary: int, primary: int, now: datetime) -> None:
        async with self.sessions() as session, session.begin():
            await TicketEngine(session).merge_into(MergeIntoCommand(**self._ids(secondary, now), input=MergeIntoInput(
                actor=AGENT, primary_ticket_id=primary, primary_number=self.numbers[primary],
                command_id=f"merge-{uuid.uuid4()}")))

    async def delete(self, ticket_id: int, now: datetime) -> None:
        async with self.sessions() as session, session.begin():
            await TicketEngine(session).delete(DeleteCommand(**self._ids(ticket_id, now),
                                                             input=DeleteTicketInput(actor=AGENT)))


async def build_march(sessions: SessionFactory, account: AccountContext, other: AccountContext) -> dict[str, int]:
    """The histories the expectations below are worked out from (UTC):

    t1 urgent, team A, cat X: created 2 Mar 09:00, resolved 15:00, reopened by the customer 3 Mar
       10:00, resolved 12:00, closed 5 Mar 09:00 (after the range)
    t2 low, team B, cat X: created 2 Mar 23:30 (3 Mar 00:30 in Paris); open
    t3 high, team A, cat Y: created 3 Mar 08:00, closed from open 4 Mar 08:00
    t4: created 3 Mar 09:00, merged into t1 (and so closed) 4 Mar 10:00
    t5: created 2 Mar 10:00, resolved 3 Mar 11:00, deleted 4 Mar 12:00 — counts nowhere
    t6 team A: created 1 Mar 12:00 (before the range), resolved 3 Mar 14:00
    t7: created 1 Mar 13:00, resolved 14:00, reopened 2 Mar 16:00, waiting on the customer 3 Mar 09:00
    t8 cat X: created 4 Mar 11:00, SLA paused by hand 12:00; open
    t9: created 20 Feb, resolved 21 Feb
    and one ticket of another account, created 2 Mar 10:00."""
    teams = [(await account.post("/api/teams", json={"name": name})).json()["id"] for name in ("Alpha", "Beta")]
    categories = [(await account.post("/api/ticket-categories", json={"name": name})).json()["id"]
                  for name in ("Xylophones", "Yodels")]
    h = History(sessions, account.account_id)
    t1 = await h.create(at(2, 9), priority="urgent", assigned_to_team_id=teams[0], category_id=categories[0])
    t2 = await h.create(at(2, 23, 30), priority="low", assigned_to_team_id=teams[1], category_id=categories[0])
    t5 = await h.create(at(2, 10))
    t6 = await h.create(at(1, 12), assigned_to_team_id=teams[0])
    t7 = await h.create(at(1, 13))
    t9 = await h.create(at(20, 9, month=2))
    await h.status(t9, "resolved", at(21, 9, month=2))
    await h.status(t7, "resolved", at(1, 14))
    await h.status(t1, "resolved", at(2, 15))
    await h.status(t7, "in_progress", at(2, 16))
    t3 = await h.create(at(3, 8), priority="high", assigned_to_team_id=teams[0], category_id=categories[1])
    t4 = await h.create(at(3, 9))
    await h.status(t7, "waiting_customer", at(3, 9))
    await h.customer_reply(t1, at(3, 10))
    await h.status(t5, "resolved", at(3, 11))
    await h.status(t1, "resolved", at(3, 12))
    await h.status(t6, "resolved", at(3, 14))
    await h.status(t3, "closed", at(4, 8))
    await h.merge(t4, t1, at(4, 10))
    t8 = await h.create(at(4, 11), category_id=categories[0])
    await h.pause(t8, at(4, 12))
    await h.delete(t5, at(4, 12))
    await h.status(t1, "closed", at(5, 9))
    await History(sessions, other.account_id).create(at(2, 10))
    return {"t1": t1, "t2": t2, "t3": t3, "t4": t4, "t8": t8, "team_a": teams[0], "team_b": teams[1],
            "cat_x": categories[0], "cat_y": categories[1]}


def figures(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(b["period"], b["created"], b["resolved"], b["reopened"], b["closed"], b["backlog"])
            for b in report["buckets"]]


async def test_ticket_volume_counts_each_resolution_reopen_and_close_and_leaves_deleted_tickets_out(
    account: AccountContext, other_account: AccountContext, sessions: SessionFactory
) -> None:
    ids = await build_march(sessions, account, other_account)
    response = await account.get("/api/reports/tickets?from=2026-03-02&to=2026-03-04&groupBy=day",
                                 token=account.tokens["read"])
    assert response.status_code == 200, response.text
    report = response.json()
    #        period        created resolved reopened closed backlog
    assert figures(report) == [
        ("2026-03-02", 2, 1, 1, 0, 3),  # t1 t2 created; t1 resolved; t7 reopened; open: t6 t7 t2
        ("2026-03-03", 2, 2, 1, 0, 4),  # t3 t4; t1 (again) and t6 resolved; t1 reopened; open: t2 t3 t4 t7
        ("2026-03-04", 1, 0, 0, 2, 3),  # t8; t3 closed, t4 closed by its merge; open: t2 t7 t8
    ]
    assert report["totals"] == {"created": 5, "resolved": 3, "reopened": 2, "closed": 2, "backlogAtStart": 1,
                                "backlogAtEnd": 3}
    assert report["buckets"][0]["from"] == "2026-03-02T00:00:00Z" and report["buckets"][-1]["to"] == "2026-03-05T00:00:00Z"
    assert report["timezone"] == "UTC" and report["groupBy"] == "day"

    # A week adds up its days (a ticket resolved twice in it counts twice) and t1's close on 5 March.
    week = (await account.get("/api/reports/tickets?from=2026-03-02&to=2026-03-08&groupBy=week")).json()
    assert figures(week) == [("2026-03-02", 5, 3, 2, 3, 3)]
    month = (await account.get("/api/reports/tickets?from=2026-02-01&to=2026-03-31&groupBy=month")).json()
    assert figures(month) == [("2026-02-01", 1, 1, 0, 0, 0), ("2026-03-01", 7, 4, 2, 3, 3)]

    # Filters apply to the tickets' current team, priority and type.
    team_a = (await account.get(f"/api/reports/tickets?from=2026-03-02&to=2026-03-04&teamId={ids['team_a']}")).json()
    assert figures(team_a) == [("2026-03-02", 1, 1, 0, 0, 1), ("2026-03-03", 1, 2, 1, 0, 1),
                               ("2026-03-04", 0, 0, 0, 1, 0)]
    assert team_a["totals"]["backlogAtStart"] == 1  # t6
    urgent_low = (await account.get("/api/reports/tickets?from=2026-03-02&to=2026-03-04&priority=urgent,low")).json()
    assert figures(urgent_low) == [("2026-03-02", 2, 1, 0, 0, 1), ("2026-03-03", 0, 1, 1, 0, 1),
                                   ("2026-03-04", 0, 0, 0, 0, 1)]
    none_of_type = await account.get("/api/reports/tickets?from=2026-03-02&to=2026-03-04&typeId=999999")
    assert [b["created"] for b in none_of_type.json()["buckets"]] == [0, 0, 0]


async def test_buckets_are_cut_in_the_time_zone_asked_for(
    account: AccountContext, other_account: AccountContext, sessions: SessionFactory
) -> None:
    await build_march(sessions, account, other_account)
    paris = (await account.get("/api/reports/tickets?from=2026-03-02&to=2026-03-04&timezone=Europe/Paris")).json()
    assert paris["buckets"][0]["from"] == "2026-03-01T23:00:00Z"
    assert figures(paris) == [
        ("2026-03-02", 1, 1, 1, 0, 2),  # t2 (00:30 on 3 March in Paris) moved to the next day
        ("2026-03-03", 3, 2, 1, 0, 4),
        ("2026-03-04", 1, 0, 0, 2, 3),
    ]
    # An instant that is not on a 15-minute slot is read from the timelines, with the same counts.
    clipped = (await account.get("/api/reports/tickets?from=2026-03-02T09:07:00Z&to=2026-03-03")).json()
    assert figures(clipped) == [("2026-03-02", 1, 1, 1, 0, 3), ("2026-03-03", 2, 2, 1, 0, 4)]
    assert clipped["totals"]["backlogAtStart"] == 2  # t6 and t1 (created 09:00, not yet resolved)


async def test_the_rollup_and_the_timelines_give_the_same_figures(
    account: AccountContext, other_account: AccountContext, sessions: SessionFactory
) -> None:
    await build_march(sessions, account, other_account)
    bounds = [at(day, hour) for day in range(1, 7) for hour in (0, 6, 23)] + [at(7, 0)]
    assert all(on_slot(bound) for bound in bounds)
    async with sessions() as session:
        queries = ReportQueries(session)
        assert await queries.from_rollup(account.account_id, bounds) == \
            await queries.from_history(account.account_id, bounds, {})


async def test_the_summary_covers_the_tickets_created_in_the_range(
    account: AccountContext, other_account: AccountContext, sessions: SessionFactory
) -> None:
    ids = await build_march(sessions, account, other_account)
    sla = {ids["t1"]: (True, False, 10, 500), ids["t2"]: (False, None, 40, None), ids["t3"]: (True, True, 20, 100)}
    # The SLA clock's results, as stored: written here directly, so the rollups are rebuilt from the
    # tickets afterwards as migration 0021 fills them (test_the_rollups_kept_by_the_writes_… shows
    # that the writes keep them equal to that).
    async with sessions() as session, session.begin():
        await session.execute(text("UPDATE tickets SET sla_first_response_met = NULL, sla_resolution_met = NULL,"
                                   " first_response_time = NULL, resolution_time = NULL WHERE account_id = :a"),
                              {"a": account.account_id})
        for ticket_id, (fr, res, frt, rt) in sla.items():
            await session.execute(text("UPDATE tickets SET sla_first_response_met = :fr, sla_resolution_met = :res,"
                                       " first_response_time = :frt, resolution_time = :rt WHERE id = :id"),
                                  {"fr": fr, "res": res, "frt": frt, "rt": rt, "id": ticket_id})
        await session.execute(text("UPDATE tickets SET escalation_count = 2 WHERE id = :id"), {"id": ids["t3"]})
        await ReportRollup(session).rebuild(account.account_id)

    response = await account.get("/api/reports/summary?from=2026-03-02&to=2026-03-04", token=account.tokens["read"])
    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["totalTickets"] == 5  # t1 t2 t3 t4 t8 (t5 deleted)
    assert summary["slaCompliance"] == 60.0  # 3 of 5 decided metrics met
    assert summary["sla"]["firstResponse"] == {"met": 2, "breached": 1, "complianceRate": 66.67}
    assert summary["sla"]["resolution"] == {"met": 1, "breached": 1, "complianceRate": 50.0}
    assert summary["averageFirstResponseTime"] == 23.3 and summary["averageResolutionTime"] == 300.0
    assert summary["timeUnit"] == "business_minutes"
    assert summary["escalatedTickets"] == 1 and summary["escalationRate"] == 20.0
    assert summary["topCategories"] == [{"categoryId": ids["cat_x"], "name": "Xylophones", "count": 3},
                                        {"categoryId": ids["cat_y"], "name": "Yodels", "count": 1}]
    assert summary["byPriority"] == [{"priority": "urgent", "count": 1}, {"priority": "high", "count": 1},
                                     {"priority": "medium", "count": 2}, {"priority": "low", "count": 1}]
    assert summary["byTeam"] == [{"teamId": ids["team_a"], "name": "Alpha", "count": 2},
                                 {"teamId": None, "name": None, "count": 2},
                                 {"teamId": ids["team_b"], "name": "Beta", "count": 1}]

    empty = (await account.get("/api/reports/summary?from=2020-01-01&to=2020-01-31")).json()
    assert (empty["totalTickets"], empty["escalationRate"], empty["slaCompliance"], empty["averageResolutionTime"],
            empty["topCategories"], empty["byTeam"]) == (0, 0.0, None, None, [], [])
    assert [row["count"] for row in empty["byPriority"]] == [0, 0, 0, 0]


ROLLUPS = {"ticket_report_slots": ("slot", COUNTS), "ticket_report_days": ("day", COUNTS),
           "ticket_summary_days": ("created_on, dimension, value", SUMMARY_COUNTS)}


async def rollup_rows(sessions: SessionFactory, account_id: int) -> dict[str, list[tuple[Any, ...]]]:
    """The account's rollup rows, those summing to nothing left out."""
    rows = {}
    async with sessions() as session:
        for table, (order, counts) in ROLLUPS.items():
            result = await session.execute(text(
                f"SELECT * FROM {table} WHERE account_id = :a AND ({' OR '.join(f'{c} <> 0' for c in counts)})"
                f" ORDER BY {order}"), {"a": account_id})
            rows[table] = [tuple(row) for row in result]
    return rows


async def test_the_rollups_kept_by_the_writes_equal_the_rollups_rebuilt_from_the_tickets(
    account: AccountContext, other_account: AccountContext, sessions: SessionFactory
) -> None:
    """Every kind of write moves the rollups as the stored tickets and timelines say: creations,
    status changes, reopens, merges, deletes, SLA results from the real clock (a first response
    late and on time, a resolution late), and changes of priority, team and category."""
    ids = await build_march(sessions, account, other_account)
    h = History(sessions, account.account_id)
    late = await h.create(at(2, 9), priority="urgent", category_id=ids["cat_x"])
    await h.reply(late, at(2, 9, 40))  # urgent: first response due in 15 minutes
    await h.status(late, "resolved", at(2, 10))
    slow = await h.create(at(3, 9), priority="high", assigned_to_team_id=ids["team_b"])
    await h.reply(slow, at(3, 9, 10))
    await h.status(slow, "resolved", at(4, 20))  # high: resolution due in 8 hours
    await h.change(ids["t2"], at(4, 13), priority="high", assigned_to_team_id=ids["team_a"], category_id=ids["cat_y"])
    gone = await h.create(at(3, 1), category_id=ids["cat_y"])
    await h.reply(gone, at(3, 1, 5))
    await h.delete(gone, at(3, 2))

    kept = await rollup_rows(sessions, account.account_id)
    async with sessions() as session:
        queries = ReportQueries(session)
        figures = await queries.summary(account.account_id, at(1, 0), at(6, 0))
        assert figures == await queries._summary_scan(account.account_id, [(at(1, 0), at(6, 0))])
    total = figures[("total", "")]
    assert total.tickets == 9  # t1–t4, t6–t8, late, slow
    assert min(total.first_response_met, total.first_response_breached, total.resolution_met,
               total.resolution_breached) > 0  # the clock's results moved the rollup both ways
    assert figures[("priority", "high")].tickets == 3 and figures[("category", str(ids["cat_y"]))].tickets == 2
    async with sessions() as session, session.begin():
        await ReportRollup(session).rebuild(account.account_id)
    assert kept == await rollup_rows(sessions, account.account_id)


async def test_the_summary_counts_the_same_from_its_rollup_and_from_the_tickets(
    account: AccountContext, other_account: AccountContext, sessions: SessionFactory
) -> None:
    """Whole UTC days come from the rollup, the hours around them from the tickets: any range
    gives what the tickets alone give."""
    await build_march(sessions, account, other_account)
    ranges = [(at(2, 0), at(5, 0)), (at(2, 9, 7), at(4, 18)), (at(3, 1), at(3, 23)), (at(20, 0, month=2), at(5, 6)),
              (at(1, 23, 45), at(2, 0, 15))]
    async with sessions() as session:
        queries = ReportQueries(session)
        for since, until in ranges:
            assert await queries.summary(account.account_id, since, until) == \
                await queries._summary_scan(account.account_id, [(since, until)]), (since, until)


async def test_reports_come_as_csv_when_asked(
    account: AccountContext, other_account: AccountContext, sessions: SessionFactory
) -> None:
    ids = await build_march(sessions, account, other_account)
    response = await account.get("/api/reports/tickets?from=2026-03-02&to=2026-03-04",
                                 headers={"Accept": "text/csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["period", "from", "to", "created", "resolved", "reopened", "closed", "backlog"]
    assert rows[1:] == [["2026-03-02", "2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z", "2", "1", "1", "0", "3"],
                        ["2026-03-03", "2026-03-03T00:00:00Z", "2026-03-04T00:00:00Z", "2", "2", "1", "0", "4"],
                        ["2026-03-04", "2026-03-04T00:00:00Z", "2026-03-05T00:00:00Z", "1", "0", "0", "2", "3"]]
    summary = await account.get("/api/reports/summary?from=2026-03-02&to=2026-03-04", headers={"Accept": "text/csv"})
    lines = list(csv.reader(io.StringIO(summary.text)))
    assert lines[0] == ["section", "key", "name", "value"] and ["total", "tickets", "", "5"] in lines
    assert ["category", str(ids["cat_x"]), "Xylophones", "3"] in lines and ["priority", "medium", "", "2"] in lines
    assert ["team", "", "", "2"] in lines  # unassigned


async def test_an_empty_account_reports_zeros(account: AccountContext) -> None:
    report = (await account.get("/api/reports/tickets?groupBy=week")).json()
    assert report["buckets"] and all(b["created"] == b["backlog"] == 0 for b in report["buckets"])
    assert report["totals"]["backlogAtStart"] == 0


@pytest.mark.parametrize("query, field", [
    ("groupBy=year", "groupBy"), ("timezone=Mars/Olympus", "timezone"), ("timezone=localtime", "timezone"),
    ("from=yesterday", "from"), ("from=2026-03-05&to=2026-03-01", "from"), ("from=2026-13-01", "from"),
    ("from=2000-01-01&to=2026-01-01&groupBy=day", "groupBy"), ("teamId=99999999999999999999", "teamId"),
    ("typeId=-1", "typeId"), ("priority=critical", "priority"), ("colour=blue", "colour"),
    ("from=0001-01-01&to=9999-12-30&groupBy=month", "groupBy"), ("to=0001-01-01", "to"),
    ("from=9999-12-31&to=9999-12-31&timezone=America/Los_Angeles", "to"),
])
async def test_bad_report_parameters_are_422s_naming_the_field(account: AccountContext, query: str,
                                                               field: str) -> None:
    response = await account.get(f"/api/reports/tickets?{query}")
    assert response.status_code == 422, (query, response.text)
    assert response.json()["error"] == "validation_error" and response.json()["details"][0]["field"] == field


@pytest.mark.parametrize("query", [
    "from=0001-01-01&to=0001-01-03", "from=9999-12-29&to=9999-12-31", "from=0001-01-01&to=9999-12-31",
    "from=0001-01-02&to=0001-01-03&timezone=Asia/Tokyo", "from=9999-12-30&to=9999-12-30&timezone=Pacific/Kiritimati",
])
async def test_ranges_at_the_calendars_edges_answer_without_a_server_error(account: AccountContext,
                                                                             query: str) -> None:
    for path in ("/api/reports/summary", "/api/reports/tickets"):
        response = await account.get(f"{path}?{query}")
        assert response.status_code in (200, 422), (path, query, response.text)
