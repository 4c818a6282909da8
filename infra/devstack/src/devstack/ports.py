"""TCP ports: pick a free one, or say clearly which one is taken and how to move."""

import socket

from devstack.errors import DevstackError


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
