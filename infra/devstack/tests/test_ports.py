"""Free ports are picked where no outgoing connection can take them first, and no two
picks, in this process or another, get the same port while its server starts."""

import random
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from devstack.ports import LOWEST_PORT, ephemeral_ports, free_port, release_port


def test_a_free_port_is_outside_the_ephemeral_range_and_can_be_bound() -> None:
    for _ in range(20):
        port = free_port()
        assert port >= LOWEST_PORT
        assert port not in ephemeral_ports()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))
        release_port(port)


def two_free_ports() -> tuple[int, int]:
    """Two ports nothing listens on now, picked and given back again."""
    chosen = free_port(), free_port()
    for port in chosen:
        release_port(port)
    return chosen


def picks(monkeypatch: pytest.MonkeyPatch, *candidates: int) -> None:
    """Make `free_port` try `candidates` in this order, where it would draw at random."""
    draws: Iterator[int] = iter(candidates)
    monkeypatch.setattr(random, "randrange", lambda *_: next(draws))


def test_a_port_picked_is_not_picked_again_until_released(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, spare = two_free_ports()
    picks(monkeypatch, first, first, spare)
    assert free_port() == first
    assert free_port() == spare
    release_port(first)
    picks(monkeypatch, first)
    assert free_port() == first
    release_port(first)
    release_port(spare)


@pytest.mark.skipif(sys.platform != "linux", reason="the claim between processes is Linux's")
def test_a_port_another_process_picked_is_not_picked_while_it_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    held, spare = two_free_ports()
    other = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import random, sys\n"
            "from devstack.ports import free_port\n"
            f"random.randrange = lambda *_: {held}\n"
            "print(free_port(), flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == str(held)
        picks(monkeypatch, held, spare)
        assert free_port() == spare
        release_port(spare)
    finally:
        other.communicate(timeout=10)  # closes its stdin: it exits, and its claim with it
    picks(monkeypatch, held)
    assert free_port() == held
    release_port(held)
