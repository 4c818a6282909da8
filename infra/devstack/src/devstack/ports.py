"""TCP ports: pick a free one, or say clearly which one is taken and how to move."""

import random
import socket
import sys
from pathlib import Path

from devstack.errors import DevstackError

LOWEST_PORT = 10_000
"""The lowest port `free_port` picks: above the well-known and most registered ones."""

_claims: dict[int, socket.socket | None] = {}
"""The ports `free_port` gave this process and not yet taken back, each with its claim."""


def ephemeral_ports() -> range:
    """The ports the kernel gives outgoing connections (Linux's default if unreadable)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on and no other pick holds.

    Picked at random outside the ephemeral range, not by binding port 0: a server starts
    seconds after its port is picked, and a port of the ephemeral range can be taken in
    between by any outgoing connection, another test's included ("address already in
    use"). Outside it only another pick could take it, so each pick is claimed (see
    `_claim`) until `release_port`: no process that picks with this function, this one
    or a concurrent test run, gets the same port while its server is still starting.
    """
    ephemeral = ephemeral_ports()
    for _ in range(1000):
        port = random.randrange(LOWEST_PORT, 65536)
        if port in ephemeral or not _claim(port):
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                release_port(port)
                continue
            return port
    raise DevstackError(
        f"no free TCP port from {LOWEST_PORT} up outside the ephemeral range "
        f"{ephemeral.start}-{ephemeral.stop - 1} (net.ipv4.ip_local_port_range)"
    )


def release_port(port: int) -> None:
    """Give back a port from `free_port` once its server has stopped (a no-op for others)."""
    claim = _claims.pop(port, None)
    if claim is not None:
        claim.close()


def _claim(port: int) -> bool:
    """Claim `port` for this process; False if this or another process holds it.

    On Linux the claim is a Unix socket bound to a name in the abstract namespace: one
    process at a time can hold a name, the kernel drops it when the process ends however
    it ends, and it leaves no file behind. Elsewhere only this process's picks are known.
    """
    if port in _claims:
        return False
    claim = None
    if sys.platform == "linux":
        claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            claim.bind(f"\0devstack-port-{port}")
        except OSError:
            claim.close()
            return False
    _claims[port] = claim
    return True


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
