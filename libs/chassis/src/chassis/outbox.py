"""The transactional outbox: events are rows written with the state change that caused them."""

import asyncio
import uuid
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from chassis.tables import outbox
from shared_contracts import Envelope


def new_envelope(
    producer: str, key: str, payload: BaseModel, caused_by: Envelope | None = None
) -> Envelope:
    """A fresh envelope for `payload` (a v1 contract model), keyed by `key`."""
    return Envelope(
        event_id=uuid.uuid4(),
        event_type=type(payload).__name__,
        event_version=1,
        occurred_at=datetime.now(UTC),
        producer=producer,
        aggregate_id=key,
        causation_id=caused_by.event_id if caused_by else None,
        payload=payload.model_dump(mode="json"),
    )


class Outbox:
    """Adds events to the outbox table of the caller's transaction.

    Nothing is sent here: the relay publishes rows once the transaction commits.
    A commit that added rows wakes the relay at once, so events do not wait for a poll.
    """

    def __init__(self, producer: str) -> None:
        self.producer = producer
        self.committed = asyncio.Event()

    async def add(
        self,
        session: AsyncSession,
        topic: str,
        key: str,
        payload: BaseModel,
        caused_by: Envelope | None = None,
    ) -> Envelope:
        """Write `payload` as an event on `topic` with Kafka key `key`; return its envelope."""
        envelope = new_envelope(self.producer, key, payload, caused_by)
        await session.execute(
            insert(outbox).values(
                topic=topic,
                key=key,
                event_id=envelope.event_id,
                envelope=envelope.model_dump_json(),
            )
        )
        session.info[_PENDING] = self
        return envelope


_PENDING = "chassis.outbox"


@event.listens_for(Session, "after_commit")
def _wake_relay(session: Session) -> None:
    pending: Outbox | None = session.info.pop(_PENDING, None)
    if pending is not None:
        pending.committed.set()


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)
