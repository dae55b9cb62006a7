"""What the router image installs: the single source for its builders and the tests."""

from __future__ import annotations

# The built-in router: httptools and uvloop (its HTTP server and client), orjson, pydantic
# and PyYAML for router.yaml, prometheus-client for /metrics. Keep in step with
# router/pyproject.toml's dependencies.
ROUTER_REQUIREMENTS: tuple[str, ...] = (
    "orjson>=3.9,<4",
    "httptools>=0.6,<1",
    "uvloop>=0.19,<1",
    "pydantic>=2.6,<3",
    "pyyaml>=6.0,<7",
    "prometheus-client>=0.20,<1",
)
