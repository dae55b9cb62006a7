"""router.yaml as an Envoy static configuration, and a structural check of it.

Envoy maps closest of the three engines: tiers → endpoint ``priority`` (with the
overprovisioning factor raised so a tier takes all traffic while any of its endpoints is
healthy, and panic routing off, as the built-in router does); weights →
``load_balancing_weight``; active health → ``health_checks``; passive ejection →
``outlier_detection``; retries → the route's ``retry_policy`` (another host each time)
with the cluster's ``retry_budget``; ``least-latency`` → ``LEAST_REQUEST``. Limits: URL
and headers → ``max_request_headers_kb``, header count → ``max_headers_count``, the
header timeout → ``request_headers_timeout``, head and body → ``request_timeout``, the
body → the buffer filter's ``max_request_bytes`` (413; the built-in router buffers too).

Per-backend limits (``render.limits``): one cluster per body class (the backends whose
``max_body_mb``, capped by ``limits.body_mb``, takes its bodies) and one route to it,
matched on ``content-length`` with a ``range_match``; the last route takes every other
request: bodies up to the largest limit, and requests without Content-Length (no body, or
chunked: Envoy removes Transfer-Encoding before routing, so they cannot be told apart).
``max_request_bytes`` is the largest limit, so a chunked body is capped there too. Each
route's ``per_try_timeout`` is the longest per-attempt timeout of its cluster's backends
(their own ``timeout``, else ``timeouts.request``: Envoy times routes, not hosts, so a
backend with a shorter own timeout is waited on as long, noted) and its ``timeout`` is
``timeouts.total`` stretched to it.

Envoy cannot be installed on the machine the tests run on, so the rendered file is not
run there: ``validate`` parses it back and checks the fields and types Envoy requires for
what we render (see README). Run ``envoy --mode validate -c envoy.yaml`` where Envoy is.
"""

from __future__ import annotations

import ipaddress
import math
import re
from string import Template
from typing import Any

import yaml

from deployer.router.manifest import Manifest
from deployer_router.render import Rendered, health_path, plain_http, tier_ranks
from deployer_router.render.limits import (
    BodyClass,
    body_classes,
    class_notes,
    longest_timeout,
    total_timeout,
)
from deployer_router.resources import read_template

HCM = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
    "HttpConnectionManager"
)
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
BUFFER = "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer"
MAX_HEADERS_KB = 8192  # Envoy's ceiling for max_request_headers_kb
PREVIOUS_HOSTS = (
    "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
)
OVERPROVISIONING = 100_000  # a tier keeps all traffic while 0.1% of it is healthy
_DURATION = re.compile(r"^\d+(\.\d{1,9})?s$")
_RETRY_ON = {
    "connect-failure": "connect-failure",
    "reset": "reset",
    "timeout": "reset",  # Envoy's "reset" covers read (per-try) timeouts
    "5xx": "5xx",
    "502": "retriable-status-codes",
    "503": "retriable-status-codes",
    "504": "retriable-status-codes",
    "429": "retriable-status-codes",
}
# envoy.config.route.v3.HeaderMatcher (route_components.proto): its fields and the
# header_match_specifier oneof
HEADER_MATCHER_FIELDS = {
    "name",
    "exact_match",
    "safe_regex_match",
    "range_match",
    "present_match",
    "prefix_match",
    "suffix_match",
    "contains_match",
    "string_match",
    "invert_match",
    "treat_missing_header_as_empty",
}
HEADER_MATCH_SPECIFIERS = HEADER_MATCHER_FIELDS - {
    "name",
    "invert_match",
    "treat_missing_header_as_empty",
}
LB_POLICIES = {"ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "RING_HASH", "MAGLEV"}


def duration(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") + "s"


def render(manifest: Manifest, *, admin_port: int = 9901, **_: Any) -> Rendered:
    endpoints, skipped = plain_http(manifest)
    notes = ["Envoy is not installed on the test machine: this file is checked structurally"]
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", manifest.name)
    text = Template(read_template("envoy.yaml.tmpl")).substitute(
        name=name,
        host=manifest.listen.host,
        port=manifest.listen.port,
        admin_port=admin_port,
    )
    doc = yaml.safe_load(text)
    classes = body_classes(manifest, endpoints)
    routes = [
        _route(manifest, body, _cluster_name(name, body), last=body is classes[-1])
        for body in classes
    ]
    listener = doc["static_resources"]["listeners"][0]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["route_config"]["virtual_hosts"][0]["routes"] = routes
    limits = manifest.limits
    hcm["max_request_headers_kb"] = min(
        MAX_HEADERS_KB, math.ceil((limits.url_bytes + limits.header_bytes) / 1024)
    )
    hcm["common_http_protocol_options"] = {
        "max_headers_count": limits.header_count,
        "idle_timeout": duration(limits.idle_timeout),
    }
    hcm["request_headers_timeout"] = duration(limits.header_timeout)
    hcm["request_timeout"] = duration(limits.header_timeout + limits.body_timeout)
    hcm["http_filters"].insert(
        0,
        {
            "name": "envoy.filters.http.buffer",
            "typed_config": {
                "@type": BUFFER,
                "max_request_bytes": min(classes[-1].limit, 2**32 - 1),
            },
        },
    )
    notes.append(
        "limits: connections are not rendered (use Envoy's overload manager, "
        "global_downstream_max_connections); Envoy streams answers (response_mb does not apply)"
    )
    notes.extend(class_notes(manifest, classes, "route"))
    if len(classes) > 1:
        notes.append(
            "body limits: requests without a Content-Length (no body, or chunked: Envoy drops "
            "Transfer-Encoding before routing) go to the backends that take the largest bodies"
        )
    path = health_path(endpoints, notes)
    clusters = []
    for body in classes:
        cluster, drained = _cluster(manifest, body, _cluster_name(name, body), path)
        clusters.append(cluster)
        skipped.extend(d for d in drained if d not in skipped)
    notes.append(
        "Envoy's retry budget counts retries in flight (min_retry_concurrency), not per second"
    )
    if manifest.busy_poll.enabled:
        notes.append("busy_poll is not rendered: Envoy has no busy-polling setting")
    doc["static_resources"]["clusters"] = clusters
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    rendered = header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
    problems = validate(yaml.safe_load(rendered))
    if problems:  # a bug in this renderer, not in the manifest
        raise AssertionError("rendered Envoy config is invalid: " + "; ".join(problems))
    return Rendered("envoy", rendered, "envoy.yaml", skipped, notes)


def _cluster_name(name: str, body: BodyClass) -> str:
    """The first class keeps the historical ``NAME``; others name their limit."""
    return name if body.first else f"{name}_upto_{body.limit}"


def _route(manifest: Manifest, body: BodyClass, cluster: str, *, last: bool) -> dict[str, Any]:
    """The route to a body class's cluster: on its Content-Length range, or every other
    request (no Content-Length) for the last class; timeouts from its backends."""
    retries = manifest.retries
    conditions = []
    for condition in retries.retry_on:
        keyword = _RETRY_ON[condition]
        if keyword not in conditions:
            conditions.append(keyword)
    statuses = sorted({int(c) for c in retries.retry_on if c.isdigit()})
    retry_policy: dict[str, Any] = {
        "retry_on": ",".join(conditions),
        "num_retries": retries.attempts - 1,
        "per_try_timeout": duration(longest_timeout(manifest, body.endpoints)),
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {"@type": PREVIOUS_HOSTS},
            }
        ],
        "host_selection_retry_max_attempts": 5,
    }
    if statuses:
        retry_policy["retriable_status_codes"] = statuses
    match: dict[str, Any] = {"prefix": "/"}
    if not last:  # Int64Range: [start, end)
        size = {"start": body.above + 1, "end": body.limit + 1}
        match["headers"] = [{"name": "content-length", "range_match": size}]
    return {
        "match": match,
        "route": {
            "cluster": cluster,
            "timeout": duration(total_timeout(manifest, body.endpoints)),
            "retry_policy": retry_policy,
        },
        "response_headers_to_add": [
            {"header": {"key": "x-deployer-backend", "value": "%UPSTREAM_HOST%"}}
        ],
    }


def _cluster(
    manifest: Manifest, body: BodyClass, name: str, path: str | None
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A body class's cluster (tiers ranked within it), and the drained backends left out."""
    ranks = tier_ranks(list(body.endpoints))
    drained: list[tuple[str, str]] = []
    by_priority: dict[int, list[dict[str, Any]]] = {}
    for endpoint in body.endpoints:
        if endpoint.config.weight == 0:
            drained.append((endpoint.name, "weight 0 (drained)"))
            continue
        by_priority.setdefault(ranks[endpoint.config.tier], []).append(
            {
                "endpoint": {
                    "address": {
                        "socket_address": {"address": endpoint.host, "port_value": endpoint.port}
                    },
                    "hostname": endpoint.name,
                },
                "load_balancing_weight": endpoint.config.weight,
            }
        )
    groups = [by_priority[p] for p in sorted(by_priority)]  # priorities 0, 1, 2 ... in order
    static = all(_is_ip(e.host) for e in body.endpoints)
    passive = manifest.health.passive
    retries = manifest.retries
    cluster: dict[str, Any] = {
        "name": name,
        "type": "STATIC" if static else "STRICT_DNS",
        "connect_timeout": duration(manifest.timeouts.connect),
        "lb_policy": "LEAST_REQUEST" if manifest.policy == "least-latency" else "ROUND_ROBIN",
        "common_lb_config": {"healthy_panic_threshold": {"value": 0.0}},
        "load_assignment": {
            "cluster_name": name,
            "policy": {"overprovisioning_factor": OVERPROVISIONING},
            "endpoints": [{"priority": p, "lb_endpoints": g} for p, g in enumerate(groups)],
        },
        "outlier_detection": {
            "consecutive_5xx": passive.consecutive_failures,
            "consecutive_gateway_failure": passive.consecutive_failures,
            "interval": "1s",
            "base_ejection_time": duration(passive.base_ejection),
            "max_ejection_time": duration(passive.max_ejection),
            "max_ejection_percent": 100,
        },
        "circuit_breakers": {
            "thresholds": [
                {
                    "priority": "DEFAULT",
                    "retry_budget": {
                        "budget_percent": {"value": float(retries.budget_percent)},
                        "min_retry_concurrency": max(1, round(retries.min_per_second)),
                    },
                }
            ]
        },
    }
    if path is not None:
        active = manifest.health.active
        cluster["health_checks"] = [
            {
                "timeout": duration(active.timeout),
                "interval": duration(active.interval),
                "healthy_threshold": active.healthy_threshold,
                "unhealthy_threshold": active.unhealthy_threshold,
                "http_health_check": {"path": path},
            }
        ]
    return cluster, drained


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# -- structural validation -------------------------------------------------------------


def _header_problems(header: Any, where: str) -> list[str]:
    """A route's HeaderMatcher: known fields, a name, at most one match specifier, and an
    Int64Range (``start`` < ``end``, integers) for ``range_match``."""
    if not isinstance(header, dict):
        return [f"{where}: expected a mapping"]
    problems = [
        f"{where}.{key}: unknown field" for key in header if key not in HEADER_MATCHER_FIELDS
    ]
    if not isinstance(header.get("name"), str) or not header.get("name"):
        problems.append(f"{where}.name: required")
    specifiers = [key for key in header if key in HEADER_MATCH_SPECIFIERS]
    if len(specifiers) > 1:
        problems.append(f"{where}: one match specifier only (got {', '.join(specifiers)})")
    if "range_match" in header:
        bounds = header["range_match"]
        start = bounds.get("start") if isinstance(bounds, dict) else None
        end = bounds.get("end") if isinstance(bounds, dict) else None
        if not isinstance(bounds, dict) or set(bounds) - {"start", "end"}:
            problems.append(f"{where}.range_match: expected an Int64Range (start, end)")
        elif not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
            problems.append(f"{where}.range_match: start and end must be integers")
        elif start >= end:  # type: ignore[operator]
            problems.append(f"{where}.range_match: start must be below end (end is exclusive)")
    return problems


def validate(doc: Any) -> list[str]:
    """Problems with an Envoy v3 static bootstrap, for the fields this renderer writes:
    presence, types, enums, durations, and that routes name existing clusters."""
    problems: list[str] = []

    def need(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
        if not isinstance(obj, dict) or key not in obj:
            problems.append(f"{where}.{key}: required")
            return None
        value = obj[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            problems.append(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}")
            return None
        return value

    def check_duration(obj: Any, key: str, where: str, required: bool = True) -> None:
        if not isinstance(obj, dict) or (key not in obj and not required):
            return
        value = need(obj, key, str, where)
        if value is not None and not _DURATION.match(value):
            problems.append(f"{where}.{key}: expected a duration like '1.5s' (got {value!r})")

    def check_address(obj: Any, where: str) -> None:
        socket = need(
            need(obj, "address", dict, where) or {}, "socket_address", dict, f"{where}.address"
        )
        if socket is not None:
            need(socket, "address", str, f"{where}.address.socket_address")
            port = need(socket, "port_value", int, f"{where}.address.socket_address")
            if port is not None and not 0 < port < 65536:
                problems.append(f"{where}.address.socket_address.port_value: out of range")

    if not isinstance(doc, dict):
        return ["the document is not a mapping"]
    static = need(doc, "static_resources", dict, "")
    if static is None:
        return problems
    clusters = need(static, "clusters", list, "static_resources") or []
    names = set()
    for i, cluster in enumerate(clusters):
        where = f"static_resources.clusters[{i}]"
        name = need(cluster, "name", str, where)
        names.add(name)
        kind = need(cluster, "type", str, where)
        if kind is not None and kind not in {"STATIC", "STRICT_DNS", "LOGICAL_DNS", "EDS"}:
            problems.append(f"{where}.type: unknown discovery type {kind!r}")
        check_duration(cluster, "connect_timeout", where)
        policy = need(cluster, "lb_policy", str, where)
        if policy is not None and policy not in LB_POLICIES:
            problems.append(f"{where}.lb_policy: unknown {policy!r}")
        assignment = need(cluster, "load_assignment", dict, where)
        if assignment is not None:
            if assignment.get("cluster_name") != name:
                problems.append(f"{where}.load_assignment.cluster_name: must equal the name")
            groups = need(assignment, "endpoints", list, f"{where}.load_assignment") or []
            priorities = [g.get("priority", 0) for g in groups if isinstance(g, dict)]
            if priorities != list(range(len(priorities))):
                problems.append(f"{where}: endpoint priorities must be 0, 1, 2 ... in order")
            for j, group in enumerate(groups):
                gwhere = f"{where}.load_assignment.endpoints[{j}]"
                for k, lb in enumerate(need(group, "lb_endpoints", list, gwhere) or []):
                    ewhere = f"{gwhere}.lb_endpoints[{k}]"
                    check_address(need(lb, "endpoint", dict, ewhere) or {}, f"{ewhere}.endpoint")
                    weight = lb.get("load_balancing_weight", 1) if isinstance(lb, dict) else 1
                    if not isinstance(weight, int) or weight < 1:
                        problems.append(f"{ewhere}.load_balancing_weight: must be >= 1")
        for k, check in enumerate(cluster.get("health_checks", []) or []):
            cwhere = f"{where}.health_checks[{k}]"
            check_duration(check, "timeout", cwhere)
            check_duration(check, "interval", cwhere)
            need(check, "healthy_threshold", int, cwhere)
            need(check, "unhealthy_threshold", int, cwhere)
            http = need(check, "http_health_check", dict, cwhere)
            if http is not None:
                path = need(http, "path", str, f"{cwhere}.http_health_check")
                if path is not None and not path.startswith("/"):
                    problems.append(f"{cwhere}.http_health_check.path: must start with '/'")
        outlier = cluster.get("outlier_detection")
        if outlier is not None:
            for key in ("interval", "base_ejection_time", "max_ejection_time"):
                check_duration(outlier, key, f"{where}.outlier_detection", required=False)
        for k, threshold in enumerate(
            (cluster.get("circuit_breakers") or {}).get("thresholds", [])
        ):
            budget = threshold.get("retry_budget") if isinstance(threshold, dict) else None
            if budget is not None:
                percent = (budget.get("budget_percent") or {}).get("value")
                if not isinstance(percent, float) or not 0 <= percent <= 100:
                    problems.append(
                        f"{where}.circuit_breakers.thresholds[{k}].retry_budget.budget_percent"
                        ".value: expected a number 0-100"
                    )
    for i, listener in enumerate(need(static, "listeners", list, "static_resources") or []):
        where = f"static_resources.listeners[{i}]"
        need(listener, "name", str, where)
        check_address(listener, where)
        for j, chain in enumerate(need(listener, "filter_chains", list, where) or []):
            for k, item in enumerate(
                need(chain, "filters", list, f"{where}.filter_chains[{j}]") or []
            ):
                fwhere = f"{where}.filter_chains[{j}].filters[{k}]"
                need(item, "name", str, fwhere)
                typed = need(item, "typed_config", dict, fwhere)
                if typed is None or typed.get("@type") != HCM:
                    continue
                need(typed, "stat_prefix", str, f"{fwhere}.typed_config")
                filters = need(typed, "http_filters", list, f"{fwhere}.typed_config") or []
                last = filters[-1] if filters else {}
                if (last.get("typed_config") or {}).get("@type") != ROUTER:
                    problems.append(f"{fwhere}: the last http filter must be the router")
                routes_config = need(typed, "route_config", dict, f"{fwhere}.typed_config")
                for v, host in enumerate((routes_config or {}).get("virtual_hosts", [])):
                    vwhere = f"{fwhere}.typed_config.route_config.virtual_hosts[{v}]"
                    need(host, "domains", list, vwhere)
                    for r, route in enumerate(need(host, "routes", list, vwhere) or []):
                        rwhere = f"{vwhere}.routes[{r}]"
                        match = need(route, "match", dict, rwhere)
                        for h, header in enumerate((match or {}).get("headers", []) or []):
                            problems += _header_problems(header, f"{rwhere}.match.headers[{h}]")
                        action = need(route, "route", dict, rwhere) or {}
                        cluster_name = action.get("cluster")
                        if cluster_name not in names:
                            problems.append(f"{rwhere}.route.cluster: no cluster {cluster_name!r}")
                        check_duration(action, "timeout", f"{rwhere}.route", required=False)
                        policy = action.get("retry_policy")
                        if policy is not None:
                            pwhere = f"{rwhere}.route.retry_policy"
                            need(policy, "retry_on", str, pwhere)
                            need(policy, "num_retries", int, pwhere)
                            check_duration(policy, "per_try_timeout", pwhere, required=False)
    admin = doc.get("admin")
    if admin is not None:
        check_address(admin, "admin")
    return problems
