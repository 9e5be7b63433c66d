"""SLA timer benchmark: how late do SLA state changes land, and what does an idle ticket cost the
worker?

One run, one Temporal dev server (SQLite with the WAL pragmas as ``make run`` does, or in memory
with ``--memory``), one PostgreSQL database (``pulse_bench_sla``, recreated on ``$DATABASE_URL``'s
server, else 127.0.0.1:5432), and one Pulse worker as a subprocess (``pulse worker``, the real
deployment shape). Tickets are created in this process through ``TicketService`` (the API's own
write path, minus HTTP).

1. **Lateness.** ``--tickets`` (2,000) urgent tickets, created as fast as the stack takes them
   (``--rate`` caps it), under a policy of ``--first-response`` (8) / ``--resolution`` (12)
   minutes at risk at ``--at-risk`` (50) %: each ticket's 4 thresholds fall 4, 8, 6 and 12 min
   after its creation, so 8,000 changes are due within a few minutes, in waves as wide as the
   creation took. The first is due only after the last ticket was created (the bench says so if
   the creation took longer): the timers are measured on their own, not queued behind creates
   (how creates and timers share the worker: ``--first-response 2 --resolution 6 --rate 6``). For every
   ``sla_at_risk`` / ``sla_breached`` change: lateness = the database's clock when the change was
   written (``ticket_events.created_at``) − the instant it was due (``occurred_at``, the exact
   crossing). Goal: p99 <= 2 s.
2. **Memory.** The worker's RSS as open tickets accumulate up to ``--open`` (10,000; the extra
   ones are low priority, idle for hours).

The worker runs with the settings of the environment, e.g.
``PULSE_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS=10 PULSE_WORKER_MAX_CACHED_WORKFLOWS=4000`` (the
defaults). It also prints the CPU time per SLA change of the worker and the Temporal server,
counted after the creation ended: on a shared machine the rates follow the load average, the
CPU per change hardly moves. Results and what they mean: ``bench/README.md``.

    .venv/bin/python bench/sla_timers.py [--tickets 2000] [--rate 0] [--open 10000] [--memory] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

DATABASE = "pulse_bench_sla"
TASK_QUEUE = "bench-sla"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


def load() -> str:
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


async def create_tickets(service: Any, principal: Any, count: int, concurrency: int, priority: str,
                         label: str, rate: float | None = None) -> float:
    """Create ``count`` tickets with ``concurrency`` clients, at most ``rate`` per second; returns
    the achieved rate per second."""
    counter = iter(range(count))
    errors = 0
    begin = time.perf_counter()

    async def client() -> None:
        nonlocal errors
        for index in counter:
            if rate:
                await asyncio.sleep(max(0.0, begin + index / rate - time.perf_counter()))
            try:
                await service.create(principal, {"subject": f"{label} {index}", "priority": priority}, None)
            except Exception as error:  # noqa: BLE001 - counted and reported
                errors += 1
                if errors <= 3:
                    print(f"    create error: {type(error).__name__}: {str(error)[:200]}", flush=True)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    print(f"  created {count - errors} {priority} tickets in {seconds:.1f} s ({(count - errors) / seconds:.1f}/s),"
          f" {errors} errors", flush=True)
    return (count - errors) / seconds


async def bench(args: argparse.Namespace, workdir: Path, children: list[subprocess.Popen]) -> int:
    from pulse.db import make_engine, make_sessionmaker
    from pulse.devstack import ensure_database, free_port, migrate, start_temporal, with_database
    from pulse.domain.tickets import Permission
    from pulse.services.auth import Principal, create_account_with_admin
    from pulse.services.sla import SlaSettingsService
    from pulse.services.tickets import TicketService
    from pulse.temporal import connect_when_ready

    server_url = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    print(f"machine: {os.cpu_count()} CPUs, load {load()} (1/5/15 min)", flush=True)
    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    database_url = ensure_database(server_url, DATABASE)
    migrate(database_url)

    port = free_port()
    db_file = None if args.memory else workdir / "temporal.db"
    children.append(start_temporal(port, None, db_file, workdir / "temporal.log"))
    address = f"127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": database_url, "TEMPORAL_ADDRESS": address, "PULSE_TASK_QUEUE": TASK_QUEUE,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    worker = subprocess.Popen([sys.executable, "-m", "pulse.cli", "worker"], env=env, cwd=ROOT,
                              stdout=(workdir / "worker.log").open("ab"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    children.append(worker)
    print(f"Temporal dev server ({'in memory' if args.memory else 'SQLite, WAL'}) on {address}; "
          f"worker pid {worker.pid}; database {DATABASE}", flush=True)

    client = await connect_when_ready(address)

    engine = make_engine(database_url, pool_size=args.concurrency + 2)
    sessions = make_sessionmaker(engine)
    async with sessions() as session, session.begin():
        account_id, user_id, _ = await create_account_with_admin(session, f"SLA bench {uuid.uuid4().hex[:6]}")
        settings = SlaSettingsService(session)
        await settings.put_policy(account_id, "urgent", {"first_response_minutes": args.first_response,
                                                         "resolution_minutes": args.resolution,
                                                         "at_risk_percent": args.at_risk}, None)
    principal = Principal(token_id=0, user_id=user_id, account_id=account_id,
                          permissions=frozenset(p.value for p in Permission), is_platform_admin=False)
    service = TicketService(sessions, client, TASK_QUEUE)
    await asyncio.sleep(2)
    rss = {"idle worker": rss_mb(worker.pid)}
    sandbox = os.environ.get("PULSE_WORKER_SANDBOXED", "false")
    print(f"worker: PULSE_WORKER_SANDBOXED={sandbox}", flush=True)

    # 1. lateness ------------------------------------------------------------------------------
    print(f"\n1. {args.tickets} urgent tickets at {args.rate}/s, policy {args.first_response} / {args.resolution} min "
          f"(at risk at {args.at_risk} %), {args.concurrency} clients (load {load()})", flush=True)
    creation_started = time.time()
    await create_tickets(service, principal, args.tickets, args.concurrency, "urgent", "SLA bench", args.rate)
    first_due = creation_started + min(args.first_response, args.resolution) * 60 * args.at_risk / 100
    overlap = time.time() - first_due
    print(f"  the creation ended {abs(overlap):.0f} s {'AFTER' if overlap > 0 else 'before'} the first due instant"
          f"{' (timers and creates competed)' if overlap > 0 else ''}", flush=True)
    rss[f"{args.tickets} open tickets (just created)"] = rss_mb(worker.pid)
    expected = args.tickets * 4
    last_due = time.time() + args.resolution * 60
    peak_rss = 0.0
    count_changes = ("SELECT count(*) FROM ticket_events WHERE event_type IN ('sla_at_risk', 'sla_breached')")
    with psycopg.connect(database_url, autocommit=True) as connection:
        # CPU per SLA change, counted from the end of the creation on (the timers alone)
        changes_before = connection.execute(count_changes).fetchone()[0]
        cpu_before = {"worker": cpu_seconds(worker.pid), "temporal": cpu_seconds(children[0].pid)}
        while True:
            done = connection.execute(
                "SELECT count(*) FROM ticket_events WHERE event_type IN ('sla_at_risk', 'sla_breached')"
            ).fetchone()[0]
            peak_rss = max(peak_rss, rss_mb(worker.pid))
            if done >= expected or time.time() > last_due + 300:
                break
            if worker.poll() is not None:
                raise RuntimeError("the worker exited; see worker.log")
            print(f"  … {done}/{expected} SLA changes written (load {load()}, worker RSS {rss_mb(worker.pid):.0f} MB)",
                  flush=True)
            await asyncio.sleep(15)
        changes_after = connection.execute(count_changes).fetchone()[0]
        cpu_after = {"worker": cpu_seconds(worker.pid), "temporal": cpu_seconds(children[0].pid)}
        rows = connection.execute(
            "SELECT event_type, metric, EXTRACT(EPOCH FROM created_at - occurred_at) "
            "FROM ticket_events WHERE event_type IN ('sla_at_risk', 'sla_breached')"
        ).fetchall()
        window = connection.execute(
            "SELECT EXTRACT(EPOCH FROM max(occurred_at) - min(occurred_at)) FROM ticket_events "
            "WHERE event_type IN ('sla_at_risk', 'sla_breached')").fetchone()[0]
        wrong = connection.execute(
            "SELECT count(*) FROM tickets WHERE account_id = %s AND priority = 'urgent' "
            "AND (sla_status <> 'breached' OR sla_breached_at IS DISTINCT FROM sla_first_response_due)",
            (account_id,)).fetchone()[0]
    rss["while the timers fire (peak)"] = peak_rss
    print(f"  {len(rows)}/{expected} changes written over {float(window or 0):.0f} s of due instants; "
          f"{wrong} tickets not breached at their first-response due instant", flush=True)
    lateness = [float(row[2]) for row in rows]
    if lateness:
        print(f"  lateness (DB write time − due instant), all: p50 {percentile(lateness, 50) * 1000:.0f} ms  "
              f"p95 {percentile(lateness, 95) * 1000:.0f} ms  p99 {percentile(lateness, 99) * 1000:.0f} ms  "
              f"max {max(lateness) * 1000:.0f} ms  mean {statistics.mean(lateness) * 1000:.0f} ms", flush=True)
        for kind in ("sla_at_risk", "sla_breached"):
            for metric in ("first_response", "resolution"):
                subset = [float(r[2]) for r in rows if r[0] == kind and r[1] == metric]
                if subset:
                    print(f"    {kind:<13} {metric:<15} n={len(subset):>5}  p50 {percentile(subset, 50) * 1000:6.0f} ms  "
                          f"p95 {percentile(subset, 95) * 1000:6.0f} ms  p99 {percentile(subset, 99) * 1000:6.0f} ms",
                          flush=True)
        timed = changes_after - changes_before
        if timed:
            per_change = "  ".join(f"{name} {(cpu_after[name] - cpu_before[name]) / timed * 1000:.1f} ms"
                                   for name in cpu_after)
            print(f"  CPU per SLA change (the {timed} after the creation ended): {per_change}", flush=True)
        verdict = "met" if percentile(lateness, 99) <= 2 else "MISSED"
        print(f"  goal p99 <= 2 s: {verdict}", flush=True)

    # 2. memory --------------------------------------------------------------------------------
    extra = max(0, args.open - args.tickets)
    print(f"\n2. memory: {extra} more (low priority, idle) tickets → {args.open} open", flush=True)
    await create_tickets(service, principal, extra, args.concurrency, "low", "Idle ticket")
    await asyncio.sleep(5)
    rss[f"{args.open} open tickets"] = rss_mb(worker.pid)
    async with sessions() as session:
        from sqlalchemy import text

        open_count = (await session.execute(text(
            "SELECT count(*) FROM tickets WHERE account_id = :a AND status <> 'closed'"), {"a": account_id})).scalar()
    running = (await client.count_workflows("WorkflowType='TicketWorkflow' AND ExecutionStatus='Running'")).count
    print(f"  open tickets in PostgreSQL: {open_count}; running ticket workflows: {running}", flush=True)
    print("\nworker RSS:", flush=True)
    for label, value in rss.items():
        print(f"  {label:<40} {value:7.0f} MB", flush=True)
    await engine.dispose()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--open", type=int, default=10000)
    parser.add_argument("--first-response", type=int, default=8, help="minutes")
    parser.add_argument("--resolution", type=int, default=12, help="minutes")
    parser.add_argument("--at-risk", type=int, default=50, help="percent")
    parser.add_argument("--rate", type=float, default=0, help="creates per second (0: as fast as possible)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs) and print it")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--memory", action="store_true", help="Temporal dev server in memory (default: SQLite)")
    args = parser.parse_args()
    from pulse.devstack import stop

    children: list[subprocess.Popen] = []
    directory = Path(tempfile.mkdtemp(prefix="pulse-bench-sla-"))
    try:
        return asyncio.run(bench(args, directory, children))
    finally:
        for child in reversed(children):
            stop(child)
        if args.keep:
            print(f"logs kept in {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
