"""Escalation lateness benchmark: how late does an escalation reach the people it notifies?

One run, one Temporal dev server (SQLite, WAL), one PostgreSQL database (``pulse_bench_escalation``,
recreated on ``$DATABASE_URL``'s server, else 127.0.0.1:5432), a Pulse worker and a Pulse API as
subprocesses (``pulse worker`` / ``pulse api``), and two receivers in this process: an SMTP server
(aiosmtpd, its own thread, no AUTH: the account's email settings have no username) and a Slack
incoming-webhook receiver (``http.server``, a thread per request).

Setup, all before the first ticket: the account, an agent with an email address (the escalation
target), the notification settings pointing at the receivers, the urgent SLA policy
(``--first-response`` 6 / ``--resolution`` 8 min, at risk at 50 %) and ONE escalation rule
(urgent, ``afterMinutes`` = ``--after`` (3), escalate to that agent, channels email + slack).
Then ``--tickets`` (2,000) urgent tickets through ``POST /api/tickets`` with ``--concurrency`` (16)
clients. Each ticket's escalation falls due ``--after`` min after its creation, in the same wave
as its first-response at-risk change (50 % of 6 min = 3 min); the resolution at-risk wave follows
at 4 min, the breaches at 6 and 8 min.

Lateness = the receiver's wall clock when the message arrived (SMTP: end of DATA; Slack: body read)
− the escalation's threshold instant (``ticket_escalations.threshold_at``). Messages are matched to
tickets by the ticket number in the Subject / the Slack text. Goal: p99 <= 1 s per channel
(``--check`` exits 1 otherwise). Also printed: the SLA changes written in the same window (their
lateness as in bench/sla_timers.py), missing and duplicate deliveries, and the worker's RSS
(goal <= 1 GiB for ``--tickets 20000``).

    .venv/bin/python bench/escalation.py [--tickets 2000] [--after 3] [--rate R] [--background N] [--check] [--keep]

``--rate`` paces the creation (R tickets/s), so the thresholds fall due at that rate over
tickets / R seconds; ``--background N`` first creates N high-priority tickets whose SLA and
escalation timers fall due after the run (``BACKGROUND_MINUTES``): open tickets the worker holds
while the measured ones escalate (the 20,000-ticket memory goal).
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402

from bench.common import drop_database, run_bench, wait_healthy  # noqa: E402

DATABASE = "pulse_bench_escalation"
TASK_QUEUE = "bench-escalation"
TARGET_EMAIL = "escalations@bench.example"
BACKGROUND_MINUTES = 600
NUMBER = re.compile(r"\b([A-Z][A-Z0-9]*-\d+)\b")


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


def load() -> str:
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


# -- receivers ------------------------------------------------------------------------------------

class Arrivals:
    """(ticket number, wall-clock arrival) per channel; thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_channel: dict[str, list[tuple[str | None, float]]] = {"email": [], "slack": []}

    def add(self, channel: str, text: str, at: float) -> None:
        found = NUMBER.search(text)
        with self.lock:
            self.by_channel[channel].append((found.group(1) if found else None, at))

    def count(self, channel: str) -> int:
        with self.lock:
            return len(self.by_channel[channel])


class SmtpHandler:
    def __init__(self, arrivals: Arrivals) -> None:
        self.arrivals = arrivals

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        at = time.time()
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.arrivals.add("email", str(parsed["Subject"] or ""), at)
        return "250 Message accepted"


def slack_server(arrivals: Arrivals) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            at = time.time()
            try:
                text = json.loads(body).get("text", "")
            except ValueError:
                text = ""
            arrivals.add("slack", text, at)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            # a sender closing an idle keep-alive connection resets it while the handler waits
            # for the next request line: no request is lost, nothing to report
            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# -- processes ------------------------------------------------------------------------------------

class Stack:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[tuple[str, subprocess.Popen]] = []

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        process = subprocess.Popen(args, env=env, cwd=ROOT, stdout=(self.workdir / f"{name}.log").open("ab"),
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self.children.append((name, process))
        return process

    def check_alive(self) -> None:
        for name, process in self.children:
            if process.poll() is not None:
                tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")

    def close(self) -> None:
        from pulse.devstack import stop

        for _, process in reversed(self.children):
            try:
                stop(process)
            except Exception:  # noqa: BLE001 - keep stopping the others
                pass
        self.children.clear()





# -- the benchmark --------------------------------------------------------------------------------

async def setup_account(database_url: str, args: argparse.Namespace) -> str:
    from pulse.db import make_engine, make_sessionmaker
    from pulse.services.auth import create_account_with_admin
    from pulse.services.sla import SlaSettingsService

    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            account_id, _, token = await create_account_with_admin(session, f"Escalation bench {uuid.uuid4().hex[:6]}")
            await SlaSettingsService(session).put_policy(
                account_id, "urgent", {"first_response_minutes": args.first_response,
                                       "resolution_minutes": args.resolution, "at_risk_percent": 50}, None)
            if args.background:  # held timers that do not fall due during the run
                await SlaSettingsService(session).put_policy(
                    account_id, "high", {"first_response_minutes": BACKGROUND_MINUTES,
                                         "resolution_minutes": 2 * BACKGROUND_MINUTES, "at_risk_percent": 80}, None)
        return token
    finally:
        await engine.dispose()


async def create_background(args: argparse.Namespace, call: Any) -> None:
    """``--background`` high-priority tickets, as fast as ``--concurrency`` clients go: each holds
    SLA timers and an escalation timer due in ``BACKGROUND_MINUTES`` (after the run)."""
    print(f"\n{args.background} background tickets (high: SLA and escalation timers due in {BACKGROUND_MINUTES} min), "
          f"{args.concurrency} clients (load {load()})", flush=True)
    counter = iter(range(args.background))
    errors = 0
    started = time.time()

    async def client() -> None:
        nonlocal errors
        for index in counter:
            try:
                await call("POST", "/api/tickets", {"subject": f"Background {index}", "priority": "high"})
            except Exception as error:  # noqa: BLE001 - counted and reported
                errors += 1
                if errors <= 3:
                    print(f"    background create error: {type(error).__name__}: {str(error)[:200]}", flush=True)
            if index and index % 2000 == 0:
                print(f"    {index} background tickets, {index / (time.time() - started):.1f}/s", flush=True)

    await asyncio.gather(*(client() for _ in range(args.concurrency)))
    seconds = time.time() - started
    print(f"  created {args.background} background tickets in {seconds:.0f} s ({args.background / seconds:.1f}/s), "
          f"{errors} errors", flush=True)


def table(title: str, rows: dict[str, list[float]]) -> None:
    print(f"\n{title}")
    print(f"  {'':<28} {'n':>6} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}")
    for label, values in rows.items():
        if values:
            print(f"  {label:<28} {len(values):>6} " + " ".join(
                f"{v * 1000:>6.0f}ms" for v in (percentile(values, 50), percentile(values, 95),
                                                percentile(values, 99), max(values))))
        else:
            print(f"  {label:<28} {0:>6}  (none)")


async def bench(args: argparse.Namespace, stack: Stack, server_url: str) -> int:
    from aiosmtpd.controller import Controller

    from pulse.devstack import ensure_database, free_port, migrate, start_temporal
    from pulse.temporal import connect_when_ready

    print(f"machine: {os.cpu_count()} CPUs, load {load()} (1/5/15 min)", flush=True)
    drop_database(server_url, DATABASE)
    database_url = ensure_database(server_url, DATABASE)
    migrate(database_url)
    token = await setup_account(database_url, args)

    arrivals = Arrivals()
    smtp_port = free_port()
    smtp = Controller(SmtpHandler(arrivals), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    slack = slack_server(arrivals)
    slack_url = f"http://127.0.0.1:{slack.server_address[1]}/hooks/bench"
    try:
        temporal_port = free_port()
        stack.children.append(("temporal", start_temporal(temporal_port, None, stack.workdir / "temporal.db",
                                                          stack.workdir / "temporal.log")))
        address = f"127.0.0.1:{temporal_port}"
        api_port = free_port()
        env = {**os.environ, "DATABASE_URL": database_url, "TEMPORAL_ADDRESS": address, "PULSE_TASK_QUEUE": TASK_QUEUE,
               "PULSE_API_PORT": str(api_port),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        await connect_when_ready(address)
        worker = stack.spawn("worker", [sys.executable, "-m", "pulse.cli", "worker"], env)
        stack.spawn("api", [sys.executable, "-m", "pulse.cli", "api"], env)
        limits = httpx.Limits(max_connections=args.concurrency + 4, max_keepalive_connections=args.concurrency + 4)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=120, limits=limits,
                                     headers={"Authorization": f"Bearer {token}"}) as http:
            await wait_healthy(http, check_alive=stack.check_alive)
            return await measure(args, stack, http, database_url, arrivals, smtp_port, slack_url, worker)
    finally:
        smtp.stop()
        slack.shutdown()


async def measure(args: argparse.Namespace, stack: Stack, http: httpx.AsyncClient, database_url: str,
                  arrivals: Arrivals, smtp_port: int, slack_url: str, worker: subprocess.Popen) -> int:
    async def call(method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await http.request(method, path, json=body)
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json()

    agent = await call("POST", "/api/users", {"name": "Escalation Target", "email": TARGET_EMAIL})
    await call("PUT", "/api/settings/notifications", {
        "email": {"smtpHost": "127.0.0.1", "smtpPort": smtp_port, "starttls": False,
                  "fromAddress": "support@pulse.example"},
        "slack": {"webhookUrl": slack_url}})
    await call("POST", "/api/tickets/escalation-rules", {
        "name": "Bench level 1", "priority": "urgent", "level": 1, "when": {"afterMinutes": args.after},
        "escalateTo": "specific_user", "escalateToUserId": agent["id"], "notificationChannels": ["email", "slack"]})
    if args.background:
        await call("POST", "/api/tickets/escalation-rules", {
            "name": "Bench background", "priority": "high", "level": 1, "when": {"afterMinutes": BACKGROUND_MINUTES},
            "escalateTo": "specific_user", "escalateToUserId": agent["id"], "notificationChannels": ["email", "slack"]})
    await asyncio.sleep(1)
    rss = {"idle worker": rss_mb(worker.pid)}
    if args.background:
        await create_background(args, call)
        rss[f"{args.background} background tickets"] = rss_mb(worker.pid)

    # create --------------------------------------------------------------------------------------
    pace = f"paced at {args.rate:g}/s" if args.rate else f"{args.concurrency} clients"
    print(f"\n{args.tickets} urgent tickets through POST /api/tickets, {pace}; escalation after "
          f"{args.after} min (email + slack); SLA {args.first_response} / {args.resolution} min at risk at 50 % "
          f"(load {load()})", flush=True)
    numbers: dict[str, int] = {}
    counter = iter(range(args.tickets))
    errors = 0

    async def client() -> None:
        nonlocal errors
        for index in counter:
            if args.rate:  # paced: ticket i is created at i / rate, so the thresholds are spread the same way
                await asyncio.sleep(max(0.0, started + index / args.rate - time.time()))
            try:
                body = await call("POST", "/api/tickets", {"subject": f"Escalation bench {index}", "priority": "urgent"})
                numbers[body["ticketNumber"]] = body["id"]
            except Exception as error:  # noqa: BLE001 - counted and reported
                errors += 1
                if errors <= 3:
                    print(f"    create error: {type(error).__name__}: {str(error)[:200]}", flush=True)

    started = time.time()
    await asyncio.gather(*(client() for _ in range(args.concurrency)))
    seconds = time.time() - started
    print(f"  created {len(numbers)} tickets in {seconds:.1f} s ({len(numbers) / seconds:.1f}/s), {errors} errors",
          flush=True)
    first_due = started + args.after * 60
    if time.time() > first_due:
        print(f"  note: the creation ended {time.time() - first_due:.0f} s after the first escalation fell due "
              f"(creates and escalations competed)", flush=True)
    rss["just created"] = rss_mb(worker.pid)

    # wait for the deliveries -----------------------------------------------------------------------
    expected = len(numbers)
    last_due = time.time() + args.after * 60
    peak = 0.0
    while True:
        stack.check_alive()
        peak = max(peak, rss_mb(worker.pid))
        got = {channel: arrivals.count(channel) for channel in ("email", "slack")}
        if all(value >= expected for value in got.values()) or time.time() > last_due + args.grace:
            break
        print(f"  … email {got['email']}/{expected}, slack {got['slack']}/{expected} "
              f"(load {load()}, worker RSS {rss_mb(worker.pid):.0f} MB)", flush=True)
        await asyncio.sleep(10 if time.time() < last_due - 10 else 2)
    await asyncio.sleep(3)  # late duplicates
    rss["while escalating (peak)"] = peak

    # results ---------------------------------------------------------------------------------------
    with arrivals.lock:  # before the database: every message counted here has its escalation row
        received = {channel: list(values) for channel, values in arrivals.by_channel.items()}
    with psycopg.connect(database_url, autocommit=True) as connection:
        escalations = connection.execute(
            "SELECT ticket_id, EXTRACT(EPOCH FROM threshold_at), EXTRACT(EPOCH FROM escalated_at) "
            "FROM ticket_escalations").fetchall()
        window_end = time.time()
        sla = connection.execute(
            "SELECT event_type, metric, EXTRACT(EPOCH FROM created_at - occurred_at) FROM ticket_events "
            "WHERE event_type IN ('sla_at_risk', 'sla_breached')").fetchall()
        statuses = connection.execute(
            "SELECT channel, status, count(*) FROM notification_deliveries GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
    per_ticket: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for ticket_id, threshold, escalated in escalations:
        per_ticket[ticket_id].append((float(threshold), float(escalated)))
    threshold_of = {number: per_ticket[ticket_id][0][0] for number, ticket_id in numbers.items()
                    if per_ticket.get(ticket_id)}
    print(f"\n  escalations recorded: {len(escalations)} for {len(per_ticket)} of {expected} tickets"
          f" ({sum(1 for v in per_ticket.values() if len(v) > 1)} tickets with more than one)", flush=True)
    print("  notification_deliveries: " + ", ".join(f"{c}/{s} {n}" for c, s, n in statuses), flush=True)

    lateness: dict[str, list[float]] = {}
    problems = []
    for channel in ("email", "slack"):
        seen: dict[str, int] = defaultdict(int)
        values = []
        unmatched = 0
        for number, at in received[channel]:
            if number is None or number not in threshold_of:
                unmatched += 1
                continue
            seen[number] += 1
            if seen[number] == 1:
                values.append(at - threshold_of[number])
        missing = sum(1 for number in numbers if seen.get(number, 0) == 0)
        duplicates = sum(count - 1 for count in seen.values() if count > 1)
        lateness[channel] = values
        print(f"  {channel}: {len(received[channel])} arrivals, {missing} tickets missing, "
              f"{duplicates} duplicates, {unmatched} unmatched", flush=True)
        if missing or duplicates or unmatched:
            problems.append(f"{channel}: {missing} missing, {duplicates} duplicates, {unmatched} unmatched")
    decided = [escalated - threshold for rows in per_ticket.values() for threshold, escalated in rows[:1]]
    table("lateness (arrival at the receiver − threshold instant)",
          {"email": lateness["email"], "slack": lateness["slack"],
           "(escalated_at − threshold_at)": decided})
    if threshold_of:
        spread = max(threshold_of.values()) - min(threshold_of.values())
        print(f"  thresholds spread over {spread:.0f} s", flush=True)
    table(f"SLA changes written by {time.strftime('%H:%M:%S', time.gmtime(window_end))} UTC in the same run "
          f"(DB write − due instant)",
          {f"{kind} {metric}": [float(r[2]) for r in sla if r[0] == kind and r[1] == metric]
           for kind in ("sla_at_risk", "sla_breached") for metric in ("first_response", "resolution")})
    print("\nworker RSS:")
    for label, value in rss.items():
        print(f"  {label:<28} {value:7.0f} MB")
    goal_rss = max(rss.values()) <= 1024
    met = all(values and percentile(values, 99) <= 1.0 for values in lateness.values())
    print(f"\ngoal p99 <= 1 s on both channels: {'met' if met else 'MISSED'}"
          + (f"; worker RSS <= 1 GiB: {'met' if goal_rss else 'MISSED'}" if args.tickets + args.background >= 20000 else ""), flush=True)
    if problems:
        print("DELIVERY PROBLEMS: " + "; ".join(problems), flush=True)
    if args.check and not (met and not problems):
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--after", type=int, default=3, help="the rule's afterMinutes")
    parser.add_argument("--first-response", type=int, default=6, help="urgent SLA minutes")
    parser.add_argument("--resolution", type=int, default=8, help="urgent SLA minutes")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--background", type=int, default=0,
                        help="open tickets created first whose SLA and escalation timers fall due after the run")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="creates per second (0: as fast as --concurrency clients go); the thresholds follow")
    parser.add_argument("--grace", type=int, default=120, help="seconds to wait after the last threshold")
    parser.add_argument("--check", action="store_true", help="exit 1 unless p99 <= 1 s on both channels")
    parser.add_argument("--keep", action="store_true", help="keep the database and the work dir (logs)")
    args = parser.parse_args()

    server_url = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    stack = Stack(Path(tempfile.mkdtemp(prefix="pulse-bench-escalation-")))

    return run_bench(lambda: bench(args, stack, server_url), stack, keep=args.keep, database=DATABASE,
                     server_url=server_url)


if __name__ == "__main__":
    sys.exit(main())
