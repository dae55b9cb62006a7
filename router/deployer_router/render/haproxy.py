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
``tune.http.maxhdr``; the header timeout → ``timeout http-request``.

Per-backend limits (``render.limits``): each body class is a ``backend`` section holding
the servers whose ``max_body_mb`` (capped by ``limits.body_mb``) takes its bodies, chosen
by ``use_backend`` on ``Content-Length``; the first class is the default (requests without
a body too), a chunked body (no Content-Length, so HAProxy cannot count it) goes to the
last class, or is refused with 411 when every backend has a limit under ``limits.body_mb``;
a Content-Length over the largest limit → 413 at the front. Each section's
``timeout server`` is the longest per-attempt timeout of its servers (their own
``timeout``, else ``timeouts.request``): HAProxy has no per-server timeout, so a server
with a shorter own timeout is waited on as long (noted). ``timeout client`` is
``timeouts.total`` stretched to the longest backend timeout.
"""

from __future__ import annotations

import re
from string import Template
from typing import Any

from deployer.router.manifest import Manifest
from deployer_router.render import Rendered, health_path, plain_http, seconds, tier_ranks
from deployer_router.render.limits import (
    BodyClass,
    body_classes,
    class_notes,
    longest_timeout,
    total_timeout,
)
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
    if len(tier_ranks(endpoints)) > 2:
        notes.append(
            "HAProxy has two levels (normal and backup): tiers 2 and lower join the backup"
        )
    path = health_path(endpoints, notes)
    if "429" in manifest.retries.retry_on:
        notes.append("HAProxy 2.6 cannot retry on 429; those answers go back to the client")
    if manifest.policy == "least-latency":
        notes.append("least-latency is rendered as leastconn (HAProxy has no latency balancing)")
    notes.append("HAProxy has no retry budget: each request is bounded by `retries` instead")
    if manifest.busy_poll.enabled:
        # HAProxy's busy-polling spins all the time, not only while requests flow
        global_extra = "    busy-polling\n" + global_extra
        notes.append("busy_poll: HAProxy's busy-polling keeps a core busy even when idle")
    limits = manifest.limits
    classes = body_classes(manifest, endpoints)
    name = server_name(manifest.name)
    sections = [_section(manifest, body, _section_name(name, body), path) for body in classes]
    largest = classes[-1]
    chunked = ""
    if largest.limit < limits.body_bytes:
        message = '{"error":"send a Content-Length: every backend has its own body limit"}'
        chunked = (
            f"    http-request return status 411 content-type application/json string"
            f" '{message}' if {{ req.hdr(transfer-encoding) -m found }}\n"
        )
        notes.append(
            "limits: every backend has a body limit under limits.body_mb and HAProxy cannot "
            "count a chunked body: one is refused with 411 (send a Content-Length)"
        )
    else:
        notes.append(
            "limits: HAProxy counts the body limit on Content-Length only: a chunked body "
            "is not counted (it goes to the backends that take limits.body_mb)"
        )
    notes.append(
        "limits: HAProxy has no separate body timeout (timeout client bounds inactivity) "
        "and streams answers (response_mb does not apply)"
    )
    notes.extend(class_notes(manifest, classes, "backend section"))
    use_backends = []
    for body in reversed(classes[1:]):  # first match wins: the largest bodies first
        use_backends.append(
            f"    use_backend {_section_name(name, body)} if "
            f"{{ req.hdr_val(content-length) gt {body.above} }}\n"
        )
    if len(classes) > 1:
        use_backends.append(
            f"    use_backend {_section_name(name, largest)} if "
            "{ req.hdr(transfer-encoding) -m found }\n"
        )
    text = Template(read_template("haproxy.cfg.tmpl")).substitute(
        name=name,
        max_connections=limits.connections,
        # the request head must fit a buffer minus HAProxy's reserve for rewrites (1024)
        bufsize=max(16384, limits.url_bytes + limits.header_bytes + 2 * 1024),
        header_count=limits.header_count,
        header_timeout=seconds(limits.header_timeout),
        idle_timeout=seconds(limits.idle_timeout),
        max_body=largest.limit,
        chunked=chunked,
        use_backends="".join(use_backends),
        global_extra=global_extra,
        bind=bind or f"{manifest.listen.host}:{manifest.listen.port}",
        connect_timeout=seconds(manifest.timeouts.connect),
        client_timeout=seconds(total_timeout(manifest, endpoints)),
        server_timeout=seconds(manifest.timeouts.request),
        check_timeout=seconds(manifest.health.active.timeout),
        backends="\n".join(sections),
    )
    return Rendered("haproxy", text, "haproxy.cfg", skipped, notes)


def _section_name(name: str, body: BodyClass) -> str:
    """The first class keeps the historical ``NAME_backends``; others name their limit."""
    return f"{name}_backends" if body.first else f"{name}_upto_{body.limit}"


def _section(manifest: Manifest, body: BodyClass, section: str, path: str | None) -> str:
    """One ``backend`` section: the servers of a body class, tiers ranked within it."""
    active = manifest.health.active
    passive = manifest.health.passive
    ranks = tier_ranks(list(body.endpoints))
    retry_on: list[str] = []
    for condition in manifest.retries.retry_on:
        for keyword in _RETRY_ON.get(condition, []):
            if keyword not in retry_on:
                retry_on.append(keyword)
    lines = [
        f"backend {section}",
        f"    balance {'leastconn' if manifest.policy == 'least-latency' else 'roundrobin'}",
    ]
    if path is not None:
        lines += [
            "    option httpchk",
            f"    http-check send meth GET uri {path}",
            "    http-check expect rstatus ^2",
        ]
    lines += [
        "    option http-buffer-request",
        f"    timeout server {seconds(longest_timeout(manifest, body.endpoints))}",
        f"    retries {manifest.retries.attempts - 1}",
        f"    retry-on {' '.join(retry_on) or 'none'}",
        "    option redispatch 1",
    ]
    if sum(1 for e in body.endpoints if ranks[e.config.tier] >= 1) > 1:
        lines.append("    option allbackups")
    lines += [
        "    http-response set-header X-Deployer-Backend %[srv_name]",
        f"    default-server inter {seconds(active.interval)} fall {active.unhealthy_threshold}"
        f" rise {active.healthy_threshold}",
    ]
    for endpoint in body.endpoints:
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
        lines.append(" ".join(words))
    return "\n".join(lines) + "\n"
