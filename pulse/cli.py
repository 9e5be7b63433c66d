"""``pulse dev | api | worker | migrate | maverick-sim``."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings

from pulse.config import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pulse", description="Pulse support-ticket backend")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("dev", help="run the whole stack locally (Temporal, PostgreSQL, worker, API)")
    commands.add_parser("api", help="serve the HTTP API")
    worker = commands.add_parser("worker", help="run a Temporal worker")
    worker.add_argument("--queue", choices=("all", "tickets", "maverick"), default="all",
                        help="the ticket engine's task queue, the Maverick sync's, or both (default)")
    commands.add_parser("migrate", help="apply database migrations")
    sim = commands.add_parser("maverick-sim", help="serve a Maverick simulator (dev and test tool)")
    sim.add_argument("--port", type=int, default=8090)
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--api-key", default="maverick-sim-key")
    sim.add_argument("--tickets", type=int, default=25, help="seed tickets to start with")
    sim.add_argument("--webhook-url", help="send signed webhooks here (a Pulse account's webhookUrl)")
    sim.add_argument("--webhook-secret", help="the secret to sign them with")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.command in ("api", "worker"):  # structured lines (pulse.logs); the others talk to a person
        from pulse import logs

        logs.configure(logging.INFO, json_lines=settings.log_format.lower() != "text")
    else:
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        logging.getLogger("pulse").setLevel(logging.INFO)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

    if args.command == "dev":
        from pulse.devstack import run_dev

        return run_dev(settings)
    if args.command == "api":
        import uvicorn

        from pulse.api.app import create_app
        from pulse.api.observability import use_multiprocess_metrics

        # Idle keep-alive connections stay open 75 s (uvicorn's default is 5 s): longer than the
        # idle timeout of common load balancers (60 s) and HTTP clients' pools, so a client does not
        # send a request on a connection the server is closing at that moment (a ReadError).
        if settings.api_processes > 1:  # each process builds its app from the same environment
            use_multiprocess_metrics(settings.data_dir / "api-metrics")
            uvicorn.run("pulse.api.app:create_app", factory=True, workers=settings.api_processes,
                        host=settings.api_host, port=settings.api_port, log_level="warning", timeout_keep_alive=75)
        else:
            uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port, log_level="warning",
                        timeout_keep_alive=75)
        return 0
    if args.command == "worker":
        from pulse.worker import main as worker_main

        worker_main(args.queue)
        return 0
    if args.command == "maverick-sim":
        from pulse.integrations.maverick.simulator import serve

        serve(args.port, host=args.host, api_key=args.api_key, tickets=args.tickets,
              webhook_url=args.webhook_url, webhook_secret=args.webhook_secret)
        return 0
    if args.command == "migrate":
        from pulse.devstack import migrate

        if not settings.database_url:
            parser.error("set DATABASE_URL")
        migrate(settings.database_url)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
