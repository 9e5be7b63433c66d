"""Connecting to Temporal: one data converter everywhere (pydantic; handles timedelta)."""

from __future__ import annotations

import asyncio

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter


async def connect(target: str, namespace: str = "default") -> Client:
    return await Client.connect(target, namespace=namespace, data_converter=pydantic_data_converter)


async def connect_when_ready(target: str, namespace: str = "default", *, timeout: float = 20.0) -> Client:
    """``connect``, retried while a server that was just started is still coming up."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await connect(target, namespace)
        except Exception:  # noqa: BLE001 - still starting; the last attempt's error is raised
            if asyncio.get_running_loop().time() >= deadline:
                raise
            await asyncio.sleep(0.2)
