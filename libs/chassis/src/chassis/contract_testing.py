"""Consumer-driven contract tests: check a producer's real events against what consumers read.

Each service declares its expectations in `services/<service>/contracts/consumes.yaml`:
for every event type and version it handles, the topic it reads it from and the payload
fields its handlers read, each with the JSON type it relies on. This module turns each
expectation into a JSON Schema and validates a producer's events against every
consumer's: a producer's contract test runs its real handlers on a real database
(`run_producer`, `deliver`), takes the events they wrote to its outbox, and asserts that
`verify` finds nothing. `make contracts` reads the same files to name each event's
consumers in `shared-contracts/asyncapi.yaml`.

Test support only: it needs the `contract-testing` extra (jsonschema, PyYAML).
"""

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias, cast

import sqlalchemy as sa
import yaml
from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema.exceptions import best_match
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis import tables
from chassis.consumer import Delivery, Handler, identifiers
from chassis.db import create_engine, create_sessionmaker
from chassis.outbox import Outbox, new_envelope
from shared_contracts import EVENTS_BY_TOPIC, PAYLOADS, PRODUCERS, Topic

EXPECTATIONS_FILE = "contracts/consumes.yaml"
"""Where, inside its directory, a service declares what it reads."""

Event: TypeAlias = tuple[str, int]
"""`(event_type, event_version)`."""

FieldSpec: TypeAlias = str | list["FieldSpec"] | dict[str, "FieldSpec"]
"""A JSON type name, `[spec]` for an array of it, or `{field: spec}` for an object."""

TYPES: dict[str, dict[str, str]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "uuid": {"type": "string", "format": "uuid"},
}
"""The type names a field may declare, as JSON Schema."""

_FILE_SCHEMA: dict[str, Any] = {
    "$defs": {
        "fields": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {"$ref": "#/$defs/field"},
        },
        "field": {
            "anyOf": [
                {"enum": list(TYPES)},
                {
                    "type": "array",
                    "items": {"$ref": "#/$defs/field"},
                    "minItems": 1,
                    "maxItems": 1,
                },
                {"$ref": "#/$defs/fields"},
            ]
        },
    },
    "type": "object",
    "required": ["events"],
    "additionalProperties": False,
    "properties": {
        "events": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["event_type", "event_version", "topic", "fields"],
                "additionalProperties": False,
                "properties": {
                    "event_type": {"type": "string"},
                    "event_version": {"type": "integer", "minimum": 1},
                    "topic": {"type": "string"},
                    "fields": {"$ref": "#/$defs/fields"},
                },
            },
        }
    },
}
_FILE_VALIDATOR = Draft202012Validator(_FILE_SCHEMA)

_TOPIC_OF: dict[Event, Topic] = {
    event: topic
    for topic, models in EVENTS_BY_TOPIC.items()
    for event, model in PAYLOADS.items()
    if model in models
}


@dataclass(frozen=True)
class Expectation:
    """What one consumer reads of one version of one event, and on which topic."""

    consumer: str
    event_type: str
    event_version: int
    topic: str
    fields: Mapping[str, FieldSpec]

    @property
    def event(self) -> Event:
        """`(event_type, event_version)`."""
        return self.event_type, self.event_version

    def schema(self) -> dict[str, Any]:
        """The JSON Schema an envelope of this event must match for this consumer to read it.

        Besides the payload fields, the chassis consumer reads `event_id` (its inbox key),
        `event_type` and `event_version` (to pick the handler) of every event.
        """
        return {
            "type": "object",
            "required": ["event_id", "event_type", "event_version", "payload"],
            "properties": {
                "event_id": TYPES["uuid"],
                "event_type": {"const": self.event_type},
                "event_version": {"const": self.event_version},
                "payload": _object_schema(self.fields),
            },
        }


def _object_schema(fields: Mapping[str, FieldSpec]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(fields),
        "properties": {name: _field_schema(spec) for name, spec in fields.items()},
    }


def _field_schema(spec: FieldSpec) -> dict[str, Any]:
    if isinstance(spec, str):
        return dict(TYPES[spec])
    if isinstance(spec, list):
        return {"type": "array", "items": _field_schema(spec[0])}
    return _object_schema(spec)


def load_expectations(services_dir: Path) -> list[Expectation]:
    """Every service's expectations, from `<services_dir>/<service>/contracts/consumes.yaml`.

    Raises `ValueError` naming the file when one is malformed, declares an event twice,
    or names an event that is not published (on that topic).
    """
    expectations: list[Expectation] = []
    for path in sorted(services_dir.glob(f"*/{EXPECTATIONS_FILE}")):
        expectations += read_expectations(path, consumer=path.parents[1].name)
    return expectations


def read_expectations(path: Path, consumer: str) -> list[Expectation]:
    """The expectations `consumer` declares in the file at `path`; see `load_expectations`."""
    declared = yaml.safe_load(path.read_text())
    error = best_match(_FILE_VALIDATOR.iter_errors(declared))
    if error is not None:
        raise ValueError(f"{path}: {error.json_path}: {error.message}")
    expectations = [
        Expectation(consumer, e["event_type"], e["event_version"], e["topic"], e["fields"])
        for e in cast(list[dict[str, Any]], declared["events"])
    ]
    seen: set[Event] = set()
    for expectation in expectations:
        name = f"{expectation.event_type} v{expectation.event_version}"
        if expectation.event in seen:
            raise ValueError(f"{path}: {name} is declared twice")
        seen.add(expectation.event)
        topic = _TOPIC_OF.get(expectation.event)
        if topic is None:
            raise ValueError(f"{path}: {name} is not a published event (shared_contracts.PAYLOADS)")
        if topic != expectation.topic:
            raise ValueError(f"{path}: {name} is published on {topic}, not {expectation.topic}")
    return expectations


def published_by(producer: str) -> set[Event]:
    """Every event the registry puts on the topics `producer` publishes."""
    return {event for event, topic in _TOPIC_OF.items() if PRODUCERS[topic] == producer}


@dataclass(frozen=True)
class Published:
    """An event as its producer wrote it to the outbox: its topic and its envelope as JSON."""

    topic: str
    envelope: dict[str, Any]

    @property
    def event(self) -> Event:
        """`(event_type, event_version)` of the envelope."""
        return self.envelope.get("event_type", ""), self.envelope.get("event_version", 0)


async def read_outbox(sessions: async_sessionmaker[AsyncSession]) -> list[Published]:
    """Every event in the outbox of the database behind `sessions`, oldest first."""
    table = tables.outbox
    query = sa.select(table.c.topic, table.c.envelope).order_by(table.c.id)
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    return [Published(row.topic, json.loads(row.envelope)) for row in rows]


async def run_producer(
    database_url: str, scenario: Callable[[async_sessionmaker[AsyncSession]], Awaitable[None]]
) -> list[Published]:
    """Run `scenario` (the producer's real handlers) on a database; return its outbox.

    The database should be fresh, so that the outbox holds what this run wrote alone.
    """
    engine = create_engine(database_url)
    try:
        sessions = create_sessionmaker(engine)
        await scenario(sessions)
        return await read_outbox(sessions)
    finally:
        await engine.dispose()


async def deliver(
    sessions: async_sessionmaker[AsyncSession], outbox: Outbox, handler: Handler, event: BaseModel
) -> None:
    """Apply another service's `event` through `handler` in one transaction, as the
    consumer does; what the handler publishes goes to `outbox` in that transaction.

    The envelope's key is the event's first id (`consumer.identifiers`), as its
    producer's would be; handlers read the payload, not the key.
    """
    key = next(iter(identifiers(event).values()), "")
    envelope = new_envelope("contract-test", key, event)
    async with sessions.begin() as session:
        await handler(Delivery(session, envelope, outbox), event)


def problems(published: Published, expectations: Iterable[Expectation]) -> list[str]:
    """Why consumers cannot read `published`: a line per consumer and field, [] if all can."""
    found: list[str] = []
    for expectation in expectations:
        if expectation.event != published.event:
            continue
        who = (
            f"{expectation.consumer} cannot read "
            f"{expectation.event_type} v{expectation.event_version}"
        )
        if published.topic != expectation.topic:
            found.append(f"{who}: it reads {expectation.topic}, not {published.topic}")
        validator = Draft202012Validator(expectation.schema(), format_checker=FormatChecker())
        found += [
            f"{who}: {_where(e)}: {e.message}" for e in validator.iter_errors(published.envelope)
        ]
    return found


def _where(error: ValidationError) -> str:
    """The envelope field an error is about, e.g. `payload.items[0].sku`."""
    return error.json_path.removeprefix("$.") if error.json_path != "$" else "envelope"


def verify(
    producer: str, published: Sequence[Published], expectations: Sequence[Expectation]
) -> list[str]:
    """Everything that would stop a consumer reading what `producer` published; [] if nothing.

    That is every problem of every published event, and every event the producer
    publishes that the run did not produce: a contract test must make its handlers write
    each one, or the expectations of its consumers would go unchecked.
    """
    found = [line for item in published for line in problems(item, expectations)]
    produced = {item.event for item in published}
    for event_type, version in sorted(published_by(producer) - produced):
        readers = ", ".join(
            sorted(e.consumer for e in expectations if e.event == (event_type, version))
        )
        found.append(
            f"{producer} never wrote {event_type} v{version} in this run, so what its "
            f"consumers ({readers or 'none yet'}) read of it is unchecked"
        )
    return found
