"""The transactional outbox: events are rows written with the state change that caused them."""

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from chassis.tables import outbox
from shared_contracts import Envelope, event_key


def new_envelope(
    producer: str,
    key: str,
    payload: BaseModel,
    caused_by: Envelope | None = None,
    versions: Sequence[int] = (),
) -> Envelope:
    """A fresh envelope for `payload` (a contract model of any version), keyed by `key`.

    `versions`: every version the same event is published in, when more than one.
    """
    event_type, event_version = event_key(type(payload))
    return Envelope(
        event_id=uuid.uuid4(),
        event_type=event_type,
        event_version=event_version,
        occurred_at=datetime.now(UTC),
        producer=producer,
        aggregate_id=key,
        causation_id=caused_by.event_id if caused_by else None,
        payload=payload.model_dump(mode="json"),
        versions=list(versions),
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
        payload: BaseModel | Sequence[BaseModel],
        caused_by: Envelope | None = None,
    ) -> Envelope:
        """Write `payload` as an event on `topic` with Kafka key `key`; return its envelope.

        A sequence is one event in several versions, for a deprecation window: each
        version is a record of its own, and each says which versions exist, so that a
        consumer applies the newest it can read and skips the rest (see the consumer).
        The first payload's envelope is returned.
        """
        payloads = [payload] if isinstance(payload, BaseModel) else list(payload)
        if len({type(p).__name__ for p in payloads}) != 1:
            raise ValueError("the versions of one event must share its type")
        versions = sorted(event_key(type(p))[1] for p in payloads) if len(payloads) > 1 else []
        envelopes = [new_envelope(self.producer, key, p, caused_by, versions) for p in payloads]
        await session.execute(
            insert(outbox),
            [
                {
                    "topic": topic,
                    "key": key,
                    "event_id": e.event_id,
                    "envelope": e.model_dump_json(),
                }
                for e in envelopes
            ],
        )
        session.info[_PENDING] = self
        return envelopes[0]


_PENDING = "chassis.outbox"


@event.listens_for(Session, "after_commit")
def _wake_relay(session: Session) -> None:
    pending: Outbox | None = session.info.pop(_PENDING, None)
    if pending is not None:
        pending.committed.set()


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)
