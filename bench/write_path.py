"""Write-path benchmark: what Pulse's API costs on top of the Temporal round trips it is built on.

One run, one Temporal dev server (persisted to SQLite with the WAL pragmas, as ``make run``
does), one PostgreSQL database (``pulse_bench_write``, recreated on ``$DATABASE_URL``'s server or
postgresql://postgres@127.0.0.1:5432), one Pulse worker and the API as subprocesses (the real
deployment shape, running the code of the tree this file lives in). With the same concurrency
each time, raw, floor and API calls alternating in rounds so that load from elsewhere hits all alike:

1. creates/s through ``POST /api/tickets`` vs
   - the **floor**: a raw update-with-start (``USE_EXISTING``) of a bench workflow whose update
     runs ONE local activity that INSERTs one row into PostgreSQL, then answers;
   - raw ``client.start_workflow`` of a no-op workflow and raw update-with-start of a no-op
     workflow (the issue-2 baselines, kept for reference);
2. ``PATCH /api/tickets/{id}`` latency p50/p99 (10 clients, each on its own ticket / workflow; a
   subject edit, and a subject+priority edit, which re-targets the SLA clock and re-publishes
   search attributes) vs
   - the **floor**: a raw ``handle.execute_update`` on a long-lived bench workflow whose update
     runs ONE local activity that UPDATEs the row that workflow inserted, then answers;
   - a raw ``handle.execute_update`` round trip on a no-op workflow (reference).

The floors are raw Temporal plus the one database write, no Pulse code (bench/floors.py): the
workflow and its local activities run on the bench's in-process worker, with a pool of 10
psycopg connections (SQLAlchemy async engine) to a ``bench_floor`` table in the bench database.

Goals: creates/s >= 0.8x the update-with-start floor (at every concurrency measured) and PATCH
(subject edit) p99 <= 1.5x the update floor's p99. The goal table also prints, for reference, the
issue-2 ratios (creation vs raw start >= 0.5x, PATCH p99 vs no-op update <= 3x), and the CPU
milliseconds each process spent per operation, floors included — on a shared 2-core machine
rates and tails move with the load average; CPU per operation barely does.

    .venv/bin/python bench/write_path.py [--creates 450] [--concurrency 10,32] [--patches 300]
        [--rounds 3] [--env NAME=VALUE ...] [--profile DIR] [--keep] [--check] [--floors-only]

``--profile DIR`` samples the worker and the API with py-spy (``$PY_SPY`` or on PATH) during extra
API runs; ``--check`` exits 1 unless both goals hold; ``--floors-only`` runs only the raw baselines
and the floors (no Pulse worker, API or migrations). See bench/README.md for results.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.common import run_bench, wait_healthy  # noqa: E402
from bench.floors import FloorActivities, FloorWorkflow, floor_pool  # noqa: E402
import psycopg  # noqa: E402
from temporalio import workflow  # noqa: E402
from temporalio.client import WithStartWorkflowOperation  # noqa: E402
from temporalio.common import WorkflowIDConflictPolicy  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

NOOP_TASK_QUEUE = "bench-noop"
PULSE_TASK_QUEUE = "bench-pulse-tickets"
DATABASE = "pulse_bench_write"


# -- the raw baseline: a workflow that does nothing but answer updates ----------------------------

@workflow.defn(sandboxed=False)
class NoopStartWorkflow:
    """What raw ``start_workflow`` starts: it ends in its first workflow task."""

    @workflow.run
    async def run(self) -> None:
        return None


@workflow.defn(sandboxed=False)
class NoopWorkflow:
    """Stays open until told to finish; its update changes one field and answers at once."""

    def __init__(self) -> None:
        self.version = 0
        self.done = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done)
        return self.version

    @workflow.update
    async def touch(self, value: str) -> int:
        self.version += 1
        return self.version

    @touch.validator
    def validate_touch(self, value: str) -> None:
        if not value:
            raise ValueError("empty")

    @workflow.signal
    def finish(self) -> None:
        self.done = True


# -- measuring ------------------------------------------------------------------------------------

# name -> pid of the processes whose CPU time is accounted per operation
PROCESSES: dict[str, int] = {"bench": os.getpid()}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


DATABASE_ADMIN_URL: list[str] = []  # set once the database exists


def process_cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return None


def cpu_seconds() -> dict[str, dict[int, float]]:
    """CPU time (user + system, all threads) so far, per accounted process and pid; ``postgres``
    holds the server backends connected to the bench database (when the server runs here)."""
    found: dict[str, dict[int, float]] = {}
    for name, pid in PROCESSES.items():
        seconds = process_cpu(pid)
        if seconds is not None:
            found[name] = {pid: seconds}
    if DATABASE_ADMIN_URL:
        try:
            with psycopg.connect(DATABASE_ADMIN_URL[0], autocommit=True) as connection:
                pids = [row[0] for row in connection.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (DATABASE,))]
            backends = {pid: process_cpu(pid) for pid in pids}
            found["postgres"] = {pid: seconds for pid, seconds in backends.items() if seconds is not None}
        except psycopg.Error:
            pass
    return found


def cpu_spent(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
    """CPU seconds per process name between two snapshots (a postgres backend that closed in
    between is not counted: with a steady pool that is rare)."""
    return {name: sum(seconds - before.get(name, {}).get(pid, 0.0) for pid, seconds in pids.items())
            for name, pids in after.items()}


@dataclass
class Run:
    label: str
    count: int
    seconds: float
    latencies: list[float]
    errors: int = 0
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
        return ordered[index] * 1000


async def drive(label: str, total: int, concurrency: int, op: Callable[[int, int], Awaitable[None]]) -> Run:
    """``total`` calls of ``op(worker_index, call_index)`` spread over ``concurrency`` clients;
    ``worker_index`` is stable per client (so a client can keep to its own ticket)."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))

    async def client(worker_index: int) -> None:
        nonlocal errors
        for call_index in counter:
            started = time.perf_counter()
            try:
                await op(worker_index, call_index)
            except Exception as error:  # noqa: BLE001 - counted and reported
                errors += 1
                if errors <= 3:
                    print(f"    {label}: error {type(error).__name__}: {str(error)[:200]}", flush=True)
                continue
            latencies.append(time.perf_counter() - started)

    cpu_before = cpu_seconds()
    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(concurrency)))
    seconds = time.perf_counter() - started
    cpu_after = cpu_seconds()
    cpu = cpu_spent(cpu_before, cpu_after)
    return Run(label, len(latencies), seconds, latencies, errors, cpu)


# bench = the clients + the no-op/floor worker; floor api = the skeleton's endpoint (bench/floor_api.py)
CPU_COLUMNS = ("temporal", "worker", "api", "floor api", "postgres", "bench")


def merge(label: str, runs: list[Run]) -> Run:
    cpu: dict[str, float] = {}
    for run in runs:
        for name, seconds in run.cpu.items():
            cpu[name] = cpu.get(name, 0.0) + seconds
    return Run(label, sum(r.count for r in runs), sum(r.seconds for r in runs),
               [latency for r in runs for latency in r.latencies], sum(r.errors for r in runs), cpu)


def show(run: Run) -> None:
    print(f"  {run.label:<44} {run.count:>5} ok {run.errors:>3} err  {run.rate:7.1f}/s  "
          f"p50 {run.pct(50):6.1f} ms  p99 {run.pct(99):6.1f} ms", flush=True)
    if run.count:
        per_op = "  ".join(f"{name} {seconds / run.count * 1000:.1f}" for name, seconds in run.cpu.items()
                           if seconds > 0)
        print(f"  {'':<44} CPU ms/op: {per_op}", flush=True)


def load() -> str:
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


async def profile(directory: Path, name: str, work: Callable[[], Awaitable[Run]]) -> None:
    """Run ``work`` with py-spy sampling the worker and the API; writes collapsed stacks
    (``<process>-<name>.txt``, for flamegraph tools / speedscope) and prints the hottest frames."""
    py_spy = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if not py_spy:
        print("  (--profile needs py-spy on PATH or $PY_SPY)")
        return
    directory.mkdir(parents=True, exist_ok=True)
    samplers = {}
    for process in ("worker", "api"):
        output = directory / f"{process}-{name}.txt"
        samplers[process] = (output, subprocess.Popen(
            [py_spy, "record", "--pid", str(PROCESSES[process]), "--format", "raw", "--rate", "100",
             "--output", str(output)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    await asyncio.sleep(1)
    run = await work()
    for _, sampler in samplers.values():
        sampler.send_signal(signal.SIGINT)
    for process, (output, sampler) in samplers.items():
        sampler.wait(timeout=30)
        print(f"\n  py-spy {process}, {name} ({run.count} ops, {run.rate:.1f}/s): {output}")
        summarise(output)


def summarise(collapsed: Path, top: int = 12) -> None:
    """The frames with the most samples (inclusive, each counted once per stack)."""
    if not collapsed.exists():
        return
    total = 0
    inclusive: dict[str, int] = {}
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        for frame in set(stack.split(";")):
            inclusive[frame] = inclusive.get(frame, 0) + samples
    for frame, samples in sorted(inclusive.items(), key=lambda item: -item[1])[:top]:
        print(f"    {samples / total * 100:5.1f}%  {frame[:140]}")


# -- the stack ------------------------------------------------------------------------------------

class Stack:
    """Temporal dev server + Pulse worker + Pulse API, all stopped by ``close``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[tuple[str, subprocess.Popen]] = []

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = (self.workdir / f"{name}.log").open("ab")
        process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   cwd=ROOT)
        self.children.append((name, process))
        PROCESSES[name] = process.pid
        return process

    def check_alive(self) -> None:
        for name, process in self.children:
            if process.poll() is not None:
                tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")

    def show_logs(self, lines: int = 40) -> None:
        for name in ("api", "worker"):
            path = self.workdir / f"{name}.log"
            if path.exists():
                print(f"\n--- last lines of {name}.log ---")
                print("\n".join(path.read_text(errors="replace").splitlines()[-lines:]))

    def close(self) -> None:
        from pulse.devstack import stop

        for _, process in reversed(self.children):
            try:
                stop(process)
            except Exception:  # noqa: BLE001 - keep stopping the others
                pass


def recreate_database(server_url: str, *, migrated: bool = True) -> str:
    from pulse.devstack import ensure_database, with_database

    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    url = ensure_database(server_url, DATABASE)
    if migrated:
        from pulse.devstack import migrate

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


# -- the benchmark --------------------------------------------------------------------------------

async def bench(args: argparse.Namespace, stack: Stack) -> int:
    from pulse.devstack import free_port, start_temporal, with_database
    from pulse.temporal import connect_when_ready

    pulse_part = not args.floors_only
    server_url = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    print(f"machine: {os.cpu_count()} CPUs, load {load()} (1/5/15 min)", flush=True)
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        print("  note: the machine is busy; rates and tails will be lower and noisier than on a quiet one", flush=True)
    print("setting up: PostgreSQL database, Temporal dev server (SQLite, WAL)"
          + (", worker, API …" if pulse_part else " (floors only: no Pulse worker or API) …"), flush=True)
    database_url = recreate_database(server_url, migrated=pulse_part)
    DATABASE_ADMIN_URL.append(with_database(server_url, "postgres"))
    token = await make_account(database_url) if pulse_part else ""

    temporal_port = free_port()
    temporal = start_temporal(temporal_port, None, stack.workdir / "temporal.db", stack.workdir / "temporal.log")
    stack.children.append(("temporal", temporal))
    PROCESSES["temporal"] = temporal.pid
    temporal_address = f"127.0.0.1:{temporal_port}"

    api_port = free_port()
    if pulse_part:
        # the children run the code of the tree this script lives in (PYTHONPATH before the editable install)
        env = {**os.environ, "DATABASE_URL": database_url, "TEMPORAL_ADDRESS": temporal_address,
               "PULSE_TASK_QUEUE": PULSE_TASK_QUEUE, "PULSE_API_PORT": str(api_port),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        env.update(dict(item.split("=", 1) for item in args.env))
        python = sys.executable
        stack.spawn("worker", [python, "-m", "pulse.cli", "worker"], env)
        stack.spawn("api", [python, "-m", "pulse.cli", "api"], env)

    floor_api_port, floor_token = free_port(), uuid.uuid4().hex
    stack.spawn("floor api", [sys.executable, str(ROOT / "bench" / "floor_api.py"), str(floor_api_port),
                              temporal_address, NOOP_TASK_QUEUE, floor_token], dict(os.environ))
    client = await connect_when_ready(temporal_address)

    connections = max(args.concurrency + [args.patch_clients]) + 8
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", headers=headers, timeout=120, limits=limits) as http,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{floor_api_port}", timeout=120, limits=limits,
                          headers={"Authorization": f"Bearer {floor_token}"}) as skeleton_http,
        # the floors' database: a table of their own in the bench database, a steady pool in this process
        floor_pool(database_url) as floor_engine,
        Worker(client, task_queue=NOOP_TASK_QUEUE, workflows=[NoopWorkflow, NoopStartWorkflow, FloorWorkflow],
               activities=FloorActivities(floor_engine).all(), no_remote_activities=True,
               max_concurrent_workflow_tasks=100),
    ):
        if pulse_part:
            await wait_healthy(http, check_alive=stack.check_alive)
        await wait_healthy(skeleton_http, check_alive=stack.check_alive, path="/floor/health")
        run_id = uuid.uuid4().hex[:8]

        async def api_create(_: int, i: int) -> None:
            response = await http.post("/api/tickets", json={"subject": f"Bench ticket {i}", "priority": "high",
                                                             "description": "created by bench/write_path.py"})
            if response.status_code != 201:
                raise RuntimeError(f"{response.status_code} {response.text[:200]}")

        def raw_start(tag: str) -> Callable[[int, int], Awaitable[None]]:
            async def op(_: int, i: int) -> None:
                await client.start_workflow(NoopStartWorkflow.run, id=f"noop-{run_id}-{tag}-{i}", task_queue=NOOP_TASK_QUEUE)
            return op

        def raw_update_with_start(tag: str) -> Callable[[int, int], Awaitable[None]]:
            async def op(_: int, i: int) -> None:
                start = WithStartWorkflowOperation(NoopWorkflow.run, id=f"noop-{run_id}-{tag}-{i}",
                                                   task_queue=NOOP_TASK_QUEUE,
                                                   id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
                await client.execute_update_with_start_workflow(NoopWorkflow.touch, "create",
                                                                start_workflow_operation=start)
            return op

        def floor_create(tag: str) -> Callable[[int, int], Awaitable[None]]:
            """The creation floor: update-with-start whose update INSERTs one row in a local activity."""
            async def op(_: int, i: int) -> None:
                start = WithStartWorkflowOperation(FloorWorkflow.run, id=f"floor-{run_id}-{tag}-{i}",
                                                   task_queue=NOOP_TASK_QUEUE,
                                                   id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
                await client.execute_update_with_start_workflow(FloorWorkflow.create, f"Bench ticket {i}",
                                                                start_workflow_operation=start)
            return op

        def skeleton_create(tag: str) -> Callable[[int, int], Awaitable[None]]:
            """The skeleton's create (bench/floors.py): HTTP, token, update-with-start, one recorded INSERT."""
            async def op(_: int, i: int) -> None:
                response = await skeleton_http.post(f"/floor/skeleton-{run_id}-{tag}-{i}",
                                                    json={"subject": f"Bench ticket {i}"})
                if response.status_code != 201:
                    raise RuntimeError(f"{response.status_code} {response.text[:200]}")
            return op

        async def drained() -> None:
            """Wait until every raw-started workflow has run its first task, so a backlog left by
            ``start_workflow`` (which does not wait for the worker) cannot slow the next phase."""
            for _ in range(600):
                count = await client.count_workflows("WorkflowType='NoopStartWorkflow' AND ExecutionStatus='Running'")
                if count.count == 0:
                    return
                await asyncio.sleep(0.1)
            raise TimeoutError("raw-started workflows did not drain")

        # warm up every path (first requests pay for connections, imports, caches)
        print("warming up …", flush=True)
        if pulse_part:
            await drive("warm-up api create", 20, 5, api_create)
        await drive("warm-up raw start", 20, 5, raw_start("warm"))
        await drive("warm-up raw update-with-start", 20, 5, raw_update_with_start("warm-uws"))
        await drive("warm-up floor update-with-start", 20, 5, floor_create("warm-floor"))
        await drive("warm-up skeleton create", 20, 5, skeleton_create("warm-skeleton"))
        await drained()

        # Raw, floor and API alternate in rounds, so load from elsewhere on the machine hits all alike.
        rounds = args.rounds
        creates: list[tuple[int, Run, Run, Run, Run, Run | None]] = []
        if args.concurrency:
            print(f"\n1. creation, {args.creates} each, in {rounds} alternating rounds (load before: {load()})", flush=True)
        for concurrency in args.concurrency:
            raw, uws, floor, skeleton, api = [], [], [], [], []
            per_round = max(1, args.creates // rounds)
            for r in range(rounds):
                raw.append(await drive("raw start_workflow", per_round, concurrency, raw_start(f"c{concurrency}-{r}")))
                await drained()
                uws.append(await drive("raw update-with-start", per_round, concurrency,
                                       raw_update_with_start(f"u{concurrency}-{r}")))
                floor.append(await drive("floor update-with-start", per_round, concurrency,
                                         floor_create(f"f{concurrency}-{r}")))
                skeleton.append(await drive("skeleton create", per_round, concurrency,
                                            skeleton_create(f"s{concurrency}-{r}")))
                if pulse_part:
                    api.append(await drive("POST /api/tickets", per_round, concurrency, api_create))
                stack.check_alive()
            merged = (merge(f"raw start_workflow, {concurrency} clients", raw),
                      merge(f"raw update-with-start (no-op), {concurrency} clients", uws),
                      merge(f"floor update-with-start + INSERT, {concurrency} clients", floor),
                      merge(f"skeleton create (HTTP + recorded INSERT), {concurrency} clients", skeleton),
                      merge(f"POST /api/tickets, {concurrency} clients", api) if pulse_part else None)
            for run in merged:
                if run is not None:
                    show(run)
            creates.append((concurrency, *merged))

        raw_u: Run | None = None
        floor_u: Run | None = None
        skeleton_u: Run | None = None
        patches: list[Run] = []
        clients = args.patch_clients
        if args.patches > 0:
            # updates: each client keeps to its own ticket / workflow
            tickets = []
            if pulse_part:
                for i in range(clients):
                    response = await http.post("/api/tickets", json={"subject": f"Patch target {i}"})
                    response.raise_for_status()
                    tickets.append(response.json()["id"])
            noop_handles, floor_handles = [], []
            for i in range(clients):
                noop_handles.append(await client.start_workflow(NoopWorkflow.run, id=f"noop-{run_id}-patch-{i}",
                                                                task_queue=NOOP_TASK_QUEUE))
                handle = await client.start_workflow(FloorWorkflow.run, id=f"floor-{run_id}-patch-{i}",
                                                     task_queue=NOOP_TASK_QUEUE)
                await handle.execute_update(FloorWorkflow.create, f"Patch target {i}")  # its row
                floor_handles.append(handle)
            priorities = ["low", "medium", "high", "urgent"]

            async def api_patch_edit(w: int, i: int) -> None:
                """A field edit (subject): no search attribute changes."""
                response = await http.patch(f"/api/tickets/{tickets[w]}", json={"subject": f"Patched {i}"})
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code} {response.text[:200]}")

            async def api_patch_priority(w: int, i: int) -> None:
                """A priority change: the workflow re-publishes its search attributes."""
                response = await http.patch(f"/api/tickets/{tickets[w]}",
                                            json={"subject": f"Patched {i}", "priority": priorities[i % 4]})
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code} {response.text[:200]}")

            async def raw_update(w: int, i: int) -> None:
                await noop_handles[w].execute_update(NoopWorkflow.touch, f"Patched {i}")

            async def skeleton_patch(w: int, i: int) -> None:
                """The skeleton's edit: HTTP, token, update, one recorded UPDATE of the floor's row."""
                response = await skeleton_http.patch(f"/floor/floor-{run_id}-patch-{w}", json={"subject": f"Patched {i}"})
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code} {response.text[:200]}")

            async def floor_update(w: int, i: int) -> None:
                """The update floor: execute_update whose update UPDATEs its row in a local activity."""
                await floor_handles[w].execute_update(FloorWorkflow.edit, f"Patched {i}")

            if pulse_part:
                await drive("warm-up api patch", 20, clients, api_patch_priority)
            await drive("warm-up raw update", 20, clients, raw_update)
            await drive("warm-up floor update", 20, clients, floor_update)
            await drive("warm-up skeleton patch", 20, clients, skeleton_patch)
            print(f"\n2. updates, {args.patches} each, {clients} clients, {rounds} alternating rounds "
                  f"(load before: {load()})", flush=True)
            raw_rounds, floor_rounds, skeleton_rounds, edit_rounds, priority_rounds = [], [], [], [], []
            per_round = max(1, args.patches // rounds)
            for r in range(rounds):
                raw_rounds.append(await drive("raw execute_update", per_round, clients, raw_update))
                floor_rounds.append(await drive("floor execute_update", per_round, clients, floor_update))
                skeleton_rounds.append(await drive("skeleton PATCH", per_round, clients, skeleton_patch))
                if pulse_part:
                    edit_rounds.append(await drive("PATCH subject", per_round, clients, api_patch_edit))
                    priority_rounds.append(await drive("PATCH priority", per_round, clients, api_patch_priority))
            raw_u = merge(f"raw execute_update (no-op), {clients} clients", raw_rounds)
            floor_u = merge(f"floor execute_update + UPDATE, {clients} clients", floor_rounds)
            skeleton_u = merge(f"skeleton PATCH (HTTP + recorded UPDATE), {clients} clients", skeleton_rounds)
            if pulse_part:
                patches = [merge(f"PATCH subject, {clients} clients", edit_rounds),
                           merge(f"PATCH subject+priority, {clients} clients", priority_rounds)]
            for run in [raw_u, floor_u, skeleton_u, *patches]:
                show(run)
            stack.check_alive()

            if args.profile and pulse_part:
                await profile(args.profile, "create", lambda: drive("profiled create", args.creates // 2, 10, api_create))
                await profile(args.profile, "patch", lambda: drive("profiled patch", args.patches, clients, api_patch_priority))

            await asyncio.gather(*(handle.signal(NoopWorkflow.finish) for handle in noop_handles),
                                 *(handle.signal(FloorWorkflow.finish) for handle in floor_handles))

    # -- the tables ---------------------------------------------------------------------------
    print("\n| measure | clients | floor / raw Temporal | Pulse API | ratio | goal |")
    print("|---|---:|---:|---:|---:|---|")
    goals: dict[str, bool] = {}  # the goals --check requires; missing = not measured

    def row(what: str, clients_: int, base: float, api_value: float | None, ratio: float | None, goal: str) -> None:
        api_cell = f"{api_value:.1f}" if api_value is not None else "-"
        ratio_cell = f"{ratio:.2f}x" if ratio is not None else "-"
        print(f"| {what} | {clients_} | {base:.1f} | {api_cell} | {ratio_cell} | {goal} |")

    def verdict(met: bool) -> str:
        return "ok" if met else "MISSED"

    for concurrency, raw, uws, floor, skeleton, api in creates:
        def vs(base: Run) -> float | None:
            return api.rate / base.rate if api is not None and base.rate else None

        api_rate = api.rate if api is not None else None
        ratio = vs(floor)
        if ratio is not None:
            goals["creates"] = goals.get("creates", True) and ratio >= 0.8
        row("creates/s (floor = update-with-start + LA INSERT)", concurrency, floor.rate, api_rate, ratio,
            f">= 0.8x {verdict(ratio >= 0.8)}" if ratio is not None else ">= 0.8x")
        row("creates/s (skeleton: HTTP + recorded INSERT, vs the floor)", concurrency, floor.rate, skeleton.rate,
            skeleton.rate / floor.rate if floor.rate else None, "(the architecture's best)")
        row("creates/s (Pulse vs the skeleton)", concurrency, skeleton.rate, api_rate, vs(skeleton), "(context)")
        ratio = vs(raw)
        row("creates/s (raw = start_workflow)", concurrency, raw.rate, api_rate, ratio,
            f"issue 2: >= 0.5x {verdict(ratio >= 0.5)} (reference)" if ratio is not None else "(reference)")
        row("creates/s (raw = update-with-start, no-op)", concurrency, uws.rate, api_rate, vs(uws), "(context)")
    if floor_u is not None and raw_u is not None and skeleton_u is not None:
        row("skeleton PATCH: p99 ms (vs the floor)", clients, floor_u.pct(99), skeleton_u.pct(99),
            skeleton_u.pct(99) / floor_u.pct(99), "(the architecture's best)")
        row("skeleton PATCH: p50 ms (vs the floor)", clients, floor_u.pct(50), skeleton_u.pct(50),
            skeleton_u.pct(50) / floor_u.pct(50), "(context)")
        if not patches:
            for base, what in ((floor_u, "floor = execute_update + LA UPDATE"),
                               (raw_u, "raw = execute_update, no-op")):
                for q in (50, 99):
                    row(f"update p{q} ms ({what})", clients, base.pct(q), None, None, "(context)")
        for api_u, what in zip(patches, ("PATCH subject", "PATCH subject+priority")):
            subject = what == "PATCH subject"
            p99_floor = api_u.pct(99) / floor_u.pct(99)
            p99_raw = api_u.pct(99) / raw_u.pct(99)
            if subject:
                goals["patch"] = p99_floor <= 1.5
            row(f"{what}: p50 ms (floor = execute_update + LA UPDATE)", clients, floor_u.pct(50), api_u.pct(50),
                api_u.pct(50) / floor_u.pct(50), "(context)")
            row(f"{what}: p99 ms (floor = execute_update + LA UPDATE)", clients, floor_u.pct(99), api_u.pct(99),
                p99_floor, f"<= 1.5x {verdict(p99_floor <= 1.5)}" if subject else "(context)")
            row(f"{what}: p99 ms (vs the skeleton)", clients, skeleton_u.pct(99), api_u.pct(99),
                api_u.pct(99) / skeleton_u.pct(99), "(context)")
            row(f"{what}: p50 ms (raw = execute_update, no-op)", clients, raw_u.pct(50), api_u.pct(50),
                api_u.pct(50) / raw_u.pct(50), "(context)")
            row(f"{what}: p99 ms (raw = execute_update, no-op)", clients, raw_u.pct(99), api_u.pct(99),
                p99_raw, f"issue 2: <= 3x {verdict(p99_raw <= 3)} (reference)")
            row(f"{what}: updates/s (floor)", clients, floor_u.rate, api_u.rate,
                api_u.rate / floor_u.rate if floor_u.rate else None, "(context)")
    measured = ([run for _, *runs in creates for run in runs if run is not None]
                + [run for run in (raw_u, floor_u, skeleton_u) if run is not None] + patches)
    print("\nCPU ms per operation, by process (bench = the load generator + the in-process worker running the"
          " no-op and floor workflows and the floors' local activities):\n")
    print("| operation | " + " | ".join(CPU_COLUMNS) + " | total |")
    print("|---|" + "---:|" * (len(CPU_COLUMNS) + 1))
    for run in measured:
        per_op = {name: seconds / run.count * 1000 for name, seconds in run.cpu.items()} if run.count else {}
        cells = [f"{per_op[name]:.1f}" if per_op.get(name, 0) >= 0.05 else "-" for name in CPU_COLUMNS]
        print(f"| {run.label} | " + " | ".join(cells) + f" | {sum(per_op.get(n, 0) for n in CPU_COLUMNS):.1f} |")
    errors = sum(run.errors for run in measured)
    print(f"\nmachine: {os.cpu_count()} CPUs, load average now {load()} (1/5/15 min); errors: {errors}")
    if errors:
        stack.show_logs()
        return 1
    if pulse_part:
        met = goals.get("creates") is True and goals.get("patch") is True
        print("goals (creates/s >= 0.8x floor, PATCH subject p99 <= 1.5x floor): "
              + ", ".join(f"{name} {verdict(value)}" for name, value in goals.items())
              + ("" if len(goals) == 2 else " (not all measured)"))
        return 0 if met or not args.check else 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--creates", type=int, default=450, help="creates per measurement (default 450)")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",") if x], default=[10, 32],
                        help="client counts for creation (default 10,32; empty skips creation)")
    parser.add_argument("--patches", type=int, default=300,
                        help="updates per measurement (default 300; 0 skips the update part)")
    parser.add_argument("--patch-clients", type=int, default=10, help="clients for updates (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating raw/API rounds (default 3)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the worker and API (e.g. PULSE_DB_POOL_SIZE=20)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="afterwards, sample the worker and API with py-spy during extra API runs")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir and the database")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 unless both goals hold (creates/s >= 0.8x floor, PATCH p99 <= 1.5x floor)")
    parser.add_argument("--floors-only", action="store_true",
                        help="only the raw baselines and the floors: no Pulse worker, API or migrations")
    args = parser.parse_args()
    if args.check and args.floors_only:
        parser.error("--check needs the Pulse part: it cannot be combined with --floors-only")

    workdir = Path(tempfile.mkdtemp(prefix="pulse-bench-"))
    stack = Stack(workdir)

    return run_bench(lambda: bench(args, stack), stack, keep=args.keep, database=DATABASE,
                     server_url=os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres")


if __name__ == "__main__":
    sys.exit(main())
