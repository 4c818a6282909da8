"""TCP ports: pick a free one, or say clearly which one is taken and how to move."""

import random
import socket
from pathlib import Path

from devstack.errors import DevstackError

LOWEST_PORT = 10_000
"""The lowest port `free_port` picks: above the well-known and most registered ones."""


def ephemeral_ports() -> range:
    """The ports the kernel gives outgoing connections (Linux's default if unreadable)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now.

    Picked at random outside the ephemeral range, not by binding port 0: a server starts
    seconds after its port is picked, and a port of the ephemeral range can be taken in
    between by any outgoing connection, another test's included ("address already in
    use"). Outside it only another pick can collide, one chance in tens of thousands.
    """
    ephemeral = ephemeral_ports()
    for _ in range(1000):
        port = random.randrange(LOWEST_PORT, 65536)
        if port in ephemeral:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise DevstackError(
        f"no free TCP port from {LOWEST_PORT} up outside the ephemeral range "
        f"{ephemeral.start}-{ephemeral.stop - 1} (net.ipv4.ip_local_port_range)"
    )


def check_port_free(port: int, owner: str, env_var: str) -> None:
    """Raise a one-line `DevstackError` when `port` on 127.0.0.1 is already taken.

    `owner` names what wanted the port ("order service") and `env_var` the variable
    that moves it, so the message tells the user what to do.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Servers bind with SO_REUSEADDR, so a socket in TIME_WAIT from a previous run
        # does not block them; only a live listener should fail this check.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise DevstackError(
                f"port {port} is already in use ({owner}); set {env_var} to another port"
            ) from None
