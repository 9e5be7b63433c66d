"""`make run`'s stack (``pulse dev``) keeps tickets and open ticket workflows across a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pulse.devstack import free_port

TOKEN = "pulse_dev_restart_test_token"


def start_stack(data_dir: Path, ports: dict[str, int]) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "TEMPORAL_ADDRESS")}
    env.update(
        PULSE_DATA_DIR=str(data_dir),
        PULSE_API_PORT=str(ports["api"]),
        PULSE_TEMPORAL_PORT=str(ports["temporal"]),
        PULSE_TEMPORAL_UI_PORT=str(ports["ui"]),
        PULSE_DEV_ADMIN_TOKEN=TOKEN,
    )
    return subprocess.Popen([sys.executable, "-m", "pulse.cli", "dev"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def wait_healthy(api: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else "stack exited"
        try:
            if httpx.get(f"{api}/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError("the stack did not become healthy")


def stop_stack(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    return output


def test_tickets_and_open_workflows_survive_a_restart_of_the_dev_stack(tmp_path: Path) -> None:
    ports = {"api": free_port(), "temporal": free_port(), "ui": free_port()}
    api = f"http://127.0.0.1:{ports['api']}"
    headers = {"Authorization": f"Bearer {TOKEN}"}

    first = start_stack(tmp_path / "data", ports)
    try:
        wait_healthy(api, first)
        created = httpx.post(f"{api}/api/tickets", headers=headers, json={"subject": "Survives restarts"}, timeout=30)
        assert created.status_code == 201, created.text
        ticket = created.json()
    finally:
        output = stop_stack(first)
    assert "Dev admin token: " + TOKEN in output
    assert "Temporal UI:" in output and "OpenAPI docs:" in output
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{api}/api/health", timeout=2)  # everything it started has stopped

    second = start_stack(tmp_path / "data", ports)
    try:
        wait_healthy(api, second)
        fetched = httpx.get(f"{api}/api/tickets/{ticket['ticketNumber']}", headers=headers, timeout=30)
        assert fetched.status_code == 200 and fetched.json()["subject"] == "Survives restarts"
        # The ticket's workflow is still open: an update goes through it.
        patched = httpx.patch(f"{api}/api/tickets/{ticket['id']}", headers=headers,
                              json={"status": "in_progress"}, timeout=30)
        assert patched.status_code == 200, patched.text
        assert patched.json()["version"] == ticket["version"] + 1
        second_ticket = httpx.post(f"{api}/api/tickets", headers=headers, json={"subject": "After"}, timeout=30).json()
        assert second_ticket["ticketNumber"] != ticket["ticketNumber"]
    finally:
        stop_stack(second)
