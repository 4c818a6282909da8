"""The order service's settings, read from `ORDER_*` variables (and `KAFKA_BOOTSTRAP_SERVERS`)."""

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from chassis.settings import ServiceSettings


class Settings(ServiceSettings):
    """`ORDER_DATABASE_URL` is required; everything else has a default."""

    model_config = SettingsConfigDict(env_prefix="ORDER_", extra="ignore")

    port: int = 8001
    saga_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        validation_alias=AliasChoices("SAGA_TIMEOUT_SECONDS", "saga_timeout_seconds"),
        description="An order still PENDING after this long is cancelled with reason TIMEOUT.",
    )
    max_pending_orders: int = Field(
        default=500,
        ge=1,
        description="New orders are refused (503) while this many are PENDING: the saga backlog.",
    )
