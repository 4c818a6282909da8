"""Free ports are picked where no outgoing connection can take them first."""

import socket

from devstack.ports import LOWEST_PORT, ephemeral_ports, free_port


def test_a_free_port_is_outside_the_ephemeral_range_and_can_be_bound() -> None:
    for _ in range(20):
        port = free_port()
        assert port >= LOWEST_PORT
        assert port not in ephemeral_ports()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))
