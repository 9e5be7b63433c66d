"""Settings, read from the environment (prefix ``PULSE_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PULSE_", extra="ignore")

    data_dir: Path = Path(".pulse")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # `pulse api` processes on the one port (uvicorn workers). One process runs a request's Python
    # on one core, so under load a short request waits behind others' rendering; on more cores,
    # more processes. Each keeps its own database pool, token cache and rate limits; /metrics sums
    # the HTTP metrics of all of them; every one reads the search index, one writes it.
    api_processes: int = 1
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    temporal_address: str | None = Field(
        default=None, validation_alias=AliasChoices("PULSE_TEMPORAL_ADDRESS", "TEMPORAL_ADDRESS")
    )
    temporal_namespace: str = "default"
    task_queue: str = "pulse-tickets"
    # The Maverick sync's workflows (imports, webhook fetches) and their activities run on a task
    # queue of their own, served by `pulse worker --queue maverick` (a process of its own beside the
    # ticket engine's; `pulse worker` alone serves both). The tickets they change are still written
    # by the ticket workflows on `task_queue`.
    maverick_task_queue: str = "pulse-maverick"
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("PULSE_DATABASE_URL", "DATABASE_URL")
    )
    dev_admin_token: str | None = None
    db_pool_size: int = 10
    # Worker tuning (see pulse.worker.build_worker and bench/sla_timers.py).
    worker_max_concurrent_workflow_tasks: int = 10
    worker_max_cached_workflows: int = 4000
    # The workflow sandbox re-imports the workflow module for every workflow run and wraps every
    # payload: about a third of the worker's CPU per create. The test suite runs its workers
    # sandboxed (pulse.worker.build_worker's default), so the sandbox's determinism checks guard
    # every change; deployed workers run without it unless this is set (docs/decisions.md).
    worker_sandboxed: bool = False
    # Integration secrets (Maverick's apiKey, webhookSecret) are encrypted with this key
    # (pulse.secretbox); `pulse dev` makes one in the data dir when it is not set.
    secrets_key: SecretStr | None = None
    # Workflow payloads are encrypted with this key ring (pulse.codec: "id:base64key[,…]", the
    # first encrypts); `pulse dev` makes one in the data dir when it is not set. Unset: plaintext.
    payload_keys: SecretStr | None = None
    # The codec endpoint (/codec/encode, /codec/decode) takes a bearer token with readSupport; a
    # browser request from this origin (the dev server's Temporal UI, which cannot send one) is let
    # through. `pulse dev` sets it to its own UI's origin; leave it unset anywhere else.
    codec_trusted_origin: str | None = None
    # The address Maverick reaches this API at, for the webhook URL the config shows (else the
    # request's own base URL).
    public_url: str | None = None
    attachment_max_bytes: int = 25 * 1024 * 1024
    # Request limits (pulse.api.limits), per API process: a body over max_body_bytes is a 413
    # before anything reads it (attachment uploads may carry attachment_max_bytes plus 64 KiB);
    # requests per credential and per client address are token buckets (rate per second, burst);
    # failed authentications per client address are limited hardest. 0 turns a limit off.
    max_body_bytes: int = 1024 * 1024
    rate_per_token: float = 200.0
    burst_per_token: int = 1000
    rate_per_address: float = 500.0
    burst_per_address: int = 2000
    auth_failures_per_minute: float = 30.0
    auth_failure_burst: int = 20
    # `make run` with PULSE_DEMO_MAVERICK=1 also starts a Maverick simulator on this port and
    # connects the Dev account to it (pulse.devstack_maverick).
    demo_maverick: bool = False
    maverick_sim_port: int = 8090
    # Observability (docs/decisions.md "Observability"): the API serves Prometheus' /metrics on its
    # own port; the worker serves the Temporal SDK's metrics (and Pulse's activity outcomes) on
    # this one (0: none). Logs are JSON lines ("text" for plain ones). Tracing is configured by
    # the standard OTEL_* variables (pulse.telemetry).
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = 9464
    # A worker serving only the Maverick queue serves its metrics here (0: none).
    maverick_worker_metrics_port: int = 9465
    log_format: str = "json"
    # Search (docs/decisions.md "Search through HTTP"): "tantivy", an index beside the API fed by
    # search_index_queue (pulse.search_index), with PostgreSQL for what it does not hold; or
    # "postgres" alone. The index lives in search_index_dir, else <data_dir>/search-index/<database>.
    search_engine: Literal["tantivy", "postgres"] = "tantivy"
    search_index_dir: Path | None = None

    @property
    def search_index_path(self) -> Path:
        if self.search_index_dir is not None:
            return self.search_index_dir
        database = (self.database_url or "pulse").rsplit("/", 1)[-1].split("?", 1)[0] or "pulse"
        return self.data_dir / "search-index" / database

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"


@lru_cache
def get_settings() -> Settings:
    return Settings()


def sync_database_url(url: str) -> str:
    """SQLAlchemy URL for psycopg 3 from any ``postgresql://`` URL (same driver, sync or async)."""
    return async_database_url(url)


def async_database_url(url: str) -> str:
    """SQLAlchemy URL for psycopg 3 from any ``postgresql://`` URL."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    raise ValueError(f"not a PostgreSQL URL: {url}")
