"""A write's transaction commits before its answer is sent, over real HTTP: a client that reads
right after a 2xx sees the write (the 5,000-ticket bench PUT the Maverick config and then asked
for a sync, and got 409 "not enabled" because the PUT's transaction had not committed yet)."""

from __future__ import annotations

import httpx

from pulse.api import deps
from tests.conftest import AccountContext

CONFIG = "/api/integrations/maverick/config"


async def test_a_read_right_after_a_write_over_http_sees_it(tenant: AccountContext, pulse_server: str) -> None:
    async with httpx.AsyncClient(base_url=pulse_server, headers=tenant.headers(None), timeout=30) as http:
        for n in range(20):
            enabled = n % 2 == 0
            put = await http.put(CONFIG, json={"enabled": enabled, "apiUrl": "http://127.0.0.1:9/maverick",
                                               "apiKey": "key-for-the-test", "webhookSecret": "whsec_commit_test",
                                               "autoSync": False})
            assert put.status_code == 200, put.text
            read = await http.get(CONFIG)  # no pause: sent as soon as the PUT's answer arrived
            assert read.json()["enabled"] is enabled, (n, read.text)


def test_the_request_transaction_ends_before_the_response() -> None:
    assert deps.Session.__metadata__[0].scope == "function"
