"""What the simulator can be told to get wrong: its API (fail the next N calls with a 5xx or a
429, fail a share of all calls, add latency) and its webhooks (drop, duplicate, reorder, delay)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class FaultSettings(BaseModel):
    """The body of ``POST /_admin/faults`` (fields left out keep their value)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    fail_next: int | None = Field(default=None, ge=0, description="fail the next N API calls")
    fail_status: int | None = Field(default=None, ge=429, le=599, description="their status: 429 or a 5xx")
    retry_after_seconds: int | None = Field(default=None, ge=0, le=3600)
    fail_rate: float | None = Field(default=None, ge=0, le=1, description="fail this share of all API calls")
    latency_ms: int | None = Field(default=None, ge=0, le=60_000)
    drop_webhooks: int | None = Field(default=None, ge=0, description="never send the next N events")
    duplicate_webhooks: int | None = Field(default=None, ge=0, description="send the next N events twice")
    reorder_webhooks: int | None = Field(default=None, ge=0,
                                         description="hold the next N events and send them newest first")
    webhook_latency_ms: int | None = Field(default=None, ge=0, le=60_000)


@dataclass
class Faults:
    fail_next: int = 0
    fail_status: int = 503
    retry_after_seconds: int = 1
    fail_rate: float = 0.0
    latency_ms: int = 0
    drop_webhooks: int = 0
    duplicate_webhooks: int = 0
    reorder_webhooks: int = 0
    webhook_latency_ms: int = 0
    failed_calls: int = 0
    random: random.Random = field(default_factory=lambda: random.Random(7))

    def apply(self, settings: FaultSettings) -> None:
        for name, value in settings.model_dump(exclude_none=True).items():
            setattr(self, name, value)

    def reset(self) -> None:
        fresh = Faults()
        for name in ("fail_next", "fail_status", "retry_after_seconds", "fail_rate", "latency_ms", "drop_webhooks",
                     "duplicate_webhooks", "reorder_webhooks", "webhook_latency_ms"):
            setattr(self, name, getattr(fresh, name))

    def next_call_fails(self) -> tuple[int, int] | None:
        """(status, Retry-After seconds) when this API call is to fail, else None."""
        if self.fail_next > 0:
            self.fail_next -= 1
        elif not (self.fail_rate and self.random.random() < self.fail_rate):
            return None
        self.failed_calls += 1
        return self.fail_status, self.retry_after_seconds

    def shown(self) -> dict[str, Any]:
        return {to_camel(name): getattr(self, name) for name in (
            "fail_next", "fail_status", "retry_after_seconds", "fail_rate", "latency_ms", "drop_webhooks",
            "duplicate_webhooks", "reorder_webhooks", "webhook_latency_ms", "failed_calls")}
