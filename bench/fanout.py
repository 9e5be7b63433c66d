"""Rules fan-out benchmark: how long until every open ticket has re-computed its agenda after an
account-wide rule change, and is each re-computed exactly once — also across a worker crash?

One run, one Temporal dev server (persisted to SQLite with the WAL pragmas, as ``make run``
does), one PostgreSQL database (``pulse_bench_fanout``, recreated on ``$DATABASE_URL``'s server or
postgresql://postgres@127.0.0.1:5432), one Pulse worker and the API as subprocesses (the real
deployment shape, running the code of the tree this file lives in).

1. ``--tickets`` (10,000) open tickets are created through ``POST /api/tickets`` (``--concurrency``
   16 clients); the rate is printed.
2. **Round 1.** An agenda probe due 100,000 minutes after each ticket's creation (so it never
   fires) is added through ``RulesService.add_agenda_probe`` (in this process: the rules'
   generation is bumped and ``RulesFanOutWorkflow`` signals ``rules_changed`` to every open
   ticket). Polled from that call until every ticket workflow's ``current_state`` query reports
   the new ``rules_generation``: once the fan-out workflow has closed, first the 50 last-signalled
   tickets, then sweeps over all not yet there (``--query-concurrency`` 50 queries at a time; a
   query of a ticket no longer in the worker's cache replays it on the worker being measured, so
   the polling is kept sparse and its end is only an upper bound). The exact timing comes from the
   tickets' histories, read from the Temporal server afterwards: for each ticket the instant of
   its first ``rules_changed`` signal of the generation and of its re-compute (the local activity
   marker "re-compute the agenda of … (rules N)"), so the time of the last re-compute after the
   call and the signal → re-compute latency. Then one more query sweep over all tickets checks:
   ``agenda_refreshes`` == 1, the agenda holds exactly one ``probe`` item, keyed by the probe's id
   (and the histories: no ticket re-computed twice for the generation).
3. **Round 2, restart safety.** A second probe; while its fan-out runs, the worker is killed with
   SIGKILL once about a third of the tickets were signalled (the fan-out's ``signalled_so_far``
   query when the worker answers it, the completed pages in the fan-out's history, and the running
   page's heartbeated cursor), and a new worker is started. Same checks: ``agenda_refreshes`` == 2
   everywhere (exactly one re-compute for this generation) and both probes on every agenda.

The bench runs a copy of ``pulse/``, ``migrations/`` and ``alembic.ini`` taken when it starts (its
workers, the one started after the crash too, and the API run it), so edits to the work tree
during a run change nothing; it prints the commit and whether the tree had uncommitted changes.
``--check`` exits 1 unless both rounds have every ticket re-computed, none twice, none missing.
Every wait is bounded (``--timeout`` per round); Ctrl-C or SIGTERM stops the subprocesses and
drops the database (``--keep`` keeps it and the temp dir with the logs). Results: bench/README.md.

    .venv/bin/python bench/fanout.py [--tickets 10000] [--concurrency 16] [--query-concurrency 50]
        [--page-size N] [--timeout 1800] [--keep] [--check]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.common import drop_database, run_bench, wait_healthy  # noqa: E402

DATABASE = "pulse_bench_fanout"
TASK_QUEUE = "bench-fanout"
PROBE_AFTER_MINUTES = 100_000
DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def load() -> str:
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def server_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_SERVER_URL


# -- the code under test: a copy of the tree as the bench started -------------------------------

def snapshot_code(target: Path) -> str:
    """Copy ``pulse/``, ``migrations/`` and ``alembic.ini`` into ``target``: the bench, its workers
    (the one started after the crash too) and the API all run this copy, so edits to the work tree
    during a run cannot mix two versions of the engine (or code against an older schema). Returns
    a description: the commit, whether the tree differed from it, and a hash of the copy."""
    import hashlib

    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "pulse", target / "pulse", ignore=ignore)
    shutil.copytree(ROOT / "migrations", target / "migrations", ignore=ignore)
    shutil.copy2(ROOT / "alembic.ini", target / "alembic.ini")
    digest = hashlib.sha1()
    for path in sorted(target.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(target)).encode() + b"\0" + path.read_bytes())

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "?"
    changed = [line for line in git("status", "--porcelain", "--", "pulse", "migrations", "alembic.ini").splitlines()
               if line.strip()]
    state = f" + uncommitted engine work ({len(changed)} files)" if changed else ""
    return f"{commit}{state}; code copy sha1 {digest.hexdigest()[:12]}"


# -- the stack ------------------------------------------------------------------------------------

class Stack:
    """Temporal dev server + Pulse worker(s) + Pulse API, all stopped by ``close``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.code = workdir / "code"  # the copy of the code under test (``python -m`` looks in the cwd first)
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.env: dict[str, str] = {}
        self.workers = 0

    def spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = (self.workdir / f"{name}.log").open("ab")
        process = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   cwd=self.code)
        self.children.append((name, process))
        return process

    def start_worker(self) -> subprocess.Popen:
        self.workers += 1
        return self.spawn(f"worker{self.workers}", [sys.executable, "-m", "pulse.cli", "worker"])

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL, no goodbye (the process is its own session leader: only it is hit)."""
        process.kill()
        process.wait(timeout=30)
        self.children = [(name, child) for name, child in self.children if child is not process]

    def check_alive(self) -> None:
        for name, process in self.children:
            if process.poll() is not None:
                tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")

    def show_logs(self, lines: int = 40) -> None:
        for path in sorted(self.workdir.glob("*.log")):
            if path.name == "temporal.log":
                continue
            print(f"\n--- last lines of {path.name} ---")
            print("\n".join(line[:300] for line in path.read_text(errors="replace").splitlines()[-lines:]))

    def close(self) -> None:
        from pulse.devstack import stop

        for _, process in reversed(self.children):
            try:
                stop(process)
            except Exception:  # noqa: BLE001 - keep stopping the others
                pass
        self.children = []


def recreate_database() -> str:
    from pulse.devstack import ensure_database, migrate

    drop_database(server_url(), DATABASE)
    url = ensure_database(server_url(), DATABASE)
    migrate(url)
    return url




# -- measuring ------------------------------------------------------------------------------------

@dataclass
class Round:
    label: str
    generation: int = 0
    probe_ids: list[int] = field(default_factory=list)
    expected_refreshes: int = 0
    tickets: int = 0
    fanout_seconds: float | None = None  # the fan-out workflow's start → close (server clock)
    fanout_signalled: int | None = None  # signals it sent (a retried page re-sends some)
    fanout_pages: int | None = None
    all_seconds: float | None = None  # from the call until the polling saw every ticket at the generation
    last_recompute_seconds: float | None = None  # from the call until the last re-compute (histories)
    latency: list[float] = field(default_factory=list)  # per ticket: its first signal → its re-compute (histories)
    signalled_twice: int = 0  # tickets that got the generation's signal more than once (histories)
    recomputes_in_history: int = 0  # tickets with a re-compute for the generation in their history
    recomputed_twice_in_history: int = 0  # tickets with more than one (histories)
    recomputed: int = 0  # tickets at the new generation
    refreshes_wrong: int = 0  # agenda_refreshes != expected (0 = none twice, none skipped)
    twice: int = 0  # agenda_refreshes > expected
    missing: int = 0  # no running workflow / no answer / not at the generation / probe items not as expected
    wrong_generation: int = 0  # rules_generation other than the new one at the end
    query_errors: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.tickets > 0 and self.recomputed == self.tickets and self.refreshes_wrong == 0
                and self.missing == 0 and self.wrong_generation == 0 and self.all_seconds is not None
                and self.recomputed_twice_in_history == 0)


class Poller:
    """Queries ``current_state`` of ticket workflows, at most ``concurrency`` at a time."""

    def __init__(self, client: Any, account_id: int, concurrency: int) -> None:
        self.client = client
        self.account_id = account_id
        self.gate = asyncio.Semaphore(concurrency)

    async def state(self, ticket_id: int) -> Any:
        """The workflow's state, or an exception (NOT_FOUND: no running workflow)."""
        from pulse.domain.commands import TicketWorkflowState
        from pulse.domain.tickets import workflow_id_for

        async with self.gate:
            handle = self.client.get_workflow_handle(workflow_id_for(self.account_id, ticket_id))
            try:
                return await handle.query("current_state", result_type=TicketWorkflowState,
                                          rpc_timeout=timedelta(seconds=15))
            except Exception as error:  # noqa: BLE001 - the caller counts it
                return error

    async def sweep(self, ticket_ids: list[int]) -> dict[int, Any]:
        states = await asyncio.gather(*(self.state(ticket_id) for ticket_id in ticket_ids))
        return dict(zip(ticket_ids, states))


def position(ids: list[int], ticket_id: int) -> int:
    """How many of the (sorted) ``ids`` are <= ``ticket_id``."""
    import bisect

    return bisect.bisect_right(ids, ticket_id)


@dataclass
class FanOutSnapshot:
    """Where a fan-out is, read three ways: its ``signalled_so_far`` query (None when the worker
    did not answer in time: its workflow task can wait behind the tickets' backlog on the same
    task queue), the completed pages in its history, and the running page's heartbeated cursor."""

    signalled_so_far: int | None
    pages_done: int
    signalled_in_history: int
    cursor: int | None  # how many of the sorted ticket ids are <= the heartbeated ticket id
    attempt: int | None
    running: bool

    @property
    def progress(self) -> int:
        return max(self.signalled_so_far or 0, self.signalled_in_history, self.cursor or 0)

    def __str__(self) -> str:
        query = self.signalled_so_far if self.signalled_so_far is not None else "no answer"
        cursor = f"#{self.cursor}" if self.cursor is not None else "none"
        return (f"signalled_so_far {query}, {self.pages_done} pages done ({self.signalled_in_history} signals), "
                f"running page's heartbeated cursor {cursor} (attempt {self.attempt})")


async def fanout_progress(handle: Any, ids: list[int], query_timeout: float = 3.0) -> FanOutSnapshot:
    from temporalio.client import WorkflowExecutionStatus

    try:
        signalled: int | None = int(await handle.query("signalled_so_far",
                                                       rpc_timeout=timedelta(seconds=query_timeout)))
    except Exception:  # noqa: BLE001 - the worker is busy (or gone): the history still tells
        signalled = None
    pages = in_history = 0
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_completed_event_attributes"):
            payloads = event.activity_task_completed_event_attributes.result.payloads
            pages += 1
            in_history += int(json.loads(payloads[0].data).get("signalled", 0)) if payloads else 0
    description = await handle.describe()
    cursor_position = attempt = None
    for pending in description.raw_description.pending_activities:
        attempt = pending.attempt
        payloads = pending.heartbeat_details.payloads
        if payloads:
            cursor_position = position(ids, int(json.loads(payloads[0].data)))
    return FanOutSnapshot(signalled, pages, in_history, cursor_position, attempt,
                          description.status == WorkflowExecutionStatus.RUNNING)


def cell(value: float | None, unit: str = " s") -> str:
    return f"{value:.1f}{unit}" if value is not None else "-"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))] if ordered else float("nan")


async def read_histories(poller: Poller, ids: list[int], generation: int) -> dict[int, tuple[list[float], list[float]]]:
    """Per ticket, from its workflow history (the Temporal server alone, no worker involved): the
    instants (epoch seconds) of its ``rules_changed`` signals for ``generation`` and of its
    re-computes for it (the local activity markers "re-compute the agenda of … (rules N)"; a
    marker is written when the workflow task that ran the load completes)."""
    from pulse.domain.tickets import workflow_id_for

    wanted = f"(rules {generation})"

    async def one(ticket_id: int) -> tuple[list[float], list[float]]:
        signals: list[float] = []
        recomputes: list[float] = []
        async with poller.gate:
            handle = poller.client.get_workflow_handle(workflow_id_for(poller.account_id, ticket_id))
            async for event in handle.fetch_history_events():
                at = event.event_time.ToDatetime().replace(tzinfo=timezone.utc).timestamp()
                if event.HasField("workflow_execution_signaled_event_attributes"):
                    attributes = event.workflow_execution_signaled_event_attributes
                    payloads = attributes.input.payloads
                    if (attributes.signal_name == "rules_changed" and payloads
                            and json.loads(payloads[0].data).get("generation") == generation):
                        signals.append(at)
                elif event.HasField("marker_recorded_event_attributes") and event.user_metadata.summary.data:
                    summary = json.loads(event.user_metadata.summary.data)
                    if isinstance(summary, str) and summary.startswith("re-compute the agenda") and wanted in summary:
                        recomputes.append(at)
        return signals, recomputes

    found = await asyncio.gather(*(one(ticket_id) for ticket_id in ids), return_exceptions=True)
    return {ticket_id: value for ticket_id, value in zip(ids, found) if not isinstance(value, BaseException)}


async def run_round(label: str, expected_refreshes: int, previous_probes: list[int], *, rules: Any, client: Any,
                    sessions: Any, account_id: int, ids: list[int], poller: Poller, stack: Stack,
                    args: argparse.Namespace, kill_worker: subprocess.Popen | None = None) -> Round:
    """Add a probe, time the fan-out until every ticket reports the new generation, check every
    ticket. With ``kill_worker``: SIGKILL it once ~1/3 of the tickets were signalled, start another."""
    from sqlalchemy import text
    from temporalio.client import WorkflowExecutionStatus

    from pulse.domain.commands import FanOutProgress

    result = Round(label, expected_refreshes=expected_refreshes, tickets=len(ids))
    deadline = time.monotonic() + args.timeout
    print(f"\n{label}: adding an agenda probe (after {PROBE_AFTER_MINUTES} min) to account {account_id} "
          f"(load {load()})", flush=True)
    started = time.monotonic()
    called_at = time.time()
    generation, workflow_id = await rules.add_agenda_probe(account_id, PROBE_AFTER_MINUTES)
    call_seconds = time.monotonic() - started
    async with sessions() as session:
        probe_id = int((await session.execute(text(
            "SELECT max(id) FROM agenda_probes WHERE account_id = :a"), {"a": account_id})).scalar())
    result.generation = generation
    result.probe_ids = [*previous_probes, probe_id]
    print(f"  generation {generation}, probe {probe_id}, fan-out {workflow_id} started "
          f"({call_seconds * 1000:.0f} ms for the call)", flush=True)
    handle = client.get_workflow_handle(workflow_id)

    # -- the crash, when asked: once ~1/3 of the tickets were signalled ----------------------------
    if kill_worker is not None:
        target = len(ids) // 3
        killed = False
        last_print = 0.0
        while time.monotonic() < deadline:
            stack.check_alive()
            snapshot = await fanout_progress(handle, ids, query_timeout=1.0)
            if not snapshot.running:
                result.notes.append(f"the fan-out closed before ~1/3 was signalled ({snapshot}); the worker was "
                                    "killed after it (use --page-size for a mid-fan-out crash)")
                break
            if snapshot.progress >= target:
                # a page in flight with a heartbeat: the crash lands mid-page
                for _ in range(30):
                    if snapshot.cursor is not None or not snapshot.running:
                        break
                    await asyncio.sleep(0.1)
                    snapshot = await fanout_progress(handle, ids, query_timeout=1.0)
                at = time.monotonic() - started
                print(f"  killing the worker (SIGKILL, pid {kill_worker.pid}) at {snapshot}; {len(ids)} tickets; "
                      f"{at:.1f} s after the call", flush=True)
                result.notes.append(f"worker killed at {snapshot}; {len(ids)} tickets; {at:.1f} s after the call")
                stack.kill(kill_worker)
                killed = True
                break
            if time.monotonic() - last_print > 10:
                last_print = time.monotonic()
                print(f"  … waiting for ~1/3 ({target}): {snapshot} ({time.monotonic() - started:.0f} s)", flush=True)
            await asyncio.sleep(0.1)
        if not killed:
            print("  killing the worker after the fan-out closed", flush=True)
            stack.kill(kill_worker)
        replacement = stack.start_worker()
        print(f"  new worker started (pid {replacement.pid})", flush=True)

    # -- the fan-out workflow closes --------------------------------------------------------------
    last_print = 0.0
    while time.monotonic() < deadline:
        stack.check_alive()
        description = await handle.describe()
        if description.status != WorkflowExecutionStatus.RUNNING:
            break
        if time.monotonic() - last_print > 10:
            last_print = time.monotonic()
            print(f"  … fan-out running: {await fanout_progress(handle, ids)} ({time.monotonic() - started:.0f} s)",
                  flush=True)
        await asyncio.sleep(0.25)
    description = await handle.describe()
    if description.status == WorkflowExecutionStatus.COMPLETED:
        progress = FanOutProgress.model_validate(await handle.result())
        result.fanout_signalled, result.fanout_pages = progress.signalled, progress.pages
        result.fanout_seconds = (description.close_time - description.start_time).total_seconds()
        print(f"  fan-out completed in {result.fanout_seconds:.1f} s: {progress.signalled} signals in "
              f"{progress.pages} pages ({time.monotonic() - started:.1f} s after the call)", flush=True)
    else:
        result.notes.append(f"fan-out workflow ended {description.status.name if description.status else '?'}")
        print(f"  fan-out workflow: {description.status}", flush=True)

    # -- until every ticket reports the generation ------------------------------------------------
    # First the last-signalled tickets only (the highest ids: pages go in id order): every query of
    # a ticket no longer in the worker's cache replays its history on the worker that is draining
    # the backlog, so sweeping all of them early would slow down what is measured.
    sentinels = ids[-args.query_concurrency:]
    while time.monotonic() < deadline:
        stack.check_alive()
        states = await poller.sweep(sentinels)
        behind = [t for t, state in states.items() if isinstance(state, Exception) or state.rules_generation < generation]
        if time.monotonic() - last_print > 30:
            last_print = time.monotonic()
            print(f"  … {len(sentinels) - len(behind)}/{len(sentinels)} of the last-signalled tickets at generation "
                  f"{generation} ({time.monotonic() - started:.0f} s)", flush=True)
        if not behind:
            print(f"  the {len(sentinels)} last-signalled tickets are at generation {generation} "
                  f"({time.monotonic() - started:.1f} s); now all of them", flush=True)
            break
        await asyncio.sleep(args.sweep_pause)
    waiting = list(ids)
    sweeps = 0
    while waiting and time.monotonic() < deadline:
        stack.check_alive()
        states = await poller.sweep(waiting)
        sweeps += 1
        errors = [state for state in states.values() if isinstance(state, Exception)]
        waiting = [ticket_id for ticket_id, state in states.items()
                   if isinstance(state, Exception) or state.rules_generation < generation]
        print(f"  sweep {sweeps}: {len(ids) - len(waiting)}/{len(ids)} at generation {generation}"
              + (f", {len(errors)} queries failed ({type(errors[0]).__name__}: {str(errors[0])[:120]})"
                 if errors else "") + f" ({time.monotonic() - started:.1f} s)", flush=True)
        if waiting:
            await asyncio.sleep(args.sweep_pause)
    if not waiting:
        result.all_seconds = time.monotonic() - started
        print(f"  all {len(ids)} tickets at generation {generation} {result.all_seconds:.1f} s after the call "
              f"({sweeps} sweeps; the last sweep took the final reading)", flush=True)
    else:
        print(f"  TIMEOUT: {len(waiting)} tickets not at generation {generation} after {args.timeout:.0f} s",
              flush=True)

    # -- every ticket, once more: exactly one re-compute, the probes on the agenda ----------------
    await asyncio.sleep(2)  # a late second re-compute would show here
    states = await poller.sweep(list(ids))
    for _ in range(5):  # a query that timed out on the busy worker is asked again, not counted as missing
        unanswered = [ticket_id for ticket_id, state in states.items() if isinstance(state, Exception)]
        if not unanswered:
            break
        print(f"  {len(unanswered)} queries of the check unanswered ({type(states[unanswered[0]]).__name__}: "
              f"{str(states[unanswered[0]])[:80]}); asking again", flush=True)
        await asyncio.sleep(args.sweep_pause)
        states.update(await poller.sweep(unanswered))
    expected_keys = sorted(str(p) for p in result.probe_ids)
    examples: list[str] = []
    for ticket_id, state in states.items():
        if isinstance(state, Exception):
            result.query_errors += 1
            result.missing += 1
            if len(examples) < 5:
                examples.append(f"ticket {ticket_id}: {type(state).__name__}: {str(state)[:120]}")
            continue
        if state.rules_generation >= generation:
            result.recomputed += 1
        if state.rules_generation != generation:
            result.wrong_generation += 1
        if state.agenda_refreshes != expected_refreshes:
            result.refreshes_wrong += 1
            result.twice += state.agenda_refreshes > expected_refreshes
            if len(examples) < 5:
                examples.append(f"ticket {ticket_id}: agenda_refreshes {state.agenda_refreshes}, "
                                f"rules_generation {state.rules_generation}")
        probe_keys = sorted(item.key for item in state.agenda if item.kind == "probe")
        if probe_keys != expected_keys:
            result.missing += 1
            if len(examples) < 5:
                examples.append(f"ticket {ticket_id}: probe items {probe_keys}, expected {expected_keys}")
    for example in examples:
        print(f"    {example}", flush=True)
    result.notes.extend(examples)
    histories = await read_histories(poller, ids, generation)
    recomputed_at = [min(recomputes) for signals, recomputes in histories.values() if recomputes]
    result.recomputes_in_history = len(recomputed_at)
    result.recomputed_twice_in_history = sum(len(recomputes) > 1 for _, recomputes in histories.values())
    result.signalled_twice = sum(len(signals) > 1 for signals, _ in histories.values())
    result.latency = [min(recomputes) - min(signals) for signals, recomputes in histories.values()
                      if signals and recomputes]
    if recomputed_at:
        result.last_recompute_seconds = max(recomputed_at) - called_at
    print(f"  histories ({len(histories)} read): {result.recomputes_in_history} tickets re-computed for generation "
          f"{generation}, {result.recomputed_twice_in_history} more than once; {result.signalled_twice} signalled more "
          f"than once; last re-compute {cell(result.last_recompute_seconds)} after the call; signal → re-compute "
          f"p50 {percentile(result.latency, 50):.1f} s, p99 {percentile(result.latency, 99):.1f} s, "
          f"max {max(result.latency, default=float('nan')):.1f} s", flush=True)
    if len(histories) != len(ids):
        result.notes.append(f"{len(ids) - len(histories)} histories could not be read")
    print(f"  check: {result.recomputed}/{len(ids)} re-computed, {result.refreshes_wrong} with agenda_refreshes != "
          f"{expected_refreshes} ({result.twice} more), {result.missing} missing (no answer or probes not "
          f"{expected_keys}), {result.wrong_generation} not exactly at generation {generation}", flush=True)
    return result


# -- the benchmark --------------------------------------------------------------------------------

async def bench(args: argparse.Namespace, stack: Stack) -> int:
    from pulse.db import make_engine, make_sessionmaker
    from pulse.devstack import free_port, start_temporal
    from pulse.services.auth import create_account_with_admin
    from pulse.services.rules import RulesService
    from pulse.temporal import connect_when_ready
    from sqlalchemy import text

    print(f"machine: {os.cpu_count()} CPUs, load {load()} (1/5/15 min)", flush=True)
    print(f"setting up: PostgreSQL database {DATABASE}, Temporal dev server (SQLite, WAL), worker, API …", flush=True)
    database_url = recreate_database()

    temporal_port = free_port()
    temporal = start_temporal(temporal_port, None, stack.workdir / "temporal.db", stack.workdir / "temporal.log")
    stack.children.append(("temporal", temporal))
    temporal_address = f"127.0.0.1:{temporal_port}"

    api_port = free_port()
    # the children run the bench's copy of the code (cwd and PYTHONPATH before the editable install)
    stack.env = {**os.environ, "DATABASE_URL": database_url, "TEMPORAL_ADDRESS": temporal_address,
                 "PULSE_TASK_QUEUE": TASK_QUEUE, "PULSE_API_PORT": str(api_port),
                 "PYTHONPATH": os.pathsep.join(filter(None, [str(stack.code), os.environ.get("PYTHONPATH")]))}
    worker = stack.start_worker()
    stack.spawn("api", [sys.executable, "-m", "pulse.cli", "api"])

    client = await connect_when_ready(temporal_address)
    engine = make_engine(database_url, pool_size=2)
    sessions = make_sessionmaker(engine)
    async with sessions() as session, session.begin():
        account_id, _, token = await create_account_with_admin(session, f"Fan-out bench {uuid.uuid4().hex[:6]}")

    class BenchRules(RulesService):
        """``--page-size``: the fan-out's page size (default: the engine's)."""

        async def start_fanout(self, account_id: int, generation: int, **kwargs: Any) -> str:
            if args.page_size:
                kwargs["page_size"] = args.page_size
            return await super().start_fanout(account_id, generation, **kwargs)

    rules = BenchRules(sessions, client, TASK_QUEUE)
    limits = httpx.Limits(max_connections=args.concurrency + 4, max_keepalive_connections=args.concurrency + 4)
    rounds: list[Round] = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=60, limits=limits,
                                     headers={"Authorization": f"Bearer {token}"}) as http:
            await wait_healthy(http, check_alive=stack.check_alive)

            # -- the open tickets ------------------------------------------------------------------
            print(f"\ncreating {args.tickets} tickets through POST /api/tickets, {args.concurrency} clients "
                  f"(load {load()}) …", flush=True)
            counter = iter(range(args.tickets))
            created: list[int] = []
            errors = 0
            started = time.monotonic()
            creation_deadline = started + args.timeout

            async def create_client() -> None:
                nonlocal errors
                for index in counter:
                    if time.monotonic() > creation_deadline:
                        return
                    key = f"fanout-{index}"  # a retry after a lost answer makes no second ticket
                    for attempt in range(3):
                        try:
                            response = await http.post(
                                "/api/tickets", headers={"Idempotency-Key": key},
                                json={"subject": f"Fan-out ticket {index}", "priority": "medium",
                                      "description": "created by bench/fanout.py"})
                            if response.status_code == 201:
                                created.append(response.json()["id"])
                                break
                            problem = f"{response.status_code} {response.text[:200]}"
                        except httpx.HTTPError as error:
                            problem = f"{type(error).__name__}: {error}"
                        if attempt == 2:
                            errors += 1
                            if errors <= 3:
                                print(f"    create error: {problem}", flush=True)
                        await asyncio.sleep(0.5)

            async def report() -> None:
                while True:
                    await asyncio.sleep(15)
                    seconds = time.monotonic() - started
                    print(f"  … {len(created)} created in {seconds:.0f} s ({len(created) / seconds:.1f}/s, "
                          f"load {load()})", flush=True)
                    stack.check_alive()

            reporter = asyncio.create_task(report())
            try:
                await asyncio.gather(*(create_client() for _ in range(args.concurrency)))
            finally:
                reporter.cancel()
            seconds = time.monotonic() - started
            creation_rate = len(created) / seconds
            print(f"  created {len(created)} tickets in {seconds:.1f} s ({creation_rate:.1f}/s), {errors} errors",
                  flush=True)

        async with sessions() as session:
            ids = sorted(int(row[0]) for row in await session.execute(text(
                "SELECT id FROM tickets WHERE account_id = :a AND deleted_at IS NULL AND status <> 'closed'"),
                {"a": account_id}))
        if len(ids) != len(created):
            print(f"  note: {len(ids)} open tickets in PostgreSQL, {len(created)} creates answered 201", flush=True)
        if not ids:
            raise RuntimeError("no tickets were created")

        poller = Poller(client, account_id, args.query_concurrency)
        rounds.append(await run_round("round 1", 1, [], rules=rules, client=client, sessions=sessions,
                                      account_id=account_id, ids=ids, poller=poller, stack=stack, args=args))
        rounds.append(await run_round("round 2 (worker killed mid-fan-out)", 2, rounds[0].probe_ids, rules=rules,
                                      client=client, sessions=sessions, account_id=account_id, ids=ids,
                                      poller=poller, stack=stack, args=args, kill_worker=worker))
    finally:
        await engine.dispose()

    # -- the table --------------------------------------------------------------------------------
    print(f"\ncreation: {len(created)} tickets at {creation_rate:.1f}/s ({args.concurrency} clients)")
    print("\n| round | tickets | fan-out workflow | signals sent | last re-compute (histories) | all seen re-computed "
          "(polling) | signal → re-compute p50 / p99 | re-computed | agenda_refreshes != expected | twice | missing |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rounds:
        sent = r.fanout_signalled if r.fanout_signalled is not None else "-"
        print(f"| {r.label} | {r.tickets} | {cell(r.fanout_seconds)} | {sent} | {cell(r.last_recompute_seconds)} "
              f"| {cell(r.all_seconds)} | {percentile(r.latency, 50):.1f} / {percentile(r.latency, 99):.1f} s "
              f"| {r.recomputed} | {r.refreshes_wrong} (expected {r.expected_refreshes}) "
              f"| {r.twice} (histories: {r.recomputed_twice_in_history}) | {r.missing} |")
    for r in rounds:
        print(f"  {r.label}: histories: {r.recomputes_in_history} tickets re-computed for generation {r.generation}, "
              f"{r.recomputed_twice_in_history} more than once, {r.signalled_twice} signalled more than once; "
              f"signal → re-compute max {max(r.latency, default=float('nan')):.1f} s; fan-out pages {r.fanout_pages}")
        for note in r.notes:
            print(f"  {r.label}: {note}")
    verdict = all(r.ok for r in rounds)
    print(f"\nall re-computed, none twice, none missing in both rounds: {'yes' if verdict else 'NO'}; "
          f"load average now {load()}")
    if not verdict:
        stack.show_logs()
    return 0 if verdict or not args.check else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=10_000, help="open tickets (default 10000)")
    parser.add_argument("--concurrency", type=int, default=16, help="API clients creating tickets (default 16)")
    parser.add_argument("--query-concurrency", type=int, default=50,
                        help="current_state queries in flight (default 50)")
    parser.add_argument("--page-size", type=int, default=0,
                        help="the fan-out's page size (default: the engine's, 2000)")
    parser.add_argument("--sweep-pause", type=float, default=2.0,
                        help="seconds between polling sweeps (default 2)")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds for the creation and for each round (default 1800)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs) and the database")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 unless all tickets re-computed, none twice, none missing, in both rounds")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="pulse-bench-fanout-"))
    stack = Stack(workdir)
    try:
        code = snapshot_code(stack.code)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    sys.path.insert(0, str(stack.code))  # this process too: nothing of pulse is imported before this line
    print(f"code under test: {code} (copied to {stack.code})", flush=True)

    return run_bench(lambda: bench(args, stack), stack, keep=args.keep, database=DATABASE, server_url=server_url())


if __name__ == "__main__":
    sys.exit(main())
