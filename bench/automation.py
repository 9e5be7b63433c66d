"""Automation benchmark: what 50 rules cost a PATCH, and how late a time_in_status rule acts.

One run, one Temporal dev server (SQLite, WAL), one PostgreSQL database (``pulse_bench_automation``,
recreated on ``$DATABASE_URL``'s server, else 127.0.0.1:5432), a Pulse worker and a Pulse API as
subprocesses (the code of this tree), as in bench/write_path.py.

1. **PATCH throughput, 0 vs 50 rules.** Two accounts: one without automation rules, one with
   ``--rules`` (50) enabled rules on the same trigger (``ticket_updated``), each with a condition
   on a custom field that the PATCHes do not set (so every PATCH evaluates all of them and logs
   50 ``skipped`` executions; ``--matching K`` makes K of them fire and add a tag). ``--clients``
   (10) clients, each PATCHing the subject of its own ticket; ``--rounds`` (10) short rounds of
   ``--patches`` (100) alternate the two accounts (which goes first alternates too), so load from
   elsewhere, which changes within seconds on a shared machine, hits both alike. Goal: with rules
   ≥ 0.9× without (all rounds together); the spread of the rounds' ratios is printed beside it.
   ``--profile DIR``: then one round per account with py-spy sampling the worker and the API.
2. **time_in_status lateness.** A third account, one rule ``time_in_status`` (open, ``--after``
   (3) minutes) that adds a tag, and ``--tickets`` (2,000) tickets created through the API with
   ``--concurrency`` (16) clients: they fall due over the minutes after. The bench polls
   ``automation_executions`` every 50 ms; lateness = when the execution was first seen committed −
   the instant the ticket was due (``status_changed_at`` + after). Also printed: the lateness of
   the act's own clock (``executed_at``, the workflow's time when it acted). Goal: p99 ≤ 1 s.

    .venv/bin/python bench/automation.py [--rules 50] [--matching 0] [--patches 100] [--clients 10]
        [--rounds 10] [--tickets 2000] [--concurrency 16] [--after 3] [--profile DIR] [--check] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402

import bench.write_path as write_path  # noqa: E402
from bench.common import run_bench, wait_healthy  # noqa: E402
from bench.write_path import PROCESSES, Run, Stack, drive, load, merge, profile, show  # noqa: E402

DATABASE = "pulse_bench_automation"
TASK_QUEUE = "bench-automation"
write_path.DATABASE = DATABASE  # the CPU accounting counts this database's backends


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def recreate_database(server_url: str) -> str:
    from pulse.devstack import ensure_database, migrate, with_database

    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    url = ensure_database(server_url, DATABASE)
    migrate(url)
    return url




async def make_account(database_url: str) -> str:
    from pulse.db import make_engine, make_sessionmaker
    from pulse.services.auth import create_account_with_admin

    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            _, _, token = await create_account_with_admin(session, f"Bench {uuid.uuid4().hex[:6]}")
        return token
    finally:
        await engine.dispose()


async def post_ok(http: httpx.AsyncClient, path: str, token: str, body: dict) -> dict:
    response = await http.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    if response.status_code != 201:
        raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:300]}")
    return response.json()


async def patch_part(args: argparse.Namespace, http: httpx.AsyncClient, database_url: str) -> tuple[Run, Run]:
    plain, ruled = await make_account(database_url), await make_account(database_url)
    for index in range(args.rules):
        matches = index < args.matching
        await post_ok(http, "/api/tickets/automation-rules", ruled, {
            "name": f"rule {index}", "trigger": "ticket_updated", "executionOrder": index,
            "conditions": [{"field": "customFields.plan", "operator": "not_equals" if matches else "equals",
                            "value": f"plan-{index}"}],
            "actions": [{"type": "add_tags", "tags": [f"r{index}"]}]})
    tickets = {}
    for token in (plain, ruled):
        tickets[token] = [(await post_ok(http, "/api/tickets", token, {"subject": f"PATCH me {i}"}))["id"]
                          for i in range(args.clients)]

    def patcher(token: str):
        async def op(worker: int, call: int) -> None:
            response = await http.patch(f"/api/tickets/{tickets[token][worker]}", json={"subject": f"edit {call}"},
                                        headers={"Authorization": f"Bearer {token}"})
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code} {response.text[:200]}")
        return op

    await drive("warm-up", args.clients * 4, args.clients, patcher(plain))
    await drive("warm-up", args.clients * 4, args.clients, patcher(ruled))
    runs: dict[str, list[Run]] = {"plain": [], "ruled": []}
    for round_index in range(args.rounds):
        order = ("plain", "ruled") if round_index % 2 == 0 else ("ruled", "plain")
        for name in order:
            token = plain if name == "plain" else ruled
            label = "PATCH, no rules" if name == "plain" else f"PATCH, {args.rules} rules ({args.matching} firing)"
            run = await drive(label, args.patches, args.clients, patcher(token))
            show(run)
            runs[name].append(run)
    pairs = sorted(r.rate / p.rate for p, r in zip(runs["plain"], runs["ruled"]) if p.rate)
    if pairs:
        print(f"  round by round, with rules / without: min {pairs[0]:.2f}x  median {pairs[len(pairs) // 2]:.2f}x  "
              f"max {pairs[-1]:.2f}x", flush=True)
    if args.profile:
        await profile(args.profile, "patch-plain", lambda: drive("profiled, no rules", args.patches, args.clients,
                                                                 patcher(plain)))
        await profile(args.profile, "patch-ruled", lambda: drive(f"profiled, {args.rules} rules", args.patches,
                                                                 args.clients, patcher(ruled)))
    return merge("PATCH, no rules (all rounds)", runs["plain"]), merge(
        f"PATCH, {args.rules} rules (all rounds)", runs["ruled"])


async def lateness_part(args: argparse.Namespace, http: httpx.AsyncClient, database_url: str) -> list[float]:
    token = await make_account(database_url)
    rule = await post_ok(http, "/api/tickets/automation-rules", token, {
        "name": "Aged", "trigger": {"type": "time_in_status", "status": "open", "afterMinutes": args.after},
        "conditions": [], "actions": [{"type": "add_tags", "tags": ["aged"]}]})
    seen: dict[int, float] = {}  # ticket id → wall clock (epoch s) the execution was first seen
    acted: dict[int, datetime] = {}
    done = asyncio.Event()

    async def poll() -> None:
        # Every row of the rule each time, not "ids after the last seen": writes commit out of id
        # order, so an id watermark skips rows committed late.
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
            while not done.is_set():
                cursor = await db.execute("SELECT ticket_id, executed_at FROM automation_executions "
                                          "WHERE rule_id = %s AND status = 'success'", (rule["id"],))
                found = await cursor.fetchall()
                now = time.time()
                for ticket_id, executed_at in found:
                    if ticket_id not in seen:
                        seen[ticket_id] = now
                        acted[ticket_id] = executed_at
                await asyncio.sleep(0.05)

    poller = asyncio.create_task(poll())
    started = time.perf_counter()

    async def create(_: int, i: int) -> None:
        await post_ok(http, "/api/tickets", token, {"subject": f"Aging ticket {i}", "priority": "low"})

    created = await drive("creates (time_in_status part)", args.tickets, args.concurrency, create)
    show(created)
    print(f"  created in {time.perf_counter() - started:.1f} s; waiting for the rule to act on every ticket …",
          flush=True)
    deadline = time.monotonic() + args.after * 60 + 600
    next_report = time.monotonic() + 15
    while len(seen) < created.count and time.monotonic() < deadline:
        if poller.done():
            poller.result()  # raises what stopped it
        if time.monotonic() > next_report:
            print(f"  … {len(seen)} acted on", flush=True)
            next_report += 15
        await asyncio.sleep(1)
    done.set()
    await poller
    with psycopg.connect(database_url, autocommit=True) as db:
        due = {ticket_id: status_changed_at + timedelta(minutes=args.after) for ticket_id, status_changed_at in
               db.execute("SELECT t.id, t.status_changed_at FROM tickets t JOIN accounts a ON a.id = t.account_id "
                          "WHERE t.id = ANY(%s)", (list(seen),)).fetchall()}
        duplicates = db.execute("SELECT count(*) - count(DISTINCT ticket_id) FROM automation_executions "
                                "WHERE rule_id = %s AND status = 'success'", (rule["id"],)).fetchone()[0]
    seen_late = [seen[t] - due[t].timestamp() for t in seen]
    clock_late = [(acted[t] - due[t]).total_seconds() for t in acted]
    print(f"  acted on {len(seen)} of {created.count} tickets; duplicates {duplicates}", flush=True)
    for name, values in (("committed and seen", seen_late), ("the act's clock (executed_at)", clock_late)):
        print(f"  lateness, {name:<32} p50 {percentile(values, 50):6.3f} s  p95 {percentile(values, 95):6.3f} s  "
              f"p99 {percentile(values, 99):6.3f} s  max {max(values, default=float('nan')):6.3f} s", flush=True)
    return seen_late


async def bench(args: argparse.Namespace, stack: Stack) -> int:
    from pulse.devstack import free_port, start_temporal, with_database

    server_url = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    print(f"machine: {os.cpu_count()} CPUs, load {load()} (1/5/15 min)", flush=True)
    database_url = recreate_database(server_url)
    write_path.DATABASE_ADMIN_URL.append(with_database(server_url, "postgres"))
    temporal_port = free_port()
    temporal = start_temporal(temporal_port, None, stack.workdir / "temporal.db", stack.workdir / "temporal.log")
    stack.children.append(("temporal", temporal))
    PROCESSES["temporal"] = temporal.pid
    api_port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
           "PULSE_TASK_QUEUE": TASK_QUEUE, "PULSE_API_PORT": str(api_port),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    stack.spawn("worker", [sys.executable, "-m", "pulse.cli", "worker"], env)
    stack.spawn("api", [sys.executable, "-m", "pulse.cli", "api"], env)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    met = True
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=120, limits=limits) as http:
        await wait_healthy(http, check_alive=stack.check_alive)
        if args.patches:
            print(f"\n1. PATCH throughput, {args.clients} clients, {args.rounds} rounds of {args.patches}", flush=True)
            plain, ruled = await patch_part(args, http, database_url)
            show(plain)
            show(ruled)
            ratio = ruled.rate / plain.rate if plain.rate else float("nan")
            print(f"  with rules / without: {ratio:.2f}x (goal >= 0.9x)", flush=True)
            met &= ratio >= 0.9
        if args.tickets:
            print(f"\n2. time_in_status on {args.tickets} tickets, due {args.after} min after creation", flush=True)
            late = await lateness_part(args, http, database_url)
            p99 = percentile(late, 99)
            print(f"  p99 {p99:.3f} s (goal <= 1 s)", flush=True)
            met &= p99 <= 1.0
    print(f"\nload at the end {load()}; goals {'met' if met else 'NOT met'}", flush=True)
    return 0 if met or not args.check else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--matching", type=int, default=0, help="how many of the rules fire on each PATCH")
    parser.add_argument("--patches", type=int, default=100, help="PATCHes per round and account (0 skips part 1)")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--tickets", type=int, default=2000, help="tickets of the time_in_status part (0 skips it)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--after", type=int, default=3, help="afterMinutes of the time_in_status rule")
    parser.add_argument("--check", action="store_true", help="exit 1 unless both goals hold")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir and the database")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="after part 1's rounds, one more round per account with py-spy on the worker and the API")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="pulse-bench-automation-"))
    stack = Stack(workdir)

    return run_bench(lambda: bench(args, stack), stack, keep=args.keep, database=DATABASE,
                     server_url=os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres")


if __name__ == "__main__":
    sys.exit(main())
