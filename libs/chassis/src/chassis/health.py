"""Liveness and readiness endpoints, the same in every service."""

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from chassis.runtime import RuntimeDep

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live")
async def live() -> dict[str, str]:
    """The process is up and serving HTTP."""
    return {"status": "ok"}


class Readiness(BaseModel):
    """Whether the service can do its work, and which of its dependencies answer."""

    status: str = Field(description="`ready`, or `not ready`.")
    checks: dict[str, bool] = Field(description="Each dependency (`database`, `broker`): answers?")


@router.get(
    "/ready",
    response_model=None,
    responses={
        200: {"model": Readiness},
        503: {"model": Readiness, "description": "Not ready: a dependency does not answer"},
    },
)
async def ready(runtime: RuntimeDep) -> JSONResponse:
    """The service can do its work: its database answers and it is connected to the broker."""
    database, broker = await asyncio.gather(_database_ok(runtime), runtime.broker_answers())
    checks = {"database": database, "broker": broker}
    ok = all(checks.values())
    return JSONResponse(
        {"status": "ready" if ok else "not ready", "checks": checks},
        status_code=200 if ok else 503,
    )


async def _database_ok(runtime: RuntimeDep) -> bool:
    try:
        async with asyncio.timeout(2), runtime.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True
