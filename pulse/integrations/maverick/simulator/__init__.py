"""A Maverick simulator: a real HTTP server with in-memory state that serves the contract of
``../shared/spec/maverick-api.md``, sends signed webhooks, and fails on request. A dev and test
tool: Pulse's own code never imports it (an import-linter contract says so)."""

from pulse.integrations.maverick.simulator.app import Simulator, create_simulator_app
from pulse.integrations.maverick.simulator.server import RunningSimulator, build, running_simulator, serve

__all__ = ["Simulator", "create_simulator_app", "RunningSimulator", "build", "running_simulator", "serve"]
