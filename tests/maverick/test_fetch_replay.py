"""The webhook fetch workflow's code changes must replay runs already in flight: a run recorded
while the fetch was a local activity (``tests/histories/maverick/``, from a bench run) replays on
the current code, which makes the fetch a regular activity behind ``workflow.patched``."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from pulse.workflows.maverick_sync import MaverickTicketFetchWorkflow

HISTORIES = Path(__file__).resolve().parent.parent / "histories" / "maverick"


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda path: path.stem)
async def test_a_fetch_recorded_as_a_local_activity_replays_on_the_current_code(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=[MaverickTicketFetchWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)
