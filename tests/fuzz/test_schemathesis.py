"""Zero 5xx on any input: schemathesis generates requests for every operation of the OpenAPI
document and sends them to a real ``pulse api`` process (PostgreSQL, Temporal and the suite's
worker behind it) with a valid admin token. ``make test`` runs a short, seeded fuzzing pass
(server errors only); ``make fuzz`` a long one with every check (``PULSE_FUZZ=long``)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest_asyncio
from temporalio.worker import Worker

from pulse.db import SessionFactory
from pulse.devstack import free_port
from pulse.secretbox import new_key
from pulse.services.auth import create_account_with_admin
from tests.conftest import TEST_TASK_QUEUE

LONG = os.environ.get("PULSE_FUZZ") == "long"
SCHEMATHESIS = Path(sys.executable).parent / "st"


@pytest_asyncio.fixture
async def api(database_url: str, temporal_address: str, worker: Worker,
              tmp_path: Path) -> AsyncIterator[str]:
    """A ``pulse api`` process on the suite's database, Temporal and task queue, its rate limits
    off (a fuzzer is a flood by design)."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "TEMPORAL_ADDRESS": temporal_address,
           "PULSE_TASK_QUEUE": TEST_TASK_QUEUE, "PULSE_API_PORT": str(port), "PULSE_RATE_PER_TOKEN": "0",
           "PULSE_RATE_PER_ADDRESS": "0", "PULSE_AUTH_FAILURES_PER_MINUTE": "0",
           # Configured as a deployment is: without a key, storing integration secrets is a 503.
           "PULSE_SECRETS_KEY": new_key()}
    log = (tmp_path / "api.log").open("wb")
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "pulse.cli", "api", env=env,
                                                   stdout=log, stderr=asyncio.subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(150):
                try:
                    if (await http.get(f"{url}/api/health")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
            # The first request for the document builds it (seconds on a loaded machine): not
            # within schemathesis' 10 s schema timeout, so built here first.
            (await http.get(f"{url}/openapi.json", timeout=120)).raise_for_status()
        yield url
    finally:
        process.terminate()
        await process.wait()
        log.close()


# Operations that can lock the fuzzer out (revoke its token, deactivate or delete its user): fuzzed
# in a second pass, after everything else.
LOCKOUTS = ("DELETE /api/tokens/{token_id}", "DELETE /api/users/{row_id}", "PATCH /api/users/{row_id}")
# The notification stream never ends: each generated request would wait out the request timeout.
# tests/api/test_notifications.py covers it.
ENDLESS = ("GET /api/notifications/stream",)


async def fuzz(api: str, token: str, report: Path, selection: list[str]) -> tuple[int, str]:
    arguments = [
        "run", f"{api}/openapi.json", "--header", f"Authorization: Bearer {token}", "--workers", "2",
        "--request-timeout", "60", "--seed", "20261201", "--report-dir", str(report),
        "--checks", "all" if LONG else "not_a_server_error",
        # "A request the schema allows was refused": the 422s for rules a JSON schema cannot state
        # (docs/decisions.md, "Zero 5xx on bad input").
        *(["--exclude-checks", "positive_data_acceptance"] if LONG else []),
        "--max-examples", "100" if LONG else "2",
        *([] if LONG else ["--phases", "fuzzing"]), *selection,
    ]
    process = await asyncio.create_subprocess_exec(str(SCHEMATHESIS), *arguments, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    (report.parent / f"{report.name}.txt").write_text(text)
    return process.returncode or 0, text


async def test_no_generated_request_gets_a_server_error(api: str, sessions: SessionFactory, tmp_path: Path) -> None:
    async with sessions() as session, session.begin():
        _, _, token = await create_account_with_admin(session, "Fuzzed")
    passes = [("most", [argument for name in LOCKOUTS + ENDLESS for argument in ("--exclude-name", name)]),
              ("lockouts", [argument for name in LOCKOUTS for argument in ("--include-name", name)])]
    for label, selection in passes:
        returncode, text = await fuzz(api, token, tmp_path / label, selection)
        summary = text[text.rfind("SUMMARY"):] if "SUMMARY" in text else text[-3000:]
        server_errors = [block for block in text.split("\n___") if "ST101" in block or "[500]" in block]
        full = f"(the whole output: {tmp_path / label}.txt)"
        assert "Server error" not in summary, "\n___".join(server_errors)[:8000] + "\n" + summary + full
        assert returncode == 0, text[-6000:] + full
