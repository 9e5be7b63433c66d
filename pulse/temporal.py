"""Connecting to Temporal: one data converter everywhere (pydantic; handles timedelta)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter


async def connect(target: str, namespace: str = "default") -> Client:
    return await Client.connect(target, namespace=namespace, data_converter=pydantic_data_converter)
