"""The skeleton's HTTP endpoint (``bench/floors.py``): what the architecture puts in front of every
write, with nothing of Pulse. FastAPI on uvicorn as ``pulse api`` runs, a bearer token compared
with one held in memory, a pydantic body, one Temporal call (update-with-start for a create, an
update for an edit) on the bench's ``FloorWorkflow``, the row it answers rendered as JSON.

``python bench/floor_api.py PORT TEMPORAL_ADDRESS TASK_QUEUE TOKEN``
"""

from __future__ import annotations

import sys
from contextlib import asynccontextmanager
from typing import AsyncIterator

import uvicorn
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy


class Body(BaseModel):
    subject: str


def make_app(temporal_address: str, task_queue: str, token: str) -> FastAPI:
    clients: list[Client] = []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        clients.append(await Client.connect(temporal_address))
        yield

    app = FastAPI(lifespan=lifespan)

    def authorize(authorization: str) -> None:
        if authorization != f"Bearer {token}":
            raise HTTPException(401, "bad token")

    @app.post("/floor/{workflow_id}", status_code=201)
    async def create(workflow_id: str, body: Body, authorization: str = Header("")) -> dict:
        authorize(authorization)
        start = WithStartWorkflowOperation("FloorWorkflow", id=workflow_id, task_queue=task_queue,
                                           id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
        return await clients[0].execute_update_with_start_workflow("create_recorded", body.subject,
                                                                   start_workflow_operation=start)

    @app.patch("/floor/{workflow_id}")
    async def edit(workflow_id: str, body: Body, authorization: str = Header("")) -> dict:
        authorize(authorization)
        return await clients[0].get_workflow_handle(workflow_id).execute_update("edit_recorded", body.subject)

    @app.get("/floor/health")
    async def health() -> dict:
        return {"clients": len(clients)}

    return app


if __name__ == "__main__":
    port, temporal_address, task_queue, token = sys.argv[1:5]
    uvicorn.run(make_app(temporal_address, task_queue, token), host="127.0.0.1", port=int(port), log_level="warning",
                timeout_keep_alive=75)
