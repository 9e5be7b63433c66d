"""``make run`` and the Maverick integration: the integration secrets' key for the local stack,
and, with ``PULSE_DEMO_MAVERICK=1``, a Maverick simulator with demo data that the Dev account is
connected to (config, webhooks, a first sync) — all through the simulator's CLI and Pulse's API."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path
from typing import Callable

import httpx

from pulse.config import Settings
from pulse.secretbox import new_key

DEMO_API_KEY = "maverick-demo-key"


def kept_in_data_dir(settings: Settings, name: str, make: Callable[[], str]) -> str:
    """A secret generated once by ``make`` and kept in the data dir (0600) for the next runs."""
    path = Path(settings.data_dir) / name
    if path.exists():
        return path.read_text().strip()
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def secrets_key(settings: Settings) -> str:
    """``$PULSE_SECRETS_KEY``, else a key generated once and kept in the data dir."""
    if settings.secrets_key:
        return settings.secrets_key.get_secret_value()
    return kept_in_data_dir(settings, "secrets-key", new_key)


def start_demo_maverick(settings: Settings, api_url: str, token: str, env: dict[str, str]) -> subprocess.Popen:
    """Start the simulator (25 seeded tickets) sending signed webhooks to the Dev account, connect
    the account to it, and start a first sync. Returns the simulator's process."""
    from pulse.devstack import wait_for_port

    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=api_url, headers=headers, timeout=30) as pulse:
        webhook_url = pulse.get("/api/integrations/maverick/config").raise_for_status().json()["webhookUrl"]
        webhook_secret = "whsec_demo_" + secrets.token_urlsafe(16)
        process = subprocess.Popen(
            [sys.executable, "-m", "pulse.cli", "maverick-sim", "--port", str(settings.maverick_sim_port),
             "--api-key", DEMO_API_KEY, "--tickets", "25", "--webhook-url", webhook_url,
             "--webhook-secret", webhook_secret], env=env, start_new_session=True)
        wait_for_port("127.0.0.1", settings.maverick_sim_port, timeout=30, process=process)
        pulse.put("/api/integrations/maverick/config", json={
            "enabled": True, "apiUrl": f"http://127.0.0.1:{settings.maverick_sim_port}", "apiKey": DEMO_API_KEY,
            "webhookSecret": webhook_secret, "autoSync": True, "syncIntervalMinutes": 15,
        }).raise_for_status()
        pulse.post("/api/integrations/maverick/sync").raise_for_status()
    return process
