"""Build and serve a service's FastAPI app: lifespan, health, metrics, error shapes."""

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

import uvicorn
from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from chassis import health, logs, telemetry
from chassis.consumer import Handlers, Prefetch, is_transient
from chassis.overload import InFlightLimit, Overloaded, retry_later
from chassis.runtime import BackgroundTask, running
from chassis.settings import ServiceSettings


def create_service_app(
    name: str,
    settings: ServiceSettings,
    routers: Sequence[APIRouter],
    handlers: Handlers | None = None,
    topics: Sequence[str] = (),
    background: Sequence[BackgroundTask] = (),
    prefetch: Prefetch | None = None,
) -> FastAPI:
    """A FastAPI app whose lifespan runs the outbox relay, the consumer and `background`.

    `handlers` maps payload models (event type and version) to the functions that apply
    them; `topics` are the topics the service's consumer group subscribes to; `prefetch`,
    if given, loads in one go what the handlers of a transaction's events read.
    """

    tracing = telemetry.configure_tracing(name, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(name, settings, handlers or {}, topics, background, prefetch) as runtime:
            if tracing is not None:
                telemetry.instrument_engine(runtime.engine, tracing)
            app.state.runtime = runtime
            yield
        if tracing is not None:
            tracing.shutdown()  # exports what is still buffered

    app = FastAPI(title=f"{name} service", lifespan=lifespan)
    app.state.service_name = name
    app.include_router(health.router)
    for router in routers:
        app.include_router(router)
    app.add_api_route("/metrics", _metrics, include_in_schema=False)
    for error in _UNAVAILABLE_ERRORS:
        app.add_exception_handler(error, _unavailable)
    app.add_exception_handler(Overloaded, _overloaded)
    app.add_middleware(
        InFlightLimit,
        limit=settings.max_concurrent_requests,
        exempt=UNLIMITED_PATHS,
    )
    if tracing is not None:
        telemetry.instrument_app(app, tracing)
    # Outermost: it also counts what the in-flight limit refuses.
    app.add_middleware(telemetry.HttpMetrics)
    return app


UNLIMITED_PATHS = frozenset({"/health/live", "/health/ready", "/metrics"})
"""Never refused for overload: probes and scrapes must answer while the API is saturated."""

# What a request raises when its database (or the network to it) is down: asyncpg's
# own ConnectionRefusedError (an OSError) on connect, SQLAlchemy's wrappers otherwise.
_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (OSError, DBAPIError, PoolTimeout)


async def _unavailable(request: Request, exc: Exception) -> Response:
    """A dependency that is down is a 503 the client may retry, not a 500 with a traceback.

    Anything else of these types (a constraint violation, say) is a bug: re-raised, so it
    stays a logged 500.
    """
    if not is_transient(exc):
        raise exc
    logging.getLogger(__name__).warning(
        "%s %s: dependency unavailable: %s", request.method, request.url.path, exc
    )
    return retry_later("service temporarily unavailable: its database cannot be reached; retry")


async def _overloaded(_request: Request, exc: Exception) -> Response:
    return retry_later(f"service overloaded: {exc}; retry later")


def _metrics() -> Response:
    """Prometheus metrics of this process."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


# How long an idle keep-alive connection stays open. It must outlast the idle expiry of
# the clients (httpx: 5 s; uvicorn's default is also 5 s): a client that reuses a
# connection at the moment the server closes it gets "server disconnected" on a request
# that was never read.
KEEP_ALIVE_SECONDS = 75


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run `app` with uvicorn on the configured host and port until SIGINT/SIGTERM."""
    logs.configure_logging(app.state.service_name, settings.log_level, settings.log_format)
    # uvloop and httptools: the event loop and HTTP parser in C (see docs/performance.md).
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
