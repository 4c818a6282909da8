"""The transactional outbox: events are rows written with the state change that caused them."""

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from chassis import telemetry
from chassis.db import TransactionLocal, after_commit
from chassis.tables import outbox
from shared_contracts import Envelope, event_key


def new_envelope(
    producer: str, key: str, payload: BaseModel, caused_by: Envelope | None = None
) -> Envelope:
    """A fresh envelope for `payload` (a contract model of any version), keyed by `key`."""
    return new_envelopes(producer, key, [payload], caused_by)[0]


def new_envelopes(
    producer: str, key: str, payloads: Sequence[BaseModel], caused_by: Envelope | None = None
) -> list[Envelope]:
    """Envelopes for one event: one payload, or the same event in several versions.

    The copies of an event in several versions (a deprecation window) are one event: they
    share its `event_id` and `occurred_at`, and each lists every version in `versions`.
    A consumer applies the newest copy it can read and skips the rest, and since the
    inbox records the shared id, a copy that reaches a consumer after another copy was
    applied (a partition handed from an instance on the old version to one on the new
    in mid-pair) is a duplicate, not a second event.
    """
    if not payloads or len({type(p).__name__ for p in payloads}) != 1:
        raise ValueError("an event needs a payload, and its versions must share its type")
    keys = [event_key(type(p)) for p in payloads]
    versions = sorted(version for _, version in keys) if len(payloads) > 1 else []
    event_id, occurred_at = uuid.uuid4(), datetime.now(UTC)
    return [
        Envelope(
            event_id=event_id,
            event_type=event_type,
            event_version=event_version,
            occurred_at=occurred_at,
            producer=producer,
            aggregate_id=key,
            causation_id=caused_by.event_id if caused_by else None,
            payload=payload.model_dump(mode="json"),
            versions=versions,
        )
        for payload, (event_type, event_version) in zip(payloads, keys, strict=True)
    ]


class Outbox:
    """Adds events to the outbox table of the caller's transaction.

    Nothing is sent here: the relay publishes rows once the transaction commits.
    The rows a transaction adds are written by one statement as it commits, in the
    order they were added: a consumer's batch transaction applies many events, and
    one insert per event was a round trip each. A rollback writes none of them.
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
        """Add `payload` as an event on `topic` with Kafka key `key`; return its envelope.

        Its row is written when the session's transaction commits (see the class). A
        sequence is one event in several versions, for a deprecation window: a record
        per version, one event id (see `new_envelopes`). The first one's envelope is
        returned. (It awaits nothing now; it stays a coroutine so that no caller breaks.)
        """
        payloads = [payload] if isinstance(payload, BaseModel) else payload
        envelopes = new_envelopes(self.producer, key, payloads, caused_by)
        first = envelopes[0]
        # The row keeps this span's context: the relay's publish, later and batched,
        # continues the trace from here rather than starting one of its own.
        attributes = {"messaging.destination.name": topic, "event.id": str(first.event_id)}
        with telemetry.span(f"outbox {first.event_type}", attributes):
            trace_context = telemetry.current_context() or None
        _PENDING.get(session).extend(
            {
                "topic": topic,
                "key": key,
                "event_id": e.event_id,
                "envelope": e.model_dump_json(),
                "trace_context": trace_context,
            }
            for e in envelopes
        )
        after_commit(session, self.committed.set)
        return first


def _insert(session: Session, rows: list[dict[str, object]]) -> None:
    if rows:
        session.execute(insert(outbox), rows)


_PENDING = TransactionLocal("chassis.outbox.pending", list, _insert)
"""The rows the transaction added, inserted as it commits."""
