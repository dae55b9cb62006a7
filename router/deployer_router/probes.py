"""A backend's health checks, assembled from its manifest entry: active (GET its health
path), control plane (the provider plugin's status) and synthetic predictions (POSTed
through the signed invoke path). deployer_router.health runs them and keeps the state."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

from deployer.router.manifest import Manifest
from deployer_router import health
from deployer_router.client import UpstreamError
from deployer_router.proxy import Upstream, attempt
from deployer_router.server import Request


class Check(NamedTuple):
    """One health check of one backend: its probe, and its interval and thresholds (read
    each round, so a reload changes them)."""

    name: str
    probe: health.Probe
    interval: Callable[[], float]
    threshold: Callable[[], tuple[int, int]]


def checks_for(
    upstream: Upstream, manifest: Manifest, settings: Callable[[], Manifest]
) -> list[Check]:
    """The checks this backend has; intervals, thresholds and timeouts are read from
    ``settings()`` (the running manifest) each round, so they follow reloads."""
    config = upstream.config
    checks: list[Check] = []

    def active() -> Any:
        return settings().health.active

    if config.health_source == "active":
        checks.append(
            Check(
                "active",
                lambda: active_probe(upstream, active().timeout),
                lambda: active().interval,
                lambda: (active().healthy_threshold, active().unhealthy_threshold),
            )
        )
    elif config.health_source == "control-plane":
        project = manifest.name

        def control_plane() -> Any:
            return settings().health.control_plane

        checks.append(
            Check(
                "control-plane",
                lambda: health.control_plane_probe(
                    upstream.config, project, control_plane().timeout
                ),
                lambda: control_plane().interval,
                lambda: (1, 1),
            )
        )
    if config.synthetic is not None:
        synthetic = config.synthetic
        checks.append(
            Check(
                "synthetic",
                lambda: synthetic_probe(
                    upstream, synthetic.body, synthetic.content_type, settings().timeouts.request
                ),
                lambda: synthetic.interval,
                lambda: (1, 2),
            )
        )
    return checks


async def active_probe(upstream: Upstream, timeout: float) -> tuple[bool, str]:
    """GET the backend's health path."""
    config = upstream.config
    path = config.health_path.encode()
    target = upstream.base_path + path if config.mode == "base" else path
    try:
        answer = await upstream.pool.request(
            b"GET", target, b"user-agent: deployer-router\r\n", b"", timeout
        )
    except UpstreamError as exc:
        return False, f"GET {config.health_path}: {exc.kind}: {exc}"
    if 200 <= answer.status < 300:
        return True, ""
    return False, f"GET {config.health_path} answered {answer.status}"


async def synthetic_probe(
    upstream: Upstream, body: str, content_type: str, timeout: float
) -> tuple[bool, str]:
    """POST a prediction through the real (signed) invoke path."""
    request = Request(
        b"POST",
        upstream.fixed_target or b"/invocations",
        [(b"content-type", content_type.encode())],
        body.encode(),
        True,
        "synthetic",
    )
    outcome = await attempt(
        upstream,
        request,
        b"content-type: " + content_type.encode() + b"\r\n",
        timeout,
        time.monotonic(),
    )
    if isinstance(outcome, UpstreamError):
        return False, f"synthetic prediction: {outcome.kind}: {outcome}"
    if 200 <= outcome.status < 300:
        return True, ""
    return False, f"synthetic prediction answered {outcome.status}"
