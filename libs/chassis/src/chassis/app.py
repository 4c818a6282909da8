"""Build and serve a service's FastAPI app: lifespan, health, metrics, error shapes."""

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from chassis import health
from chassis.consumer import Handler
from chassis.runtime import BackgroundTask, running
from chassis.settings import ServiceSettings


def create_service_app(
    name: str,
    settings: ServiceSettings,
    routers: Sequence[APIRouter],
    handlers: Mapping[str, Handler] | None = None,
    topics: Sequence[str] = (),
    background: Sequence[BackgroundTask] = (),
) -> FastAPI:
    """A FastAPI app whose lifespan runs the outbox relay, the consumer and `background`.

    `handlers` maps event types to the functions that apply them; `topics` are the
    topics the service's consumer group subscribes to.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(name, settings, handlers or {}, topics, background) as runtime:
            app.state.runtime = runtime
            yield

    app = FastAPI(title=f"{name} service", lifespan=lifespan)
    app.include_router(health.router)
    for router in routers:
        app.include_router(router)
    app.add_api_route("/metrics", _metrics, include_in_schema=False)
    return app


def _metrics() -> Response:
    """Prometheus metrics of this process."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run `app` with uvicorn on the configured host and port until SIGINT/SIGTERM."""
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)
