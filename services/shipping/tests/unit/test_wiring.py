"""How the shipping service is put together, checked without I/O."""

from shared_contracts import EVENTS_BY_TOPIC
from shipping_service.main import HANDLERS, TOPICS
from shipping_service.settings import Settings


def test_it_handles_only_events_published_on_the_topics_it_subscribes_to():
    published = {model for topic in TOPICS for model in EVENTS_BY_TOPIC[topic]}
    assert HANDLERS
    assert set(HANDLERS) <= published


def test_it_reads_only_its_own_prefixed_settings(monkeypatch):
    monkeypatch.setenv("SHIPPING_DATABASE_URL", "postgresql+asyncpg://u:p@db/shipping")
    # A sibling's variable (a made-up one: no file of a service names a real sibling's).
    monkeypatch.setenv("SIBLING_DATABASE_URL", "postgresql+asyncpg://u:p@db/sibling")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u:p@db/unprefixed")

    settings = Settings()

    assert settings.database_url.endswith("/shipping")
    assert settings.port == 8004
