"""The images' HEALTHCHECK: exit 0 when this container's server answers ``PATH`` with 200.

Usage: ``python -I healthcheck.py PATH [PORT_VARIABLE ...]``. The port is the first of
DEPLOYER_HEALTHCHECK_PORT and the named variables that is set (the platform's port
variables, as the server reads them), else 8080; DEPLOYER_HEALTHCHECK_TIMEOUT bounds the
request (seconds, default 4). Standard library only (no curl needed).
"""

from __future__ import annotations

import http.client
import os
import sys

DEFAULT_PORT = "8080"


def port(variables: list[str]) -> int:
    """The port the server listens on, from the environment."""
    for name in ["DEPLOYER_HEALTHCHECK_PORT", *variables]:
        value = os.environ.get(name)
        if value:
            return int(value)
    return int(DEFAULT_PORT)


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "/ping"
    timeout = float(os.environ.get("DEPLOYER_HEALTHCHECK_TIMEOUT", "4"))
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port(argv[2:]), timeout=timeout)
        try:
            connection.request("GET", path)
            status = connection.getresponse().status
        finally:
            connection.close()
    except (OSError, ValueError, http.client.HTTPException) as exc:
        print(f"unhealthy: GET {path}: {exc}")
        return 1
    print(f"GET {path}: {status}")
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
