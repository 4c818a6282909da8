"""Settings every service has; each service subclasses with its own `env_prefix`."""

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings

LogFormat = Literal["auto", "json", "console"]


class ServiceSettings(BaseSettings):
    """Database, broker and HTTP settings, read from the environment.

    A subclass sets `env_prefix` (`ORDER_`, ...), so each service reads only its own
    `<PREFIX>DATABASE_URL`; `KAFKA_BOOTSTRAP_SERVERS` is shared by all of them.
    """

    database_url: str = Field(
        description="SQLAlchemy URL of the service's own database (postgresql+asyncpg://...)."
    )
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers"),
    )
    kafka_group_id: str | None = Field(
        default=None, description="Consumer group; defaults to the service's name."
    )
    host: str = "127.0.0.1"
    port: int
    log_level: str = "INFO"
    log_format: LogFormat = Field(
        default="auto",
        validation_alias=AliasChoices("LOG_FORMAT", "log_format"),
        description="`json` lines, `console` lines, or `auto`: console on a terminal.",
    )
    traces_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("TRACES_DIR", "traces_dir"),
        description="Write finished spans here as JSON lines, a file per process (tests).",
    )
    consumer_max_attempts: int = Field(
        default=5, ge=1, description="Attempts at a failing event before it is dead-lettered."
    )
    # 64 rather than 32: the order service's intake places together the requests that
    # wait, so the limit caps its batches; flat out, 64 clients completed 805 and 773
    # sagas/s where 32 completed 594 and 720 (docs/performance.md, "64 requests in flight").
    max_concurrent_requests: int = Field(
        default=64,
        ge=1,
        description="HTTP requests one process serves at once; more are refused with 503.",
    )
