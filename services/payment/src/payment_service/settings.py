"""The payment service's settings, read from `PAYMENT_*` variables (and `KAFKA_BOOTSTRAP_SERVERS`)."""

from pydantic_settings import SettingsConfigDict

from chassis.settings import ServiceSettings


class Settings(ServiceSettings):
    """`PAYMENT_DATABASE_URL` is required; everything else has a default."""

    model_config = SettingsConfigDict(env_prefix="PAYMENT_", extra="ignore")

    port: int = 8003
