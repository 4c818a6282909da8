"""A TCP fault proxy: slow down or break one service's traffic without touching its code.

A `FaultProxy` listens on 127.0.0.1, forwards every connection to one upstream address,
and applies the faults set on it *at that moment* to each request passing through:

- `slow(delay_ms)`: each request reaches the upstream `delay_ms` later than it was sent;
- `fail(rate)`: each request, with probability `rate`, never reaches the upstream: the
  proxy resets the caller's connection (TCP RST) instead, and closes its upstream side;
- `clear()`: no fault; the proxy only forwards.

Answers (upstream -> caller) are never delayed or dropped. What a "request" is depends on
the protocol the proxy speaks:

- `"kafka"`: a request frame of the Kafka protocol (a 4-byte big-endian length, then the
  request). Frames keep their order; requests a client pipelines on one connection are
  each delayed by `delay_ms`, not queued behind one another, as on a slow network. A
  reset takes with it every request still in flight on that connection (and any still
  held back by `slow`), as a real one does; the client sees a broken connection and
  reconnects. Because a Kafka client,
  after bootstrapping, connects to the broker addresses it reads from Metadata and
  FindCoordinator answers, the proxy rewrites the upstream's port in those answers to
  its own, so that all of the client's connections stay behind it. This works for one
  broker that advertises the very `host:port` the proxy forwards to (the local broker
  does); with a cluster, the connections to other brokers would bypass the proxy.
- `"http"`: an HTTP/1.1 request (headers, then a body by `Content-Length` or chunked).
  Requests on a keep-alive connection are sequential, so each is held `delay_ms` before
  it is forwarded; a failed one gets a reset connection and the service never sees it.
- `"tcp"`: whatever one read from the caller's socket returns, for a protocol the proxy
  does not parse (PostgreSQL's, between a service and its database). The bytes keep
  their order and each read is held `delay_ms`, so a client that waits for an answer
  before it sends again (a database driver) pays `delay_ms` per round trip: a database
  that far away.

`stats` counts connections, requests, delayed and reset requests since the start.
The proxy runs its own event loop in a thread, so the synchronous launcher (`Stack`) and
async callers alike can start it and change its faults at any time (from any thread).
"""

import asyncio
import contextlib
import logging
import random
import socket
import struct
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal, Self

logger = logging.getLogger(__name__)

Protocol = Literal["kafka", "http", "tcp"]

_NAMES_BROKERS = frozenset({3, 10})
"""Kafka api keys whose answers name brokers: Metadata and FindCoordinator."""


@dataclass(frozen=True)
class FaultState:
    """The faults a proxy applies now: both zero means it only forwards."""

    delay_ms: float = 0.0
    fail_rate: float = 0.0


@dataclass
class ProxyStats:
    """What the proxy did since it started (counts, read at any time)."""

    connections: int = 0
    requests: int = 0
    """Requests seen, forwarded or not."""
    delayed: int = 0
    reset: int = 0
    """Requests not forwarded: their connection was reset instead."""


class FaultProxy:
    """Forwards 127.0.0.1:`port` to `upstream_host`:`upstream_port`, with faults on demand.

    `port=0` picks a free port (read it from `port` once started). `seed` makes the
    choice of failed requests repeatable. Use it as a context manager or call
    `start()` and `stop()`.
    """

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        protocol: Protocol,
        port: int = 0,
        seed: int | None = None,
        name: str = "",
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.protocol: Protocol = protocol
        self.name = name or f"{protocol} proxy to {upstream_host}:{upstream_port}"
        self.stats = ProxyStats()
        self._port = port
        self._state = FaultState()
        self._rng = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    # -- the API ----------------------------------------------------------------------

    def slow(self, delay_ms: float) -> None:
        """Hold every request `delay_ms` before forwarding it (keeps any failure rate)."""
        if delay_ms < 0:
            raise ValueError(f"delay_ms must be >= 0, not {delay_ms}")
        self._state = FaultState(delay_ms, self._state.fail_rate)
        logger.info("%s: requests delayed by %s ms", self.name, delay_ms)

    def fail(self, rate: float) -> None:
        """Reset the connection instead of forwarding a request, with probability `rate`."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, not {rate}")
        self._state = FaultState(self._state.delay_ms, rate)
        logger.info("%s: %.1f%% of requests reset", self.name, rate * 100)

    def clear(self) -> None:
        """No more faults: forward everything at once."""
        self._state = FaultState()
        logger.info("%s: faults cleared", self.name)

    @property
    def state(self) -> FaultState:
        """The faults applied now."""
        return self._state

    @property
    def port(self) -> int:
        """The port the proxy listens on (known once started)."""
        return self._port

    @property
    def address(self) -> str:
        """`127.0.0.1:port`, for a client's bootstrap servers or a base URL."""
        return f"127.0.0.1:{self._port}"

    # -- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 5.0) -> None:
        """Listen, in a thread of its own; returns once connections are accepted."""
        if self._thread is not None:
            return
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"fault-{self.name}", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            asyncio.run_coroutine_threadsafe(self._listen(), loop).result(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener and every connection, and end the thread; safe to repeat."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        loop.close()
        self._loop = self._thread = None

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self._port)
        self._port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # -- one connection -----------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self.stats.connections += 1
        broken = True
        try:
            broken = await self._relay(reader, writer)
        except (asyncio.CancelledError, OSError, ValueError):
            pass  # the proxy is stopping, or a peer broke the connection or the protocol
        finally:
            self._connections.discard(task)
            _close(writer, reset=broken)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Pump both directions until one side is done; True when the caller must be reset."""
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            return True  # upstream down: the caller sees its connection reset, as it would
        # Correlation ids of this connection's Kafka requests whose answers name brokers.
        kafka_rewrites: set[bytes] = set()
        requests = asyncio.create_task(self._requests(reader, up_writer, kafka_rewrites))
        answers = asyncio.create_task(self._answers(up_reader, writer, kafka_rewrites))
        broken = True
        try:
            await asyncio.wait([requests, answers], return_when=asyncio.FIRST_COMPLETED)
            if requests.done() and not requests.cancelled() and requests.exception() is None:
                if requests.result():
                    return True  # a failed request: reset both sides
                # The caller finished sending: pass that on, let the answers come back.
                with contextlib.suppress(OSError):
                    up_writer.write_eof()
                await answers
            broken = answers.exception() is not None if answers.done() else True
            return broken
        finally:
            for task in (requests, answers):
                task.cancel()
            await asyncio.gather(requests, answers, return_exceptions=True)
            _close(up_writer, reset=broken)

    async def _requests(
        self,
        reader: asyncio.StreamReader,
        upstream: asyncio.StreamWriter,
        kafka_rewrites: set[bytes],
    ) -> bool:
        """Caller -> upstream: decide each request's fate, forward it when due.

        Returns True when a request was failed (the connection must be reset), False
        when the caller finished sending and everything it sent went out.
        """
        loop = asyncio.get_running_loop()
        due: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.create_task(_send_when_due(due, upstream))
        try:
            async for request in self._read_requests(reader):
                self.stats.requests += 1
                state = self._state
                if state.fail_rate and self._rng.random() < state.fail_rate:
                    self.stats.reset += 1
                    return True
                if self.protocol == "kafka" and _kafka_api_key(request) in _NAMES_BROKERS:
                    kafka_rewrites.add(request[8:12])
                if state.delay_ms:
                    self.stats.delayed += 1
                await due.put((loop.time() + state.delay_ms / 1000, request))
            await due.join()
            return False
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    def _read_requests(self, reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
        readers = {"kafka": _kafka_frames, "http": _http_requests, "tcp": _chunks}
        return readers[self.protocol](reader)

    async def _answers(
        self,
        reader: asyncio.StreamReader,
        caller: asyncio.StreamWriter,
        kafka_rewrites: set[bytes],
    ) -> None:
        """Upstream -> caller, unchanged except Kafka's broker addresses (see the module doc)."""
        if self.protocol != "kafka":
            async for chunk in _chunks(reader):
                caller.write(chunk)
                await caller.drain()
            return
        rewrite = _port_rewriter(self.upstream, self._port)
        async for frame in _kafka_frames(reader):
            correlation_id = frame[4:8]
            if correlation_id in kafka_rewrites:
                kafka_rewrites.discard(correlation_id)
                frame = rewrite(frame)
            caller.write(frame)
            await caller.drain()


async def _send_when_due(
    due: asyncio.Queue[tuple[float, bytes]], out: asyncio.StreamWriter
) -> None:
    loop = asyncio.get_running_loop()
    while True:
        at, data = await due.get()
        await asyncio.sleep(max(0.0, at - loop.time()))
        out.write(data)
        await out.drain()
        due.task_done()


def _close(writer: asyncio.StreamWriter, *, reset: bool) -> None:
    """Close after sending what is buffered, or at once with a TCP RST (SO_LINGER 0).

    A reset, not a FIN, is what a broken connection looks like to the peer.
    """
    if not reset:
        writer.close()
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# -- protocols ----------------------------------------------------------------------------


async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """What each read returns, until the peer closes."""
    while chunk := await reader.read(65536):
        yield chunk


async def _kafka_frames(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """Each length-prefixed frame, prefix included, until the peer closes."""
    while True:
        try:
            prefix = await reader.readexactly(4)
            yield prefix + await reader.readexactly(int.from_bytes(prefix, "big", signed=True))
        except asyncio.IncompleteReadError:
            return


def _kafka_api_key(frame: bytes) -> int:
    # A request header starts with api_key (int16), api_version (int16), correlation_id.
    return int.from_bytes(frame[4:6], "big", signed=True)


def _port_rewriter(upstream: tuple[str, int], port: int) -> Callable[[bytes], bytes]:
    """Replace the upstream's port after its host, wherever an answer names that broker.

    In every version of Metadata and FindCoordinator a broker is a host string followed
    by its port as an int32, so the 4 bytes after the host are the port; swapping them
    keeps the frame's length, whatever the encoding of the string's length before it.
    """
    host = upstream[0].encode()
    old, new = host + struct.pack(">i", upstream[1]), host + struct.pack(">i", port)
    return lambda frame: frame.replace(old, new)


async def _http_requests(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """Each HTTP/1.1 request, raw: headers and a Content-Length or chunked body."""
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return
        except asyncio.LimitOverrunError:
            raise ConnectionError("HTTP request headers too long for the fault proxy") from None
        headers = _header_fields(head)
        if "chunked" in headers.get("transfer-encoding", ""):
            yield head + await _chunked_body(reader)
        else:
            yield head + await reader.readexactly(int(headers.get("content-length", "0")))


def _header_fields(head: bytes) -> dict[str, str]:
    fields = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip().lower()
    return fields


async def _chunked_body(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        body += size_line
        if size == 0:
            break
        body += await reader.readexactly(size + 2)  # the chunk and its CRLF
    while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
        body += trailer
    return body + trailer
