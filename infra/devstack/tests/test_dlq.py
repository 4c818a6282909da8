"""`python -m devstack dlq list|replay` against a real broker."""

import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from devstack._aio import run_sync
from devstack.broker import Broker
from devstack.cli import main
from devstack.dlq import list_dead_letters, replay_dead_letters
from devstack.ports import free_port
from devstack.topics import create_topics
from shared_contracts import Envelope

pytestmark = pytest.mark.integration

TOPIC = "orders.events"
DLQ = "orders.events.dlq"


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One broker with every topic, like the root conftest's `broker`.

    This directory's conftest redefines `broker` as a bare, per-test `Broker`, which
    hides the root fixture from these tests.
    """
    server = Broker(free_port(), Path(tmp_path_factory.mktemp("dlq-broker")) / "broker.log")
    server.start()
    try:
        run_sync(create_topics(server.bootstrap_servers))
        yield server.bootstrap_servers
    finally:
        server.stop()


@pytest.fixture
def keep_signal_handlers() -> Iterator[None]:
    """`main` installs its own signal handlers; put pytest's back afterwards."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def _envelope(key: str) -> bytes:
    return (
        Envelope(
            event_id=uuid.uuid4(),
            event_type="OrderCreated",
            event_version=1,
            occurred_at="2024-01-01T00:00:00Z",
            producer="order",
            aggregate_id=key,
            payload={"unexpected": True},
        )
        .model_dump_json()
        .encode()
    )


def _headers(consumer: str, error: str, reason: str, offset: int) -> list[tuple[str, bytes]]:
    """Headers as `InboxConsumer._dead_letter` writes them, plus a trace header."""
    return [
        ("traceparent", b"00-abc-def-01"),
        ("dlq.error", error.encode()),
        ("dlq.reason", reason.encode()),
        ("dlq.consumer", consumer.encode()),
        ("dlq.topic", TOPIC.encode()),
        ("dlq.partition", b"3"),
        ("dlq.offset", str(offset).encode()),
    ]


async def _dead_letter_three(bootstrap: str, consumers: tuple[str, str, str]) -> dict[str, bytes]:
    """Put 3 records on the DLQ (one unparseable) under fresh keys; return key -> value."""
    run = uuid.uuid4().hex[:8]
    records = {
        f"order-{run}-1": (_envelope(f"order-{run}-1"), "PoisonMessage", "invalid payload\nline 2"),
        f"order-{run}-2": (b"not json at all", "PoisonMessage", "not an event envelope"),
        f"order-{run}-3": (_envelope(f"order-{run}-3"), "RuntimeError", "handler exploded"),
    }
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for n, (key, (value, error, reason)) in enumerate(records.items()):
            headers = _headers(consumers[n], error, reason, offset=100 + n)
            await producer.send_and_wait(DLQ, value, key=key.encode(), headers=headers)
    finally:
        await producer.stop()
    return {key: value for key, (value, _, _) in records.items()}


async def _read_main_topic(
    bootstrap: str, keys: set[str]
) -> list[tuple[str, bytes, dict[str, bytes]]]:
    """Every record on the main topic whose key is in `keys`: (key, value, headers)."""
    found = []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=100
    )
    await consumer.start()
    try:
        await consumer.topics()
        tps = [TopicPartition(TOPIC, p) for p in consumer.partitions_for_topic(TOPIC) or ()]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        quiet_since = time.monotonic()
        # Read past the end offsets until ~1 s passes without records: Tansu's can lag.
        while time.monotonic() - quiet_since < 1:
            batches = await consumer.getmany(timeout_ms=200)
            behind = [tp for tp in tps if await consumer.position(tp) < ends[tp]]
            if batches or behind:
                quiet_since = time.monotonic()
            for records in batches.values():
                found += [
                    (r.key.decode(), r.value, dict(r.headers))
                    for r in records
                    if r.key is not None and r.key.decode() in keys and r.value is not None
                ]
    finally:
        await consumer.stop()
    return found


async def test_list_reports_every_dead_letter_with_its_reason(bootstrap):
    values = await _dead_letter_three(bootstrap, ("payment", "payment", "inventory"))

    letters = [d for d in await list_dead_letters(bootstrap, TOPIC) if d.key_text in values]

    assert sorted(d.key_text for d in letters) == sorted(values)
    by_key = {d.key_text: d for d in letters}
    first, second, third = (by_key[k] for k in values)
    assert (first.reason, second.reason, third.reason) == (
        "invalid payload...",
        "not an event envelope",
        "handler exploded",
    )
    assert first.event.startswith("OrderCreated ")
    assert second.event == "unparseable"
    assert (third.consumer, third.header("dlq.error")) == ("inventory", "RuntimeError")
    assert second.original_topic == TOPIC
    # The DLQ's own name is accepted too, and listing commits nothing.
    again = [d for d in await list_dead_letters(bootstrap, DLQ) if d.key_text in values]
    assert sorted(d.key_text for d in again) == sorted(values)


async def test_replay_republishes_exactly_the_dead_letters_once(bootstrap):
    values = await _dead_letter_three(bootstrap, ("payment", "payment", "inventory"))

    dry = await replay_dead_letters(bootstrap, TOPIC, dry_run=True)
    assert values.keys() <= {r.letter.key_text for r in dry.replayed}
    result = await replay_dead_letters(bootstrap, TOPIC)

    mine = [r for r in result.replayed if r.letter.key_text in values]
    assert sorted(r.letter.key_text for r in mine) == sorted(values)
    published = await _read_main_topic(bootstrap, set(values))
    assert sorted((key, value) for key, value, _ in published) == sorted(values.items())
    by_location = {f"{r.letter.topic}:{r.letter.partition}:{r.letter.offset}": r for r in mine}
    for key, _, headers in published:
        source = by_location[headers["dlq.replayed-from"].decode()]
        assert source.letter.key_text == key
        assert headers["traceparent"] == b"00-abc-def-01"
        assert not [
            name for name in headers if name.startswith("dlq.") and name != "dlq.replayed-from"
        ]

    second = await replay_dead_letters(bootstrap, TOPIC)
    assert second.replayed == []
    assert len(await _read_main_topic(bootstrap, set(values))) == 3


async def test_replay_with_consumer_replays_only_that_consumers_records(bootstrap):
    await replay_dead_letters(bootstrap, TOPIC)  # whatever earlier tests left
    values = await _dead_letter_three(bootstrap, ("payment", "inventory", "payment"))
    first, second, third = values

    only_inventory = await replay_dead_letters(bootstrap, DLQ, consumer_name="inventory")
    assert [r.letter.key_text for r in only_inventory.replayed] == [second]
    assert only_inventory.left_out >= 2
    assert [k for k, _, _ in await _read_main_topic(bootstrap, set(values))] == [second]

    # Records the filter left out are still to be replayed by an unfiltered run.
    rest = await replay_dead_letters(bootstrap, TOPIC)
    assert {first, third} <= {r.letter.key_text for r in rest.replayed}
    published = await _read_main_topic(bootstrap, {first, third})
    assert sorted(k for k, _, _ in published) == sorted([first, third])


@pytest.mark.usefixtures("keep_signal_handlers")
def test_cli_lists_and_replays(bootstrap, capsys):
    values = run_sync(_dead_letter_three(bootstrap, ("payment", "payment", "payment")))

    assert main(["dlq", "list", TOPIC, "--bootstrap", bootstrap]) == 0
    out = capsys.readouterr().out.splitlines()
    lines = {key: [line for line in out if f"key={key} " in line] for key in values}
    assert all(len(found) == 1 for found in lines.values())
    unparseable = lines[list(values)[1]][0]
    assert f"from={TOPIC}[3]@101" in unparseable
    assert "consumer=payment event=unparseable error=PoisonMessage: not an event envelope" in (
        unparseable
    )
    assert out[-1].endswith(f"dead-lettered record(s) in {DLQ}")

    assert main(["dlq", "replay", DLQ, "--bootstrap", bootstrap]) == 0
    out = capsys.readouterr().out.splitlines()
    assert all(any(f"key={key} -> {TOPIC}[" in line for line in out) for key in values)
    assert out[-1].startswith("replayed ") and out[-1].endswith(f"record(s) from {DLQ}")

    assert main(["dlq", "replay", DLQ, "--bootstrap", bootstrap]) == 0
    assert capsys.readouterr().out.splitlines() == [f"replayed 0 record(s) from {DLQ}"]


@pytest.mark.usefixtures("keep_signal_handlers")
def test_cli_reports_an_unknown_topic_and_an_unreachable_broker(bootstrap, capsys):
    assert main(["dlq", "list", "no.such.topic", "--bootstrap", bootstrap]) == 1
    assert capsys.readouterr().err == "error: unknown topic no.such.topic.dlq\n"

    assert main(["dlq", "replay", TOPIC, "--bootstrap", f"127.0.0.1:{free_port()}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the broker at 127.0.0.1:")
    assert len(err.splitlines()) == 1
