"""How many connections one process may hold under its open-file limit (standard library
only: the model server and the local front's image both carry it)."""

from __future__ import annotations

from dataclasses import dataclass

# File descriptors kept out of the connection cap: the model, logs, metrics files, and
# the few health-probe connections still let in when the cap is reached.
RESERVED_FDS = 64
HEALTH_OVERFLOW = 32


@dataclass(frozen=True)
class ConnectionCap:
    """How many connections one worker holds, and the health-only overflow above that."""

    limit: int
    health_overflow: int
    open_files: int


def connection_cap(max_connections: int, open_files: int) -> ConnectionCap:
    """The configured cap, lowered to fit under the open-file limit with room to spare."""
    room = max(open_files - RESERVED_FDS - HEALTH_OVERFLOW, 1)
    overflow = min(HEALTH_OVERFLOW, max(open_files - RESERVED_FDS - 1, 0))
    return ConnectionCap(min(max_connections, room), overflow, open_files)
