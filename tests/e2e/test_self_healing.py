"""`make run`'s stack heals itself: the worker, Temporal and the embedded PostgreSQL, each killed
with SIGKILL, are started again by ``pulse dev`` while the API stays up; during PostgreSQL's
absence requests answer 503 with Retry-After within 5 s, and the first request after it succeeds."""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from pathlib import Path

import httpx
import psutil

from pulse.devstack import free_port
from tests.e2e.test_restart import TOKEN, start_stack, stop_stack, wait_healthy

HEADERS = {"Authorization": f"Bearer {TOKEN}"}


class Output:
    """``pulse dev``'s output, read on a thread, searchable for lines still to come."""

    def __init__(self, process) -> None:  # noqa: ANN001 - a Popen with text stdout
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process) -> None:  # noqa: ANN001
        for line in process.stdout:
            self.lines.put(line.rstrip())

    def wait_for(self, text: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {timeout} s; output:\n" + "\n".join(self.seen[-40:]))


def child(dev_pid: int, marker: str) -> psutil.Process:
    for process in psutil.Process(dev_pid).children(recursive=True):
        try:
            if marker in " ".join(process.cmdline()):
                return process
        except psutil.NoSuchProcess:
            continue
    raise AssertionError(f"no child of pulse dev runs {marker!r}")


def postmaster(data_dir: Path) -> int:
    return int((data_dir / "postgres" / "postmaster.pid").read_text().splitlines()[0])


def create_ticket(api: str, subject: str, timeout: float = 60) -> httpx.Response:
    """A create, retried while the stack is still coming back (503s), up to ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.post(f"{api}/api/tickets", json={"subject": subject}, headers=HEADERS, timeout=30)
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        time.sleep(0.5)


def test_pulse_dev_restarts_a_killed_worker_temporal_and_postgresql_and_the_api_answers_503_meanwhile(
    tmp_path: Path
) -> None:
    ports = {"api": free_port(), "temporal": free_port(), "ui": free_port()}
    data_dir = tmp_path / "data"
    api = f"http://127.0.0.1:{ports['api']}"
    stack = start_stack(data_dir, ports)
    output = Output(stack)
    try:
        output.wait_for("Pulse is running", timeout=180)
        wait_healthy(api, stack)
        assert create_ticket(api, "before any fault").status_code == 201

        child(stack.pid, "pulse.cli worker --queue tickets").send_signal(signal.SIGKILL)
        output.wait_for("worker stopped")
        output.wait_for("worker restarted")
        assert create_ticket(api, "after the worker came back").status_code == 201

        child(stack.pid, "start-dev").send_signal(signal.SIGKILL)
        output.wait_for("Temporal stopped")
        output.wait_for("Temporal restarted")
        assert create_ticket(api, "after Temporal came back").status_code == 201

        os.kill(postmaster(data_dir), signal.SIGKILL)
        started = time.monotonic()
        during = httpx.get(f"{api}/api/tickets", headers=HEADERS, timeout=30)
        assert during.status_code == 503 and time.monotonic() - started < 5, during.text
        assert during.headers["Retry-After"] and during.json()["error"] == "unavailable"
        output.wait_for("PostgreSQL stopped")
        output.wait_for("PostgreSQL restarted")
        after = httpx.get(f"{api}/api/tickets", headers=HEADERS, timeout=30)
        assert after.status_code == 200, after.text  # the first request after the outage
        assert after.json()["pagination"]["total"] == 3
        assert create_ticket(api, "after PostgreSQL came back").status_code == 201
    finally:
        stop_stack(stack)
