"""What 50 skipped automation rules cost one write, in-process (no Temporal, no API).

``TicketEngine.update`` (a subject PATCH) on a real PostgreSQL database, one transaction per write,
for an account without rules and one with ``--rules`` (50) enabled ``ticket_updated`` rules whose
one condition (a custom field the PATCHes do not set) does not hold — the accounts of
bench/automation.py's PATCH part. The two accounts' writes alternate one by one; per round it prints the
process's CPU (``time.process_time``) around ``TicketEngine.update`` and around the whole
transaction (commit included), and the CPU of the PostgreSQL backend serving it (``/proc``, when the
server runs on this machine). Database ``pulse_bench_automation_write``, recreated on
``$DATABASE_URL``'s server.

    .venv/bin/python bench/automation_write.py [--rules 50] [--writes 300] [--rounds 4] [--tickets 10] [--profile tottime]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench.write_path import process_cpu  # noqa: E402

DATABASE = "pulse_bench_automation_write"


def recreate_database(server_url: str) -> str:
    from pulse.devstack import ensure_database, migrate, with_database

    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    url = ensure_database(server_url, DATABASE)
    migrate(url)
    return url


async def main(args: argparse.Namespace) -> None:
    from pulse.db import make_engine, make_sessionmaker
    from pulse.domain.changes import Actor, NewTicket, TicketChanges
    from pulse.domain.commands import CreateCommand, CreateTicketInput, UpdateCommand, UpdateTicketInput
    from pulse.models import AutomationRule
    from pulse.repositories.tickets import TicketRepository
    from pulse.services.auth import create_account_with_admin
    from pulse.services.ticket_engine import TicketEngine

    url = recreate_database(os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    engine = make_engine(url, pool_size=1)
    sessions = make_sessionmaker(engine)
    actor = Actor(kind="user")
    accounts: dict[str, int] = {}
    for name in ("plain", "ruled"):
        async with sessions() as session, session.begin():
            accounts[name], _, _ = await create_account_with_admin(session, f"Bench {name} {uuid.uuid4().hex[:6]}")
    async with sessions() as session, session.begin():
        for index in range(args.rules):
            session.add(AutomationRule(
                account_id=accounts["ruled"], name=f"rule {index}", trigger="ticket_updated", execution_order=index,
                conditions=[{"field": "customFields.plan", "operator": "equals", "value": f"plan-{index}"}],
                actions=[{"type": "add_tags", "tags": [f"r{index}"]}]))
    tickets: dict[str, list[int]] = {}
    for name, account_id in accounts.items():
        tickets[name] = []
        for i in range(args.tickets):
            async with sessions() as session, session.begin():
                ticket_id, number = await TicketRepository(session).allocate(account_id)
                await TicketEngine(session).create(CreateCommand(
                    command_id=f"create-{uuid.uuid4()}", account_id=account_id, ticket_id=ticket_id,
                    now=datetime.now(timezone.utc), input=CreateTicketInput(
                        account_id=account_id, ticket_id=ticket_id, number=number, actor=actor,
                        ticket=NewTicket(subject=f"PATCH me {i}"))))
            tickets[name].append(ticket_id)
    async with sessions() as session:
        backend = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()

    async def write(name: str, call: int) -> tuple[float, float, float]:
        ticket_id = tickets[name][call % len(tickets[name])]
        command = UpdateCommand(command_id=f"bench-{uuid.uuid4()}", account_id=accounts[name], ticket_id=ticket_id,
                                now=datetime.now(timezone.utc), input=UpdateTicketInput(
                                    actor=actor, changes=TicketChanges(subject=f"edit {call}")))
        started, pg_started = time.process_time(), process_cpu(backend) or 0.0
        async with sessions() as session, session.begin():
            update_started = time.process_time()
            await TicketEngine(session).update(command)
            update_cpu = time.process_time() - update_started
        return update_cpu, time.process_time() - started, (process_cpu(backend) or 0.0) - pg_started

    for name in accounts:  # warm-up: caches, the rules read once
        for call in range(args.writes // 5):
            await write(name, call)
    results: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in accounts}
    print(f"load average at the start: {os.getloadavg()}", flush=True)
    for round_index in range(args.rounds):
        # The two accounts' writes alternate one by one, so load from elsewhere hits both alike.
        spent: dict[str, list[tuple[float, float, float]]] = {name: [] for name in accounts}
        wall = {name: 0.0 for name in accounts}
        for call in range(args.writes):
            for name in (("plain", "ruled") if call % 2 == 0 else ("ruled", "plain")):
                began = time.perf_counter()
                spent[name].append(await write(name, call))
                wall[name] += time.perf_counter() - began
        for name in accounts:
            update, transaction, postgres = (sum(s[i] for s in spent[name]) / args.writes * 1000 for i in range(3))
            results[name].append((update, transaction, postgres, wall[name] / args.writes * 1000))
            print(f"round {round_index + 1} {name:5}: update {update:.3f} ms, transaction {transaction:.3f} ms, "
                  f"postgres {postgres:.3f} ms CPU per write; wall {wall[name] / args.writes * 1000:.2f} ms", flush=True)
    if args.profile:  # where the rules' writes spend their CPU (after the measured rounds)
        import cProfile
        import pstats

        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for call in range(args.writes):
            await write("ruled", call)
        profiler.disable()
        pstats.Stats(profiler).sort_stats(args.profile).print_stats(40)
    print(f"load average at the end: {os.getloadavg()}", flush=True)
    for name, rows in results.items():
        print(f"{name:5} median of rounds: update {statistics.median(r[0] for r in rows):.3f} ms, transaction "
              f"{statistics.median(r[1] for r in rows):.3f} ms, postgres {statistics.median(r[2] for r in rows):.3f} ms, "
              f"wall {statistics.median(r[3] for r in rows):.2f} ms")
    extra = [r[0] - p[0] for r, p in zip(results["ruled"], results["plain"])]
    extra_tx = [r[1] - p[1] for r, p in zip(results["ruled"], results["plain"])]
    extra_pg = [r[2] - p[2] for r, p in zip(results["ruled"], results["plain"])]
    print(f"{args.rules} rules add, per write (rounds side by side): update CPU "
          f"{', '.join(f'{e:.3f}' for e in extra)} ms; transaction {', '.join(f'{e:.3f}' for e in extra_tx)} ms; postgres {', '.join(f'{e:.3f}' for e in extra_pg)} ms")
    await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--tickets", type=int, default=10)
    parser.add_argument("--profile", metavar="SORT", help="profile the rules' writes once more (cProfile, e.g. tottime)")
    asyncio.run(main(parser.parse_args()))
