"""Every bound the model server puts on a client, with its default, in one place.

Each limit is a ServingSettings field (deployer.yaml's ``serving.limits`` section) and an
environment variable a platform can set on the container (it wins over the settings):

| setting              | variable                               | default   | beyond it          |
|----------------------|----------------------------------------|-----------|--------------------|
| max_header_bytes     | DEPLOYER_SERVING_MAX_HEADER_BYTES      | 64 KiB    | 431, closed        |
| max_headers          | DEPLOYER_SERVING_MAX_HEADERS           | 100       | 431, closed        |
| header_timeout_s     | DEPLOYER_SERVING_HEADER_TIMEOUT_S      | 30 s      | 408, closed        |
| body_timeout_s       | DEPLOYER_SERVING_BODY_TIMEOUT_S        | 60 s      | 408, closed        |
| max_body_bytes       | DEPLOYER_SERVING_MAX_BODY_BYTES        | 6 MiB     | 413                |
| max_response_bytes   | DEPLOYER_SERVING_MAX_RESPONSE_BYTES    | 32 MiB    | 413                |
| max_connections      | DEPLOYER_SERVING_MAX_CONNECTIONS       | 4096      | 503 (health: 200)  |
| keep_alive_s         | DEPLOYER_SERVING_KEEP_ALIVE_S          | 5 s       | idle conn. closed  |

The header size counts the request line and every header line. The header timeout runs
from the connection (or the first byte of the next request on a kept-alive connection)
until the headers are complete; the body timeout from then until the body is complete.
Connections are per worker process; at start the server raises its open-file soft limit
to the hard limit and keeps the connection cap below it (RESERVED_FDS spare). Above the
cap, up to HEALTH_OVERFLOW more connections may still ask a health route; beyond those,
a new connection gets 503 at once. keep_alive_s is rounded to whole seconds (at least 1).
A body answered before it ended (413, 405) is read and dropped up to max_body_bytes more,
then the connection is closed.
"""

from __future__ import annotations

import resource
from collections.abc import Mapping
from typing import Any

from deployer.serving.connections import (  # noqa: F401  (part of this module's API)
    HEALTH_OVERFLOW,
    RESERVED_FDS,
    ConnectionCap,
    connection_cap,
)

KIB = 1024
MIB = 1024 * KIB

DEFAULT_MAX_HEADER_BYTES = 64 * KIB
DEFAULT_MAX_HEADERS = 100
DEFAULT_HEADER_TIMEOUT_S = 30.0
DEFAULT_BODY_TIMEOUT_S = 60.0
DEFAULT_MAX_BODY_BYTES = 6 * MIB
DEFAULT_MAX_RESPONSE_BYTES = 32 * MIB
DEFAULT_MAX_CONNECTIONS = 4096
DEFAULT_KEEP_ALIVE_S = 5.0

ENV_PREFIX = "DEPLOYER_SERVING_"
# setting -> (type, lowest accepted value)
LIMIT_FIELDS: dict[str, tuple[type, float]] = {
    "max_header_bytes": (int, 1024),
    "max_headers": (int, 1),
    "header_timeout_s": (float, 0.001),
    "body_timeout_s": (float, 0.001),
    "max_body_bytes": (int, 1),
    "max_response_bytes": (int, 1024),
    "max_connections": (int, 1),
    "keep_alive_s": (float, 0.0),
}


def env_name(setting: str) -> str:
    """The environment variable that overrides ``setting``."""
    return ENV_PREFIX + setting.upper()


def overrides_from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """The limits set by environment variables; ValueError naming a bad variable."""
    found: dict[str, Any] = {}
    for setting, (kind, lowest) in LIMIT_FIELDS.items():
        name = env_name(setting)
        raw = environ.get(name)
        if raw is None or raw.strip() == "":
            continue
        try:
            value = kind(raw.strip())
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise ValueError(f"{name}={raw!r}: expected {noun} >= {lowest:g}") from None
        if value < lowest:
            raise ValueError(f"{name}={raw!r}: expected a value >= {lowest:g}")
        found[setting] = value
    return found


def raise_open_files_limit() -> int:
    """Raise RLIMIT_NOFILE's soft limit to its hard limit; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return int(soft)
