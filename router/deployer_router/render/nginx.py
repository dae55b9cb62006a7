"""router.yaml as an NGINX configuration (``templates/router/nginx.conf.tmpl``).

Mapping: weights → ``weight``; tier 0 → normal servers, tier 1+ → ``backup`` (NGINX has
two levels; lower tiers join the backup, noted). Open-source NGINX has no active health
checks (that is NGINX Plus): passive only, ``max_fails`` = consecutive failures within
``fail_timeout`` = the base ejection time, after which the server is tried again.
Retries → ``proxy_next_upstream`` (connection errors, timeouts, the configured statuses,
``non_idempotent`` so a POST is retried too), ``proxy_next_upstream_tries`` = attempts and
``proxy_next_upstream_timeout`` = the total timeout. ``least-latency`` → ``least_conn``.
``X-Deployer-Backend`` names the backend that answered (its address when retried).
Limits: body → ``client_max_body_size``; URL and headers → ``large_client_header_buffers``
(a URL must fit one buffer of ``url_bytes``; the headers, ``header_bytes`` in all);
timeouts → ``client_header_timeout`` / ``client_body_timeout``; connections →
``worker_connections`` (twice the limit: NGINX counts backend connections too).
"""

from __future__ import annotations

import math
from string import Template
from typing import Any

from deployer.router.manifest import Manifest
from deployer_router.render import Rendered, plain_http, seconds, tier_ranks
from deployer_router.resources import read_template

_NEXT = {
    "connect-failure": ["error"],
    "reset": ["error", "invalid_header"],
    "timeout": ["timeout"],
    "429": ["http_429"],
    "5xx": ["http_500", "http_502", "http_503", "http_504"],
    "502": ["http_502"],
    "503": ["http_503"],
    "504": ["http_504"],
}


def render(
    manifest: Manifest,
    *,
    listen: str | None = None,
    workers: str = "auto",
    pid: str = "/tmp/deployer-router-nginx.pid",
    temp: str = "/tmp/deployer-router-nginx",
    error_log: str = "stderr",
    access_log: str = "off",
    **_: Any,
) -> Rendered:
    endpoints, skipped = plain_http(manifest)
    notes = [
        "open-source NGINX has no active health checks: backends are taken out after "
        "max_fails failed requests and tried again after fail_timeout",
        "NGINX has no retry budget: proxy_next_upstream_tries bounds each request instead",
    ]
    ranks = tier_ranks(endpoints)
    if len(ranks) > 2:
        notes.append("NGINX has two levels (normal and backup): tiers 2 and lower join the backup")
    if manifest.policy == "least-latency":
        notes.append("least-latency is rendered as least_conn (no latency balancing in OSS NGINX)")
    if manifest.busy_poll.enabled:
        notes.append("busy_poll is not rendered: NGINX has no busy-polling setting")
    limits = manifest.limits
    notes.append(
        "limits: NGINX has no header count limit, times the body between two reads "
        "(client_body_timeout) rather than whole, and answers past worker_connections by "
        "not accepting (no 503)"
    )
    passive = manifest.health.passive
    servers, names = [], []
    for endpoint in endpoints:
        config = endpoint.config
        words = [f"        server {endpoint.address}"]
        if config.weight == 0:
            words.append("down")
        else:
            words.append(f"weight={config.weight}")
        words.append(f"max_fails={passive.consecutive_failures}")
        words.append(f"fail_timeout={seconds(passive.base_ejection)}")
        if ranks[config.tier] >= 1:
            words.append("backup")
        servers.append(" ".join(words) + ";")
        names.append(f'        "{endpoint.address}" "{endpoint.name}";')
    next_upstream: list[str] = []
    for condition in manifest.retries.retry_on:
        for keyword in _NEXT.get(condition, []):
            if keyword not in next_upstream:
                next_upstream.append(keyword)
    next_upstream.append("non_idempotent")
    text = Template(read_template("nginx.conf.tmpl")).substitute(
        name=manifest.name.replace("-", "_"),
        workers=workers,
        pid=pid,
        temp=temp,
        error_log=error_log,
        access_log=access_log,
        max_body=f"{max(1, math.ceil(limits.body_mb * 1024))}k",
        header_timeout=seconds(limits.header_timeout),
        idle_timeout=seconds(limits.idle_timeout),
        body_timeout=seconds(limits.body_timeout),
        header_buffers=max(2, math.ceil(limits.header_bytes / limits.url_bytes)),
        header_buffer_size=f"{math.ceil(limits.url_bytes / 1024)}k",
        worker_connections=2 * limits.connections,
        balance="        least_conn;\n" if manifest.policy == "least-latency" else "",
        servers="\n".join(servers),
        names="\n".join(names),
        listen=listen or f"{manifest.listen.host}:{manifest.listen.port}",
        connect_timeout=seconds(manifest.timeouts.connect),
        request_timeout=seconds(manifest.timeouts.request),
        total_timeout=seconds(manifest.timeouts.total),
        next_upstream=" ".join(next_upstream),
        attempts=manifest.retries.attempts,
    )
    return Rendered("nginx", text, "nginx.conf", skipped, notes)
