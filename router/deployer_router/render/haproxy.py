"""router.yaml as an HAProxy configuration (``templates/router/haproxy.cfg.tmpl``).

Mapping: weights → ``weight``; tier 0 → normal servers, tier 1 → ``backup`` servers (with
``option allbackups`` they share the load by weight); HAProxy has two levels, so tiers 2+
join the backup level (noted). Active health → ``option httpchk`` on the health path with
``inter``/``fall``/``rise``; passive ejection → ``observe layer7`` with ``error-limit`` and
``on-error mark-down`` (the active check re-admits). Retries → ``retries`` (attempts - 1),
``retry-on`` and ``option redispatch`` (a retry goes to another server), with the request
body buffered so a POST can be retried. HAProxy 2.6 cannot retry on 429 (noted).
``least-latency`` becomes ``leastconn``, the closest HAProxy has. Limits: connections →
``maxconn``; the head (URL and headers) → ``tune.bufsize``; header count →
``tune.http.maxhdr``; the header timeout → ``timeout http-request``; the body limit → a
413 on ``Content-Length`` (chunked bodies are not counted, noted).
"""

from __future__ import annotations

import re
from string import Template
from typing import Any

from deployer.router.manifest import Manifest
from deployer_router.render import Rendered, health_path, plain_http, seconds, tier_ranks
from deployer_router.resources import read_template

_RETRY_ON = {
    "connect-failure": ["conn-failure"],
    "reset": ["empty-response", "junk-response"],
    "timeout": ["response-timeout"],
    "5xx": ["500", "502", "503", "504"],
    "502": ["502"],
    "503": ["503"],
    "504": ["504"],
}


def server_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.:-]", "_", name)


def render(
    manifest: Manifest, *, bind: str | None = None, global_extra: str = "", **_: Any
) -> Rendered:
    endpoints, skipped = plain_http(manifest)
    notes: list[str] = []
    ranks = tier_ranks(endpoints)
    if len(ranks) > 2:
        notes.append(
            "HAProxy has two levels (normal and backup): tiers 2 and lower join the backup"
        )
    path = health_path(endpoints, notes)
    active = manifest.health.active
    passive = manifest.health.passive
    retry_on: list[str] = []
    for condition in manifest.retries.retry_on:
        for keyword in _RETRY_ON.get(condition, []):
            if keyword not in retry_on:
                retry_on.append(keyword)
    if "429" in manifest.retries.retry_on:
        notes.append("HAProxy 2.6 cannot retry on 429; those answers go back to the client")
    if manifest.policy == "least-latency":
        notes.append("least-latency is rendered as leastconn (HAProxy has no latency balancing)")
    notes.append("HAProxy has no retry budget: each request is bounded by `retries` instead")
    servers = []
    for endpoint in endpoints:
        config = endpoint.config
        words = [
            f"    server {server_name(endpoint.name)} {endpoint.address}",
            f"weight {config.weight}",
        ]
        if config.health_source == "active" and path is not None:
            words.append("check")
            words.append(
                f"observe layer7 error-limit {passive.consecutive_failures} on-error mark-down"
            )
        if ranks[config.tier] >= 1:
            words.append("backup")
        if config.weight == 0:
            words.append("disabled")
        servers.append(" ".join(words))
    health = ""
    if path is not None:
        health = (
            f"    option httpchk\n    http-check send meth GET uri {path}\n"
            "    http-check expect rstatus ^2\n"
        )
    backups = sum(1 for e in endpoints if ranks[e.config.tier] >= 1)
    if manifest.busy_poll.enabled:
        # HAProxy's busy-polling spins all the time, not only while requests flow
        global_extra = "    busy-polling\n" + global_extra
        notes.append("busy_poll: HAProxy's busy-polling keeps a core busy even when idle")
    limits = manifest.limits
    notes.append(
        "limits: HAProxy counts the body limit on Content-Length only (not chunked bodies), "
        "has no separate body timeout (timeout client bounds inactivity) and streams "
        "answers (response_mb does not apply)"
    )
    text = Template(read_template("haproxy.cfg.tmpl")).substitute(
        name=server_name(manifest.name),
        max_connections=limits.connections,
        # the request head must fit a buffer minus HAProxy's reserve for rewrites (1024)
        bufsize=max(16384, limits.url_bytes + limits.header_bytes + 2 * 1024),
        header_count=limits.header_count,
        header_timeout=seconds(limits.header_timeout),
        idle_timeout=seconds(limits.idle_timeout),
        max_body=limits.body_bytes,
        global_extra=global_extra,
        bind=bind or f"{manifest.listen.host}:{manifest.listen.port}",
        connect_timeout=seconds(manifest.timeouts.connect),
        client_timeout=seconds(manifest.timeouts.total),
        server_timeout=seconds(manifest.timeouts.request),
        check_timeout=seconds(active.timeout),
        balance="leastconn" if manifest.policy == "least-latency" else "roundrobin",
        health=health,
        retries=manifest.retries.attempts - 1,
        retry_on=" ".join(retry_on) or "none",
        allbackups="    option allbackups\n" if backups > 1 else "",
        default_server=(
            f"inter {seconds(active.interval)} fall {active.unhealthy_threshold} "
            f"rise {active.healthy_threshold}"
        ),
        servers="\n".join(servers),
    )
    return Rendered("haproxy", text, "haproxy.cfg", skipped, notes)
