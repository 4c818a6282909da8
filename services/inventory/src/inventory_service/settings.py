"""The inventory service's settings, read from `INVENTORY_*` environment variables."""

from pydantic_settings import SettingsConfigDict

from chassis.settings import ServiceSettings


class Settings(ServiceSettings):
    """`INVENTORY_DATABASE_URL`, `INVENTORY_PORT`, ... plus the shared `KAFKA_BOOTSTRAP_SERVERS`."""

    model_config = SettingsConfigDict(env_prefix="INVENTORY_", extra="ignore")

    port: int = 8002
