"""Per-backend limits in the rendered configs (structure): body classes, the routing to
them, each group's timeout; the HAProxy and NGINX files checked by ``haproxy -c`` and
``nginx -t``, Envoy's by the structural check (HeaderMatcher fields from Envoy's
route_components.proto). test_engines.py runs HAProxy and NGINX on them for real."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from deployer.router.manifest import Manifest, parse
from deployer_router.render import envoy as envoy_module
from deployer_router.render import plain_http, render
from deployer_router.render.limits import body_classes, body_limit, request_timeout
from deployer_router.render.nginx import at_most

MB = 1024 * 1024
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

# as push writes them: Vertex 60 s / 1.5 MB, Azure 180 s (and 4 MB here), a cluster
# backend with neither (the router's 30 s and 64 MB)
TEXT = """\
name: iris
timeouts: {request: 30, total: 60}
backends:
  - {name: k8s, provider: kubernetes, url: "http://10.0.0.1:8080", weight: 3}
  - {name: vertex, url: "http://10.0.0.2:8080", max_body_mb: 1.5, timeout: 60}
  - {name: azure, url: "http://10.0.0.3:8080", max_body_mb: 4, timeout: 180}
  - {name: spare, provider: local, url: "http://127.0.0.1:8081", tier: 1}
"""
# every backend under the router's limit: nothing may take limits.body_mb
ALL_LIMITED = """\
name: iris
backends:
  - {name: vertex, url: "http://10.0.0.2:8080", max_body_mb: 1.5}
  - {name: vertex2, url: "http://10.0.0.4:8080", max_body_mb: 1.5}
"""
NO_OWN_LIMITS = """\
name: iris
backends:
  - {name: a, url: "http://10.0.0.1:8080"}
  - {name: b, url: "http://10.0.0.2:8080", max_body_mb: 100}
"""


@pytest.fixture
def manifest() -> Manifest:
    return parse(TEXT)


def test_body_classes_and_effective_limits(manifest: Manifest) -> None:
    endpoints, _ = plain_http(manifest)
    classes = body_classes(manifest, endpoints)
    assert [(c.above, c.limit) for c in classes] == [
        (-1, int(1.5 * MB)),
        (int(1.5 * MB), 4 * MB),
        (4 * MB, 64 * MB),
    ]
    assert [[e.name for e in c.endpoints] for c in classes] == [
        ["k8s", "vertex", "azure", "spare"],
        ["k8s", "azure", "spare"],
        ["k8s", "spare"],
    ]
    k8s, vertex, azure, _ = (e.config for e in endpoints)
    assert [request_timeout(c, manifest) for c in (k8s, vertex, azure)] == [30, 60, 180]
    # a backend's own limit over the router's is capped by it
    loose = parse(NO_OWN_LIMITS)
    assert {body_limit(b, loose) for b in loose.backends} == {64 * MB}
    assert len(body_classes(loose, plain_http(loose)[0])) == 1


def test_at_most_matches_exactly_the_numbers_up_to_the_limit() -> None:
    for limit in [0, 1, 9, 10, 99, 100, 1000, 1024, 1572864, 4194304, 67108864, 10**9 + 7]:
        pattern = re.compile(f"^0*{at_most(limit)}$")
        probes = {0, 1, 9, 10, 99, 100, limit, limit * 10, limit // 10}
        probes |= {limit + d for d in range(-120, 121) if limit + d >= 0}
        probes |= {int("9" * n) for n in range(1, 12)} | {10**n for n in range(12)}
        for value in probes:
            assert bool(pattern.match(str(value))) == (value <= limit), (limit, value)
            assert bool(pattern.match(f"00{value}")) == (value <= limit), (limit, value)
        assert not pattern.match(f"{limit}x") and not pattern.match("")


def test_haproxy_sections_per_body_class(manifest: Manifest, tmp_path: Path) -> None:
    rendered = render(manifest, "haproxy")
    text = rendered.text
    sections = _haproxy_sections(text)
    assert list(sections) == ["iris_backends", "iris_upto_4194304", "iris_upto_67108864"]
    servers = {n: re.findall(r"^\s+server (\S+)", body, re.M) for n, body in sections.items()}
    assert servers == {
        "iris_backends": ["k8s", "vertex", "azure", "spare"],
        "iris_upto_4194304": ["k8s", "azure", "spare"],
        "iris_upto_67108864": ["k8s", "spare"],
    }
    timeouts = {n: re.findall(r"timeout server (\S+)", b) for n, b in sections.items()}
    assert timeouts == {
        "iris_backends": ["180s"],
        "iris_upto_4194304": ["180s"],
        "iris_upto_67108864": ["30s"],
    }
    front = text[text.index("frontend iris") : text.index("\nbackend iris_backends")]
    assert "deny deny_status 413 if { req.hdr_val(content-length) gt 67108864 }" in front
    uses = re.findall(r"use_backend (\S+) if (.+)", front)
    assert uses == [
        ("iris_upto_67108864", "{ req.hdr_val(content-length) gt 4194304 }"),
        ("iris_upto_4194304", "{ req.hdr_val(content-length) gt 1572864 }"),
        ("iris_upto_67108864", "{ req.hdr(transfer-encoding) -m found }"),
    ]
    assert "default_backend iris_backends" in front
    assert "timeout client 180s" in text  # total stretched to the longest backend timeout
    assert "return status 411" not in text  # k8s takes the router's limit
    assert any("vertex (60s)" in n and "180s" in n for n in rendered.notes)
    assert any(n.startswith("body limits:") for n in rendered.notes)
    _haproxy_check(text, tmp_path)


def test_haproxy_every_backend_limited(tmp_path: Path) -> None:
    text = render(parse(ALL_LIMITED), "haproxy").text
    assert list(_haproxy_sections(text)) == ["iris_backends"]
    assert f"req.hdr_val(content-length) gt {int(1.5 * MB)} }}" in text
    assert "return status 411" in text and "use_backend" not in text
    _haproxy_check(text, tmp_path)
    plain = render(parse(NO_OWN_LIMITS), "haproxy").text  # as before per-backend limits
    assert list(_haproxy_sections(plain)) == ["iris_backends"]
    assert "use_backend" not in plain and "411" not in plain
    assert f"gt {64 * MB} }}" in plain
    _haproxy_check(plain, tmp_path)


def test_nginx_upstreams_per_body_class(manifest: Manifest, tmp_path: Path) -> None:
    rendered = render(manifest, "nginx", pid=str(tmp_path / "pid"), temp=str(tmp_path))
    text = rendered.text
    upstreams = dict(re.findall(r"upstream (\S+) \{\n(.*?)\n    \}", text, re.S))
    members = {n: re.findall(r"server (\S+)", body) for n, body in upstreams.items()}
    assert members == {
        "iris": ["10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080", "127.0.0.1:8081"],
        "iris_upto_4194304": ["10.0.0.1:8080", "10.0.0.3:8080", "127.0.0.1:8081"],
        "iris_upto_67108864": ["10.0.0.1:8080", "127.0.0.1:8081"],
    }
    group_map = text[text.index('map "$http_transfer_encoding') :]
    group_map = group_map[: group_map.index("}\n")]
    entries = re.findall(r'^\s+("[^"]*"|default) (\S+);', group_map, re.M)
    assert [upstream for _, upstream in entries] == [
        "iris_upto_67108864",
        "iris",
        "iris",
        "iris_upto_4194304",
    ]
    # what the map picks for a request, read the way NGINX does: exact, then regexes in order
    regexes = [(re.compile(key.strip('"')[1:]), up) for key, up in entries if key != "default"]

    def pick(transfer_encoding: str, content_length: str) -> str:
        key = f"{transfer_encoding}:{content_length}"
        return str(next((up for rx, up in regexes if rx.search(key)), entries[0][1]))

    assert pick("", "") == "iris"  # no body
    assert pick("", str(int(1.5 * MB))) == "iris"
    assert pick("", str(int(1.5 * MB) + 1)) == "iris_upto_4194304"
    assert pick("", str(4 * MB)) == "iris_upto_4194304"
    assert pick("", str(4 * MB + 1)) == "iris_upto_67108864"
    assert pick("chunked", "") == "iris_upto_67108864"
    assert "proxy_pass http://$deployer_upstream;" in text
    assert "client_max_body_size 65536k;" in text
    assert "proxy_read_timeout 180s;" in text and "proxy_next_upstream_timeout 180s;" in text
    assert any("the one NGINX location waits 180s" in n for n in rendered.notes)
    _nginx_check(text, tmp_path)
    limited = render(parse(ALL_LIMITED), "nginx", pid=str(tmp_path / "pid"), temp=str(tmp_path))
    assert "proxy_pass http://iris;" in limited.text and 'map "$http' not in limited.text
    assert "client_max_body_size 1536k;" in limited.text
    _nginx_check(limited.text, tmp_path)


def test_envoy_clusters_and_routes_per_body_class(manifest: Manifest) -> None:
    rendered = render(manifest, "envoy")
    doc = yaml.safe_load(rendered.text)
    assert envoy_module.validate(doc) == []
    clusters = {c["name"]: c for c in doc["static_resources"]["clusters"]}
    hosts = {
        name: [
            e["endpoint"]["hostname"]
            for group in c["load_assignment"]["endpoints"]
            for e in group["lb_endpoints"]
        ]
        for name, c in clusters.items()
    }
    assert hosts == {
        "iris": ["k8s", "vertex", "azure", "spare"],
        "iris_upto_4194304": ["k8s", "azure", "spare"],
        "iris_upto_67108864": ["k8s", "spare"],
    }
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    routes = hcm["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    assert [r["route"]["cluster"] for r in routes] == list(clusters)
    assert [r["match"].get("headers") for r in routes] == [
        [{"name": "content-length", "range_match": {"start": 0, "end": int(1.5 * MB) + 1}}],
        [
            {
                "name": "content-length",
                "range_match": {"start": int(1.5 * MB) + 1, "end": 4 * MB + 1},
            }
        ],
        None,  # everything else: the largest bodies, and requests without Content-Length
    ]
    per_try = [r["route"]["retry_policy"]["per_try_timeout"] for r in routes]
    assert per_try == ["180s", "180s", "30s"]
    assert [r["route"]["timeout"] for r in routes] == ["180s", "180s", "60s"]
    buffer = hcm["typed_config"]["http_filters"][0]["typed_config"]
    assert buffer["max_request_bytes"] == 64 * MB
    limited = yaml.safe_load(render(parse(ALL_LIMITED), "envoy").text)
    assert envoy_module.validate(limited) == []
    limited_hcm = limited["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    assert limited_hcm["typed_config"]["http_filters"][0]["typed_config"][
        "max_request_bytes"
    ] == int(1.5 * MB)
    # the check refuses header matchers Envoy would refuse
    broken = copy.deepcopy(doc)
    first = broken["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    matchers = first["typed_config"]["route_config"]["virtual_hosts"][0]["routes"][0]["match"]
    matchers["headers"] = [
        {"name": "content-length", "range_match": {"start": 10, "end": 10}},
        {"name": "x", "present_match": True, "string_match": {"exact": "y"}},
        {"name": "content-length", "range": {"start": 0, "end": 1}},
        {"range_match": {"start": "0", "end": 1}},
    ]
    problems = envoy_module.validate(broken)
    assert any("headers[0].range_match: start must be below end" in p for p in problems)
    assert any("headers[1]: one match specifier only" in p for p in problems)
    assert any("headers[2].range: unknown field" in p for p in problems)
    assert any("headers[3].name: required" in p for p in problems)
    assert any("headers[3].range_match: start and end must be integers" in p for p in problems)


def _haproxy_sections(text: str) -> dict[str, str]:
    parts = re.split(r"^backend (\S+)\n", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _haproxy_check(text: str, tmp_path: Path) -> None:
    if not Path(HAPROXY).exists():
        pytest.skip("haproxy is not installed")
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    check = subprocess.run([HAPROXY, "-c", "-f", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def _nginx_check(text: str, tmp_path: Path) -> None:
    if not Path(NGINX).exists():
        pytest.skip("nginx is not installed")
    path = tmp_path / "nginx.conf"
    path.write_text(text)
    command = [NGINX, "-t", "-p", str(tmp_path), "-e", "stderr", "-c", str(path)]
    check = subprocess.run(command, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
