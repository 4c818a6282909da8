"""The shipping service's settings, read from `SHIPPING_*` variables (and `KAFKA_BOOTSTRAP_SERVERS`)."""

from pydantic_settings import SettingsConfigDict

from chassis.settings import ServiceSettings


class Settings(ServiceSettings):
    """`SHIPPING_DATABASE_URL` is required; everything else has a default."""

    model_config = SettingsConfigDict(env_prefix="SHIPPING_", extra="ignore")

    port: int = 8004
