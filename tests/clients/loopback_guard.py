"""Refuse, and record, every network connection or name lookup that is not loopback.

A client driver (a script in tests/clients, run with a cloud SDK's own venv) imports
this module before the SDK: ``install("driver.py")`` patches the socket module so the
SDK can talk to the local Docker engine (a Unix socket) and to 127.0.0.1, and nothing
else. ``BLOCKED`` lists what was refused, for the driver to print and the test to assert
empty. Standard library only: it must import in any SDK's venv.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

LOCAL_NAMES = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}
BLOCKED: list[str] = []  # every refused non-loopback connection or name lookup

_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_getaddrinfo = socket.getaddrinfo


def _loopback(address: Any) -> bool:
    try:
        return ipaddress.ip_address(str(address).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def install(owner: str) -> None:
    """Patch the socket module; ``owner`` names the driver in the refusal messages."""

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            BLOCKED.append(f"connect {address[0]}:{address[1]}")
            raise OSError(f"{owner}: refused a connection to {address[0]}")

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        _connect(sock, address)

    def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return _connect_ex(sock, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and name not in LOCAL_NAMES and not _loopback(name):
            BLOCKED.append(f"resolve {name}")
            raise socket.gaierror(socket.EAI_NONAME, f"{owner}: refused to resolve {name}")
        return _getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = guarded_getaddrinfo
