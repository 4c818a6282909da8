"""The inventory service's settings, read from `INVENTORY_*` variables (and `KAFKA_BOOTSTRAP_SERVERS`)."""

from pydantic_settings import SettingsConfigDict

from chassis.settings import ServiceSettings


class Settings(ServiceSettings):
    """`INVENTORY_DATABASE_URL` is required; everything else has a default."""

    model_config = SettingsConfigDict(env_prefix="INVENTORY_", extra="ignore")

    port: int = 8002
