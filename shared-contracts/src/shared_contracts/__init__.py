"""Versioned event schemas: the only code the services share. Data only, no behaviour."""

from shared_contracts.envelope import Envelope
from shared_contracts.registry import EVENTS_BY_TOPIC, PAYLOADS, event_key
from shared_contracts.topics import ALL_TOPICS, PRODUCERS, Topic

__all__ = [
    "ALL_TOPICS",
    "EVENTS_BY_TOPIC",
    "PAYLOADS",
    "PRODUCERS",
    "Envelope",
    "Topic",
    "event_key",
]
