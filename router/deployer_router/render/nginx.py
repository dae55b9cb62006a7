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

Per-backend limits (``render.limits``): one ``upstream`` per body class (the servers whose
``max_body_mb``, capped by ``limits.body_mb``, takes its bodies); a ``map`` of
Content-Length (numeric ranges written as regular expressions) picks it, requests without
a body go to the first and chunked ones to the last; ``client_max_body_size`` is the
largest limit (413; NGINX buffers and counts chunked bodies too). Timeouts: NGINX sets
``proxy_read_timeout``/``proxy_send_timeout`` per location, not per server, so the one
location waits the longest per-attempt timeout of all backends (their own ``timeout``,
else ``timeouts.request``; a backend with a shorter one is waited on as long, noted);
``proxy_next_upstream_timeout`` is ``timeouts.total`` stretched to it.
"""

from __future__ import annotations

import math
from string import Template
from typing import Any

from deployer.router.manifest import Manifest
from deployer_router.render import Rendered, plain_http, seconds, tier_ranks
from deployer_router.render.limits import (
    BodyClass,
    body_classes,
    grouping_note,
    longest_timeout,
    timeout_note,
    total_timeout,
)
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
    if len(tier_ranks(endpoints)) > 2:
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
    name = manifest.name.replace("-", "_")
    classes = body_classes(manifest, endpoints)
    upstreams = [_upstream(manifest, body, _upstream_name(name, body)) for body in classes]
    timeout = timeout_note(manifest, endpoints, "the one NGINX location")
    if timeout is not None:
        notes.append(timeout)
    if len(classes) > 1:
        notes.append(grouping_note(classes))
    names = [f'        "{e.address}" "{e.name}";' for e in endpoints]
    next_upstream: list[str] = []
    for condition in manifest.retries.retry_on:
        for keyword in _NEXT.get(condition, []):
            if keyword not in next_upstream:
                next_upstream.append(keyword)
    next_upstream.append("non_idempotent")
    text = Template(read_template("nginx.conf.tmpl")).substitute(
        name=name,
        workers=workers,
        pid=pid,
        temp=temp,
        error_log=error_log,
        access_log=access_log,
        max_body=_size(classes[-1].limit),
        header_timeout=seconds(limits.header_timeout),
        idle_timeout=seconds(limits.idle_timeout),
        body_timeout=seconds(limits.body_timeout),
        header_buffers=max(2, math.ceil(limits.header_bytes / limits.url_bytes)),
        header_buffer_size=f"{math.ceil(limits.url_bytes / 1024)}k",
        worker_connections=2 * limits.connections,
        upstreams="\n".join(upstreams),
        group_map=_group_map(name, classes),
        upstream=name if len(classes) == 1 else "$deployer_upstream",
        names="\n".join(names),
        listen=listen or f"{manifest.listen.host}:{manifest.listen.port}",
        connect_timeout=seconds(manifest.timeouts.connect),
        request_timeout=seconds(longest_timeout(manifest, endpoints)),
        total_timeout=seconds(total_timeout(manifest, endpoints)),
        next_upstream=" ".join(next_upstream),
        attempts=manifest.retries.attempts,
    )
    return Rendered("nginx", text, "nginx.conf", skipped, notes)


def _size(limit: int) -> str:
    """Bytes as NGINX writes a size: kilobytes when whole ('2048k'), else bytes."""
    return f"{limit // 1024}k" if limit % 1024 == 0 else str(limit)


def _upstream_name(name: str, body: BodyClass) -> str:
    """The first class keeps the historical ``NAME``; others name their limit."""
    return name if body.first else f"{name}_upto_{body.limit}"


def _upstream(manifest: Manifest, body: BodyClass, upstream: str) -> str:
    """One ``upstream`` block: the servers of a body class, tiers ranked within it."""
    passive = manifest.health.passive
    ranks = tier_ranks(list(body.endpoints))
    lines = [f"    upstream {upstream} {{"]
    if manifest.policy == "least-latency":
        lines.append("        least_conn;")
    for endpoint in body.endpoints:
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
        lines.append(" ".join(words) + ";")
    lines += ["        keepalive 64;", "    }"]
    return "\n".join(lines) + "\n"


def _group_map(name: str, classes: list[BodyClass]) -> str:
    """The ``map`` choosing a body class's upstream from Transfer-Encoding and
    Content-Length ("" when there is one class): no body → the first, each Content-Length
    → the smallest class that takes it, anything else (chunked) → the last."""
    if len(classes) == 1:
        return ""
    lines = [
        '    map "$http_transfer_encoding:$content_length" $deployer_upstream {',
        f"        default {_upstream_name(name, classes[-1])};",
        f'        "~^:$" {_upstream_name(name, classes[0])};',
    ]
    for body in classes[:-1]:
        lines.append(f'        "~^:0*{at_most(body.limit)}$" {_upstream_name(name, body)};')
    lines.append("    }")
    return "\n".join(lines) + "\n\n"


def at_most(limit: int) -> str:
    """A regular expression (PCRE and Python) matching the decimal numbers 0..``limit``
    written without leading zeros, and shorter ones with them."""
    digits = str(limit)
    size = len(digits)
    choices = [] if size == 1 else ["[0-9]"] if size == 2 else [f"[0-9]{{1,{size - 1}}}"]
    for position, digit in enumerate(digits):
        if digit != "0":
            rest = size - position - 1
            tail = "" if rest == 0 else "[0-9]" if rest == 1 else f"[0-9]{{{rest}}}"
            lower = "0" if digit == "1" else f"[0-{int(digit) - 1}]"
            choices.append(f"{digits[:position]}{lower}{tail}")
    choices.append(digits)
    return "(?:" + "|".join(choices) + ")"
