"""The envelope every event travels in, whatever its type."""

from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Envelope(BaseModel):
    """Metadata common to every event; the event itself is `payload`.

    W3C trace context is not here: it travels in Kafka headers.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: UUID = Field(description="Unique id of this event; consumers deduplicate on it.")
    event_type: str = Field(description="Name of the event, e.g. `OrderCreated`.")
    event_version: int = Field(ge=1, description="Schema version of `payload`.")
    occurred_at: AwareDatetime = Field(description="When the producer decided the event (UTC).")
    producer: str = Field(description="Name of the service that produced the event.")
    aggregate_id: str = Field(
        description="Id of the aggregate the event is about (order id or SKU); also the Kafka key."
    )
    causation_id: UUID | None = Field(
        default=None, description="`event_id` of the event that caused this one, if any."
    )
    payload: dict[str, Any] = Field(description="The event body, per `event_type`/`event_version`.")
    versions: list[int] = Field(
        default_factory=list,
        description="When the same event is published in several versions (a deprecation "
        "window), all of them, one record each with the same `event_id`: a consumer applies "
        "the newest it can read and skips the others. Empty when `event_version` is the only "
        "one.",
    )
