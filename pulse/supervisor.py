"""Keeps ``pulse dev``'s children running: each one that stops is started again, after a backoff
that doubles from 1 s to 30 s while it keeps failing and starts over once a run lasted a minute.
A child is anything with a ``start`` that gives a handle able to say whether it is alive and to
stop it: a subprocess (Temporal, the worker, the API, the Maverick simulator) or the embedded
PostgreSQL server. The other children are left alone while one restarts: the API answers 503
while the database or Temporal is away, the worker's polls wait for Temporal."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
HEALTHY_AFTER_SECONDS = 60.0


class Handle(Protocol):
    def alive(self) -> bool: ...

    def stop(self) -> None: ...

    def describe(self) -> str: ...


class ProcessHandle:
    def __init__(self, process: subprocess.Popen, stop: Callable[[subprocess.Popen], None]) -> None:
        self.process = process
        self._stop = stop

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        self._stop(self.process)

    def describe(self) -> str:
        code = self.process.poll()
        return f"pid {self.process.pid}" + (f", exit code {code}" if code is not None else "")


@dataclass
class Child:
    name: str
    start: Callable[[], Handle]
    handle: Handle | None = None
    started_at: float = 0.0
    backoff: float = FIRST_BACKOFF_SECONDS
    restart_at: float | None = None
    restarts: int = field(default=0)


class Supervisor:
    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.children: list[Child] = []

    def add(self, name: str, start: Callable[[], Handle], *, running: Handle | None = None) -> Handle:
        """Start a child now, or take one ``running`` already (a failure here is raised: the stack
        cannot come up without it); ``start`` is how it is started again."""
        child = Child(name, start)
        child.handle = running or start()
        child.started_at = time.monotonic()
        self.children.append(child)
        return child.handle

    def tend(self) -> None:
        """Notice stopped children and restart those whose backoff has passed; call it often."""
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is None:
                if child.handle is not None and child.handle.alive():
                    continue
                if now - child.started_at >= HEALTHY_AFTER_SECONDS:
                    child.backoff = FIRST_BACKOFF_SECONDS
                what = child.handle.describe() if child.handle is not None else "failed to start"
                self.say(f"{child.name} stopped ({what}); restarting in {child.backoff:.0f} s")
                child.restart_at = now + child.backoff
                child.backoff = min(child.backoff * 2, MAX_BACKOFF_SECONDS)
            elif now >= child.restart_at:
                child.restart_at = None
                child.started_at = now
                try:
                    child.handle = child.start()
                except Exception as error:  # noqa: BLE001 - reported; tried again after the backoff
                    child.handle = None
                    self.say(f"{child.name} could not start: {type(error).__name__}: {error}")
                    continue
                child.restarts += 1
                self.say(f"{child.name} restarted ({child.handle.describe()})")

    def stop_all(self) -> None:
        for child in reversed(self.children):
            if child.handle is not None:
                child.handle.stop()
