"""Maverick sync benchmark (issue 12): import rate against the API's own create rate, webhook and
push latency, and convergence under a failing Maverick — one run, one stack.

The stack: a Temporal dev server (SQLite, WAL), a fresh PostgreSQL database ``pulse_bench_maverick``
(on ``$DATABASE_URL``'s server, else 127.0.0.1:5432), Pulse's two workers (``pulse worker --queue
tickets`` and ``--queue maverick``; one ``pulse worker`` for both with ``--one-worker``) and API as
subprocesses with one ``PULSE_SECRETS_KEY``, and the simulator as a subprocess (``pulse maverick-sim``), driven over
its ``/_admin`` API. Steps:

1. **API create rate**: ``--baseline`` tickets through ``POST /api/tickets`` (``--concurrency`` clients).
2. **Import**: the simulator seeded with ``--tickets`` tickets; account A connected (webhooks to
   its URL); ``POST /api/integrations/maverick/sync`` until the run finishes → created per second;
   then the API's create rate once more. Goal: >= 0.8 x the mean of the API's two rates (the load
   of a shared machine drifts during a long import; both ratios are printed).
3. **Webhook → Pulse**: ``--changes`` merchant subject changes (paced ``--rate``/s); latency = the
   timeline row of the subject change − the webhook's ``received_at`` (both server clocks on this
   machine). Goal p99 <= 1 s.
4. **Pulse → Maverick**: ``--changes`` status changes through ``PATCH /api/tickets`` (paced);
   latency = Maverick's ``updatedAt`` of the pushed status − the Pulse timeline row. Goal p99 <= 1 s.
5. **A failing Maverick**: ``failRate`` 0.3; account B (no webhooks) imports the same tickets.
   Goal: every one once (no duplicate ``externalTicketId``), and no echo pushes (the simulator's
   count of writes by the integration equals the pushes of step 4).

    .venv/bin/python bench/maverick_sync.py [--tickets 5000] [--baseline 500] [--changes 200] [--one-worker] [--check] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402

from bench.common import drop_database, run_bench, wait_healthy  # noqa: E402
from bench.escalation import Stack, percentile  # noqa: E402

DATABASE = os.environ.get("PULSE_BENCH_DATABASE", "pulse_bench_maverick")
TASK_QUEUE = "pulse-bench-maverick"
MAVERICK_TASK_QUEUE = "pulse-bench-maverick-sync"
SIM_KEY = "bench-maverick-key"




async def make_accounts(database_url: str) -> list[tuple[int, str]]:
    from pulse.db import make_engine, make_sessionmaker
    from pulse.services.auth import create_account_with_admin

    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            accounts = []
            for name in ("Bench A", "Bench B"):
                account_id, _, token = await create_account_with_admin(session, name)
                accounts.append((account_id, token))
            return accounts
    finally:
        await engine.dispose()


async def bench(args: argparse.Namespace, stack: Stack, server_url: str) -> int:
    from pulse.devstack import ensure_database, free_port, migrate, start_temporal, wait_for_port
    from pulse.secretbox import new_key
    from pulse.temporal import connect_when_ready

    drop_database(server_url, DATABASE)
    database_url = ensure_database(server_url, DATABASE)
    migrate(database_url)
    (account_a, token_a), (account_b, token_b) = await make_accounts(database_url)
    temporal_port = free_port()
    stack.children.append(("temporal", start_temporal(temporal_port, None, stack.workdir / "temporal.db",
                                                      stack.workdir / "temporal.log")))
    address = f"127.0.0.1:{temporal_port}"
    api_port, sim_port = free_port(), free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "TEMPORAL_ADDRESS": address, "PULSE_TASK_QUEUE": TASK_QUEUE,
           "PULSE_MAVERICK_TASK_QUEUE": MAVERICK_TASK_QUEUE,
           "PULSE_API_PORT": str(api_port), "PULSE_SECRETS_KEY": new_key(), "PULSE_RATE_PER_TOKEN": "0", "PULSE_RATE_PER_ADDRESS": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    await connect_when_ready(address)
    if args.one_worker:  # both task queues in one process (as `pulse worker` alone)
        stack.spawn("worker", [sys.executable, "-m", "pulse.cli", "worker"], env)
    else:  # as `pulse dev` and docker-compose: the ticket engine's worker and the Maverick sync's
        stack.spawn("worker", [sys.executable, "-m", "pulse.cli", "worker", "--queue", "tickets"], env)
        stack.spawn("maverick-worker", [sys.executable, "-m", "pulse.cli", "worker", "--queue", "maverick"],
                    {**env, "PULSE_MAVERICK_WORKER_METRICS_PORT": "0"})
    stack.spawn("api", [sys.executable, "-m", "pulse.cli", "api"], env)
    api = f"http://127.0.0.1:{api_port}"
    secret = "whsec_bench_maverick_secret"
    stack.spawn("maverick", [sys.executable, "-m", "pulse.cli", "maverick-sim", "--port", str(sim_port),
                             "--api-key", SIM_KEY, "--tickets", "0"], env)
    wait_for_port("127.0.0.1", sim_port, timeout=60)
    limits = httpx.Limits(max_connections=args.concurrency + 8, max_keepalive_connections=args.concurrency + 8)
    async with httpx.AsyncClient(base_url=api, timeout=120, limits=limits) as http, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim_port}", timeout=60) as sim:
        await wait_healthy(http, check_alive=stack.check_alive)
        return await measure(args, stack, http, sim, database_url, (account_a, token_a), (account_b, token_b),
                             f"http://127.0.0.1:{sim_port}", secret)


class CpuMeter:
    """CPU seconds each child of the stack (and its children: Temporal's, PostgreSQL's are not
    ours) spent since the last reading: where a step's work went."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.last = self._read()

    def _read(self) -> dict[str, float]:
        import psutil

        used: dict[str, float] = {}
        for name, process in self.stack.children:
            try:
                times = psutil.Process(process.pid).cpu_times()
                used[name] = times.user + times.system
            except psutil.Error:
                continue
        return used

    def report(self, step: str, items: int) -> None:
        now = self._read()
        spent = {name: now[name] - self.last.get(name, 0.0) for name in now}
        self.last = now
        per_item = ", ".join(f"{name} {seconds * 1000 / max(items, 1):.0f}" for name, seconds in spent.items())
        print(f"CPU ms per item, {step} ({items}): {per_item}", flush=True)


async def measure(args: argparse.Namespace, stack: Stack, http: httpx.AsyncClient, sim: httpx.AsyncClient,
                  database_url: str, a: tuple[int, str], b: tuple[int, str], sim_url: str, secret: str) -> int:
    cpu = CpuMeter(stack)
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def call(token: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await http.request(method, path, json=body, headers=auth(token))
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json()

    # 1. the API's own create rate ---------------------------------------------------------------
    async def api_create_rate(label: str) -> float:
        counter = iter(range(args.baseline))

        async def creator() -> None:
            for n in counter:
                await call(a[1], "POST", "/api/tickets", {"subject": f"Baseline {label} {n}", "priority": "medium"})

        started = time.monotonic()
        await asyncio.gather(*(creator() for _ in range(args.concurrency)))
        seconds = time.monotonic() - started
        print(f"API creates ({label}): {args.baseline} in {seconds:.1f} s = {args.baseline / seconds:.1f}/s "
              f"(load {os.getloadavg()[0]:.1f})", flush=True)
        return args.baseline / seconds

    rate_before = await api_create_rate("before the import")
    cpu.report("API creates", args.baseline)

    # 2. import -------------------------------------------------------------------------------------
    await sim.post("/_admin/seed", json={"tickets": args.tickets})
    config = {"enabled": True, "apiUrl": sim_url, "apiKey": SIM_KEY, "webhookSecret": secret, "autoSync": False}
    await call(a[1], "PUT", "/api/integrations/maverick/config", config)
    import_run = await run_sync(call, a[1], stack)
    import_rate = import_run["created"] / import_run["seconds"]
    cpu.report("import", import_run["created"])
    print(f"import: {import_run['created']} created in {import_run['seconds']:.1f} s = {import_rate:.1f}/s "
          f"(load {os.getloadavg()[0]:.1f}), status {import_run['status']}", flush=True)
    # The API's rate again, after: on a shared machine the load drifts during a long import, so the
    # import is compared with the mean of the API's rate just before and just after it.
    rate_after = await api_create_rate("after the import")
    cpu.report("API creates", args.baseline)
    api_rate = (rate_before + rate_after) / 2
    print(f"import vs API: {import_rate / api_rate:.2f}x the mean API rate {api_rate:.1f}/s "
          f"({import_rate / rate_before:.2f}x before, {import_rate / rate_after:.2f}x after; goal >= 0.8x)", flush=True)

    # 3. webhook → Pulse ------------------------------------------------------------------------------
    webhook_url = str(http.base_url.join(f"/api/integrations/maverick/webhook/{a[0]}"))
    await sim.post("/_admin/webhooks/targets", json={"url": webhook_url, "secret": secret})
    remote_ids = [t["id"] for t in (await sim.get("/v1/tickets", params={"limit": 100},
                                                  headers={"Authorization": f"Bearer {SIM_KEY}"})).json()["data"]]
    targets = (remote_ids * (args.changes // max(len(remote_ids), 1) + 1))[:args.changes]
    for n, remote_id in enumerate(targets):
        await sim.patch(f"/_admin/tickets/{remote_id}", json={"subject": f"Webhook change {n}"})
        await asyncio.sleep(1 / args.rate)
    # Until every change has arrived: rows stop coming for 6 s (two changes of a ticket read in one
    # fetch make one row), at most 3 minutes.
    webhook_ms: list[float] = []
    settled_at = time.monotonic() + 180
    quiet_since = time.monotonic()
    while time.monotonic() < settled_at and (len(webhook_ms) < args.changes and time.monotonic() - quiet_since < 6
                                             or not webhook_ms):
        await asyncio.sleep(2)
        found = await webhook_latencies(database_url, a[0])
        if len(found) > len(webhook_ms):
            webhook_ms, quiet_since = found, time.monotonic()
    cpu.report("webhook changes", args.changes)
    report("webhook arrival -> Pulse ticket changed", webhook_ms, args.changes)

    # 4. Pulse → Maverick -------------------------------------------------------------------------
    tickets = (await call(a[1], "GET", "/api/tickets?externalSource=maverick&status=open&pageSize=200"))["tickets"]
    pushed = 0
    for ticket in tickets[:args.changes]:
        await call(a[1], "PATCH", f"/api/tickets/{ticket['id']}", {"status": "in_progress"})
        pushed += 1
        await asyncio.sleep(1 / args.rate)
    await asyncio.sleep(5)
    cpu.report("pushes", pushed)
    push_ms = await push_latencies(database_url, a[0], sim, [t["externalTicketId"] for t in tickets[:pushed]])
    report("Pulse change -> Maverick updated", push_ms, pushed)
    writes_after_pushes = (await sim.get("/_admin/state")).json()["integrationWrites"]

    # 5. a failing Maverick: account B imports the same tickets ---------------------------------------
    await sim.post("/_admin/faults", json={"failRate": 0.3, "failStatus": 503})
    await call(b[1], "PUT", "/api/integrations/maverick/config", {**config, "webhookSecret": secret + "-b"})
    flaky_run = await run_sync(call, b[1], stack, timeout=3600)
    await sim.delete("/_admin/faults")
    state = (await sim.get("/_admin/state")).json()
    duplicates, distinct = await duplicate_links(database_url, b[0])
    echo_pushes = state["integrationWrites"] - writes_after_pushes
    print(f"30 % failing: {flaky_run['created']} created in {flaky_run['seconds']:.1f} s, status "
          f"{flaky_run['status']}; {distinct} Maverick tickets in Pulse, {duplicates} duplicates; "
          f"{state['faults']['failedCalls']} calls failed; echo pushes {echo_pushes}; "
          f"integration writes {state['integrationWrites']} for {pushed} pushes", flush=True)

    ok = (import_rate >= 0.8 * api_rate and percentile(webhook_ms, 99) <= 1000 and percentile(push_ms, 99) <= 1000
          and distinct == state["tickets"] and duplicates == 0 and echo_pushes == 0
          and state["integrationWrites"] == pushed)
    print("goals met" if ok else "goals NOT met", flush=True)
    return 0 if ok or not args.check else 1


async def run_sync(call: Any, token: str, stack: Stack, timeout: float = 1800) -> dict[str, Any]:
    started = time.monotonic()
    run_id = (await call(token, "POST", "/api/integrations/maverick/sync"))["syncRunId"]
    reported, created_then = started, 0
    while time.monotonic() - started < timeout:
        stack.check_alive()
        run = await call(token, "GET", f"/api/integrations/maverick/sync-runs/{run_id}")
        if run["finishedAt"] is not None:
            return {**run, "seconds": time.monotonic() - started}
        if time.monotonic() - reported >= 60:  # the rate minute by minute: does it fall as tickets grow?
            print(f"  … {run['created']} created after {time.monotonic() - started:.0f} s, "
                  f"{(run['created'] - created_then) / (time.monotonic() - reported):.1f}/s in the last minute "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
            reported, created_then = time.monotonic(), run["created"]
        await asyncio.sleep(0.5)
    raise TimeoutError("the sync did not finish")


def report(what: str, values_ms: list[float], expected: int) -> None:
    if not values_ms:
        print(f"{what}: nothing measured (expected {expected})", flush=True)
        return
    print(f"{what}: n={len(values_ms)}/{expected} p50 {percentile(values_ms, 50):.0f} ms, "
          f"p99 {percentile(values_ms, 99):.0f} ms, max {max(values_ms):.0f} ms (goal p99 <= 1000 ms)", flush=True)


async def webhook_latencies(database_url: str, account_id: int) -> list[float]:
    """Per subject change by Maverick: its timeline row − the webhook event received for it (the
    latest event of that ticket received before the row)."""
    query = """
        SELECT extract(epoch FROM (t.created_at - e.received_at)) * 1000
        FROM ticket_timeline t JOIN tickets k ON k.id = t.ticket_id
        JOIN LATERAL (SELECT received_at FROM maverick_webhook_events e
                      WHERE e.account_id = k.account_id AND e.data->>'ticketId' = k.external_ticket_id
                        AND e.event_type = 'ticket.updated' AND e.received_at <= t.created_at
                      ORDER BY received_at DESC LIMIT 1) e ON true
        WHERE k.account_id = %s AND t.field = 'subject' AND t.actor = 'maverick'"""
    with psycopg.connect(database_url) as connection:
        return [float(row[0]) for row in connection.execute(query, (account_id,))]


async def push_latencies(database_url: str, account_id: int, sim: httpx.AsyncClient, remote_ids: list[str]) -> list[float]:
    from datetime import datetime

    query = """SELECT k.external_ticket_id, max(t.created_at) FROM ticket_timeline t JOIN tickets k ON k.id = t.ticket_id
               WHERE k.account_id = %s AND t.field = 'status' AND t.to_value = '"in_progress"' AND t.actor = 'user'
               GROUP BY k.external_ticket_id"""
    with psycopg.connect(database_url) as connection:
        changed = {remote: at for remote, at in connection.execute(query, (account_id,))}
    latencies = []
    for remote_id in remote_ids:
        ticket = (await sim.get(f"/v1/tickets/{remote_id}", headers={"Authorization": f"Bearer {SIM_KEY}"})).json()
        if ticket.get("lastChangedBy", {}).get("type") == "integration" and remote_id in changed:
            at = datetime.fromisoformat(ticket["updatedAt"].replace("Z", "+00:00"))
            latencies.append((at - changed[remote_id]).total_seconds() * 1000)
    return latencies


async def duplicate_links(database_url: str, account_id: int) -> tuple[int, int]:
    query = """SELECT count(*) - count(DISTINCT external_ticket_id), count(DISTINCT external_ticket_id)
               FROM tickets WHERE account_id = %s AND external_source = 'maverick'"""
    with psycopg.connect(database_url) as connection:
        duplicates, distinct = connection.execute(query, (account_id,)).fetchone()
    return int(duplicates), int(distinct)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=5000)
    parser.add_argument("--baseline", type=int, default=500, help="tickets created through the API for its rate")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--changes", type=int, default=200, help="webhook-driven changes and pushes measured")
    parser.add_argument("--rate", type=float, default=10.0, help="changes per second in steps 3 and 4")
    parser.add_argument("--check", action="store_true", help="exit 1 unless every goal is met")
    parser.add_argument("--keep", action="store_true", help="keep the database and the work dir (logs)")
    parser.add_argument("--one-worker", action="store_true",
                        help="one worker process for both task queues (default: one for tickets, one for Maverick)")
    args = parser.parse_args()
    server_url = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    stack = Stack(Path(tempfile.mkdtemp(prefix="pulse-bench-maverick-")))

    return run_bench(lambda: bench(args, stack, server_url), stack, keep=args.keep, database=DATABASE,
                     server_url=server_url)


if __name__ == "__main__":
    sys.exit(main())
