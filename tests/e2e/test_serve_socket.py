"""``coordinator serve --workers N`` binds its own listening socket with ``IPPROTO_TCP``.

asyncio sets ``TCP_NODELAY`` only on connections whose socket says it is TCP; uvicorn's own
multi-process socket says protocol 0, which made every response wait for the client's
delayed ACK. Accepted connections inherit the listening socket's protocol, so that is what
is checked here, through asyncio's own rule for switching Nagle off.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from coordinator.cli import CliError, _tcp_socket


def test_connections_accepted_by_the_serve_socket_are_tcp_and_get_nodelay() -> None:
    listener = _tcp_socket("127.0.0.1", 0)
    try:
        assert listener.get_inheritable()
        listener.listen(1)
        with socket.create_connection(listener.getsockname()[:2]) as client:
            conn, _ = listener.accept()
            with conn:
                assert conn.proto == socket.IPPROTO_TCP
                asyncio.base_events._set_nodelay(conn)       # what asyncio's transport does
                assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
                assert client.fileno() >= 0
    finally:
        listener.close()


def test_a_port_in_use_is_one_readable_error() -> None:
    taken = _tcp_socket("127.0.0.1", 0)
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(CliError, match=f"kan ikke lytte på 127.0.0.1:{port}"):
            _tcp_socket("127.0.0.1", port)
    finally:
        taken.close()
