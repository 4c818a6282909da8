"""What a delivery costs the local broker, by how many batches its partition holds.

Tansu's in-memory storage keeps each produced batch as an object of its own and, to
answer a fetch that has records to return, lists every batch object of the partition
(Apache Kafka looks the offset up in an index). So a delivery's cost to the broker
grows with the partition's history, which grows with every relay round that sends to
it. This starts a Tansu broker of its own with a one-partition topic, grows the
partition batch by batch, and at each size runs deliveries the way the services do
(the chassis' producer sends one record, the chassis' consumer fetches it) and reports
the broker's CPU per delivery, and the time a fetch of records already there takes.

    .venv/bin/python tests/bench/broker.py [--batches 0,2500,5000,10000] [--deliveries N]
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from chassis.kafka import create_consumer, create_producer
from devstack.broker import Broker
from devstack.ports import free_port
from devstack.procfs import cpu_seconds
from devstack.topics import create_topics

TOPIC = "broker-bench"
PARTITION = TopicPartition(TOPIC, 0)


async def _grow(bootstrap: str, batches: int) -> None:
    """Add `batches` one-record batches to the partition: one send waited for at a time."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    try:
        for _ in range(batches):
            await producer.send_and_wait(TOPIC, b"history", partition=0)
    finally:
        await producer.stop()


async def _catch_up(consumer: AIOKafkaConsumer) -> None:
    end = (await consumer.end_offsets([PARTITION]))[PARTITION]
    while await consumer.position(PARTITION) < end:
        await consumer.getmany(timeout_ms=1000)


async def _deliver(producer: AIOKafkaProducer, consumer: AIOKafkaConsumer) -> None:
    await producer.send_and_wait(TOPIC, b"one delivery", partition=0)
    while not await consumer.getmany(timeout_ms=1000):
        pass


async def _fetch_of_records_there(consumer: AIOKafkaConsumer) -> float:
    """Milliseconds from asking for records already in the partition to having them."""
    consumer.seek(PARTITION, max(0, await consumer.position(PARTITION) - 1))
    started = time.perf_counter()
    while not await consumer.getmany(timeout_ms=1000):
        pass
    return (time.perf_counter() - started) * 1000


async def measure(broker: Broker, sizes: list[int], deliveries: int) -> list[dict[str, float]]:
    """Per partition size: broker CPU per delivery (us), wall time per delivery and per
    fetch of records already there (ms, medians)."""
    assert broker.pid is not None
    pid = broker.pid
    await create_topics(broker.bootstrap_servers, partitions=1, topics=[TOPIC])
    producer = create_producer(broker.bootstrap_servers)
    consumer = create_consumer(broker.bootstrap_servers, "broker-bench", [TOPIC])
    await producer.start()
    await consumer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=500)
        rows, held = [], 0
        for size in sizes:
            await _grow(broker.bootstrap_servers, size - held)
            await _catch_up(consumer)
            held = size
            cpu, started = cpu_seconds(pid), time.perf_counter()
            for _ in range(deliveries):
                await _deliver(producer, consumer)
            wall = (time.perf_counter() - started) / deliveries * 1000
            cost = (cpu_seconds(pid) - cpu) / deliveries * 1e6
            held += deliveries
            fetches = [await _fetch_of_records_there(consumer) for _ in range(20)]
            rows.append(
                {
                    "batches": size,
                    "broker_cpu_us_per_delivery": cost,
                    "ms_per_delivery": wall,
                    "ms_fetching_records_there": statistics.median(fetches),
                }
            )
        return rows
    finally:
        await consumer.stop()
        await producer.stop()


def main(argv: list[str] | None = None) -> None:
    """Start a broker of its own, measure, print a table, stop the broker."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--batches",
        default="0,2500,5000,10000",
        help="the partition sizes to measure at, in batches, ascending (comma-separated)",
    )
    parser.add_argument("--deliveries", type=int, default=400, help="per partition size")
    args = parser.parse_args(argv)
    try:
        sizes = [int(n) for n in args.batches.split(",")]
    except ValueError:
        sizes = []
    if not sizes or sizes != sorted(sizes) or sizes[0] < 0:
        parser.error(f"--batches {args.batches}: give batch counts, 0 or more, ascending")
    if args.deliveries < 1:
        parser.error(f"--deliveries {args.deliveries}: must be 1 or more")
    with tempfile.TemporaryDirectory(prefix="broker-bench-") as tmp:
        broker = Broker(free_port(), Path(tmp) / "broker.log")
        broker.start()
        try:
            rows = asyncio.run(measure(broker, sizes, args.deliveries))
        finally:
            broker.stop()
    print(f"The local broker, one partition, {args.deliveries} deliveries per size:")
    print("  batches held   broker CPU per delivery   per delivery   fetch of records there")
    for row in rows:
        print(
            f"  {row['batches']:>12}   {row['broker_cpu_us_per_delivery']:>20.0f} us"
            f"   {row['ms_per_delivery']:>9.1f} ms   {row['ms_fetching_records_there']:>19.1f} ms"
        )


if __name__ == "__main__":
    main()
