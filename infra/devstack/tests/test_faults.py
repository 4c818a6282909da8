"""The fault proxy against a real HTTP server and the real broker."""

import contextlib
import http.server
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import ClassVar

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from devstack.faults import FaultProxy, FaultState
from devstack.topics import create_topics
from shared_contracts.topics import ALL_TOPICS

pytestmark = pytest.mark.integration


class _Echo(http.server.BaseHTTPRequestHandler):
    """Answers every POST with its body; counts the requests it saw."""

    protocol_version = "HTTP/1.1"  # keep-alive, so several requests share a connection
    seen: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        if self.headers.get("Transfer-Encoding") == "chunked":
            body = b""
            while size := int(self.rfile.readline().split(b";")[0], 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append(body)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def echo_server() -> Iterator[int]:
    _Echo.seen.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_an_http_proxy_forwards_delays_and_resets_requests(echo_server):
    with FaultProxy("127.0.0.1", echo_server, protocol="http", seed=7) as proxy:
        async with httpx.AsyncClient(base_url=f"http://{proxy.address}") as http:
            assert (await http.post("/", content=b"plain")).content == b"plain"

            async def chunks() -> AsyncIterator[bytes]:
                yield b"chun"
                yield b"ked"

            assert (await http.post("/", content=chunks())).content == b"chunked"

            proxy.slow(200)
            started = time.monotonic()
            assert (await http.post("/", content=b"slow")).content == b"slow"
            assert time.monotonic() - started >= 0.2

            proxy.clear()
            proxy.fail(1.0)
            with pytest.raises(httpx.TransportError):
                await http.post("/", content=b"never")

            proxy.fail(0.3)
            answered = 0
            for i in range(40):
                with contextlib.suppress(httpx.TransportError):
                    answered += (await http.post("/", content=b"%d" % i)).status_code == 200
            proxy.clear()
            assert (await http.post("/", content=b"again")).content == b"again"

    assert proxy.state == FaultState()
    assert b"never" not in _Echo.seen  # a failed request never reaches the service
    assert 10 < 40 - answered < 30
    assert proxy.stats.reset == 1 + 40 - answered
    assert proxy.stats.delayed == 1


async def test_a_kafka_client_behind_the_proxy_stays_behind_it(broker):
    topic = ALL_TOPICS[0]
    await create_topics(broker.bootstrap_servers)
    with FaultProxy("127.0.0.1", broker.port, protocol="kafka", seed=3) as proxy:
        producer = AIOKafkaProducer(bootstrap_servers=proxy.address, linger_ms=0)
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"first", key=b"k")
            forwarded = proxy.stats.requests

            proxy.slow(200)
            started = time.monotonic()
            await producer.send_and_wait(topic, b"slow", key=b"k")
            assert time.monotonic() - started >= 0.2

            proxy.clear()
            proxy.fail(0.3)
            for i in range(10):
                # The producer retries a request lost with its connection.
                await producer.send_and_wait(topic, b"%d" % i, key=b"k")
            proxy.clear()
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=proxy.address, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            values: set[bytes] = set()
            while len(values) < 12:
                batches = await consumer.getmany(timeout_ms=5_000)
                assert batches, f"only {sorted(values)} arrived"
                values |= {m.value for records in batches.values() for m in records}
        finally:
            await consumer.stop()

    assert values == {b"first", b"slow", *(b"%d" % i for i in range(10))}
    # After bootstrapping, the clients connected to the broker address the Metadata
    # answers named: the proxy's, so the produce requests went through it too.
    assert forwarded >= 3  # ApiVersions, Metadata, Produce at least
    assert proxy.stats.connections >= 4
    assert proxy.stats.reset > 0
