import socket

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from devstack.broker import Broker
from devstack.errors import DevstackError
from devstack.ports import free_port
from devstack.topics import create_topics
from shared_contracts.topics import ALL_TOPICS

from .helpers import process_gone

pytestmark = pytest.mark.integration


async def test_create_topics_makes_every_topic_and_tolerates_a_second_run(broker):
    await create_topics(broker.bootstrap_servers, partitions=6)
    await create_topics(broker.bootstrap_servers, partitions=6)

    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics(list(ALL_TOPICS))
    finally:
        await admin.close()
    partitions = {t["topic"]: len(t["partitions"]) for t in described}
    assert partitions == dict.fromkeys(ALL_TOPICS, 6)


async def test_a_message_round_trips_with_its_headers(broker):
    topic = ALL_TOPICS[0]
    await create_topics(broker.bootstrap_servers)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            topic, b'{"x": 1}', key=b"order-1", headers=[("traceparent", b"00-abc-def-01")]
        )
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap_servers,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        message = await consumer.getone()
    finally:
        await consumer.stop()
    assert (message.key, message.value) == (b"order-1", b'{"x": 1}')
    assert list(message.headers) == [("traceparent", b"00-abc-def-01")]


def test_stop_leaves_no_process(broker):
    pid = broker.pid
    assert pid is not None

    broker.stop()

    assert broker.pid is None
    assert process_gone(pid)


def test_a_taken_port_fails_with_the_log(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        broker = Broker(taken.getsockname()[1], tmp_path / "broker.log", start_timeout=10)
        with pytest.raises(DevstackError) as failure:
            broker.start()
    assert failure.value.log_path == tmp_path / "broker.log"
    assert broker.pid is None


def test_free_port_is_free():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))
