"""Renderers: what each engine gets, what is skipped and why; configs checked by the real
``haproxy -c`` and ``nginx -t``; Envoy's structurally (Envoy cannot be installed here)."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from deployer.errors import UsageError
from deployer.router.manifest import parse
from deployer_router.render import FORMATS, render
from deployer_router.render import envoy as envoy_module
from deployer_router.render import kubernetes as kubernetes_module

TEXT = """\
name: iris
listen: {host: 127.0.0.1, port: 18080}
retries: {attempts: 3, retry_on: [connect-failure, reset, timeout, "429", 5xx], budget_percent: 25}
backends:
  - {name: k8s-a, provider: kubernetes, url: "http://10.0.0.1:8080", weight: 3}
  - {name: k8s-b, provider: kubernetes, url: "http://10.0.0.2:8080", weight: 1}
  - {name: local, provider: local, url: "http://127.0.0.1:8081", tier: 2,
     health: {path: /v2/health/ready}}
  - {name: aws, provider: sagemaker, region: eu-west-1, auth: sigv4,
     url: "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/iris/invocations"}
  - {name: tls, url: "https://iris.example.com"}
"""


@pytest.fixture
def manifest():  # type: ignore[no-untyped-def]
    return parse(TEXT)


def test_plain_http_only_and_the_others_named(manifest) -> None:  # type: ignore[no-untyped-def]
    for fmt in ("haproxy", "nginx", "envoy"):
        rendered = render(manifest, fmt)
        skipped = dict(rendered.skipped)
        assert set(skipped) == {"aws", "tls"}, fmt
        assert "sigv4 signing, which only the built-in router does" in skipped["aws"]
        assert "https" in skipped["tls"]
    with pytest.raises(UsageError, match="no plain-HTTP backend"):
        render(parse(TEXT.split("backends:")[0] + "backends: []\n"), "haproxy")
    with pytest.raises(UsageError, match="unknown format"):
        render(manifest, "traefik")
    assert FORMATS == ("haproxy", "nginx", "envoy", "kubernetes", "route53")


@pytest.mark.skipif(
    not shutil.which("haproxy") and not Path("/usr/sbin/haproxy").exists(),
    reason="haproxy is not installed",
)
def test_haproxy(manifest, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rendered = render(manifest, "haproxy")
    text = rendered.text
    assert "server k8s-a 10.0.0.1:8080 weight 3 check" in text
    assert "server local 127.0.0.1:8081 weight 1 check" in text
    assert [line.split()[1] for line in text.splitlines() if line.endswith(" backup")] == ["local"]
    assert "retries 2" in text and "option redispatch 1" in text
    assert "retry-on conn-failure empty-response junk-response response-timeout 500" in text
    assert "http-check send meth GET uri /ping" in text
    assert "observe layer7 error-limit 3 on-error mark-down" in text
    assert any("429" in n for n in rendered.notes)
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    check = subprocess.run([haproxy, "-c", "-f", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.skipif(
    not shutil.which("nginx") and not Path("/usr/sbin/nginx").exists(),
    reason="nginx is not installed",
)
def test_nginx(manifest, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rendered = render(manifest, "nginx", pid=str(tmp_path / "pid"), temp=str(tmp_path))
    text = rendered.text
    assert "server 10.0.0.1:8080 weight=3 max_fails=3 fail_timeout=5s;" in text
    assert "server 127.0.0.1:8081 weight=1 max_fails=3 fail_timeout=5s backup;" in text
    assert "proxy_next_upstream error invalid_header timeout http_429 http_500" in text
    assert "non_idempotent;" in text and "proxy_next_upstream_tries 3;" in text
    assert any("no active health checks" in n for n in rendered.notes)
    path = tmp_path / "nginx.conf"
    path.write_text(text)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    check = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-e", "stderr", "-c", str(path)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_envoy_structure(manifest) -> None:  # type: ignore[no-untyped-def]
    rendered = render(manifest, "envoy")
    doc = yaml.safe_load(rendered.text)
    assert envoy_module.validate(doc) == []
    cluster = doc["static_resources"]["clusters"][0]
    groups = cluster["load_assignment"]["endpoints"]
    assert [g["priority"] for g in groups] == [0, 1]  # tiers 0 and 2, renumbered
    weights = [e["load_balancing_weight"] for e in groups[0]["lb_endpoints"]]
    assert weights == [3, 1]
    assert cluster["common_lb_config"]["healthy_panic_threshold"]["value"] == 0.0
    assert cluster["circuit_breakers"]["thresholds"][0]["retry_budget"]["budget_percent"] == {
        "value": 25.0
    }
    route = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"
    ]["route_config"]["virtual_hosts"][0]["routes"][0]["route"]
    assert route["retry_policy"]["num_retries"] == 2
    assert route["retry_policy"]["retriable_status_codes"] == [429]
    # the checker catches what Envoy would refuse
    broken = copy.deepcopy(doc)
    broken["static_resources"]["clusters"][0]["connect_timeout"] = "2 seconds"
    broken["static_resources"]["clusters"][0]["lb_policy"] = "FASTEST"
    del broken["static_resources"]["listeners"][0]["address"]
    route_of = broken["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    route_of["typed_config"]["route_config"]["virtual_hosts"][0]["routes"][0]["route"][
        "cluster"
    ] = "nope"
    problems = envoy_module.validate(broken)
    assert any("connect_timeout: expected a duration" in p for p in problems)
    assert any("lb_policy: unknown 'FASTEST'" in p for p in problems)
    assert any("listeners[0].address: required" in p for p in problems)
    assert any("no cluster 'nope'" in p for p in problems)


def test_kubernetes(manifest) -> None:  # type: ignore[no-untyped-def]
    rendered = render(
        manifest,
        "kubernetes",
        image="registry.local/deployer-router:1",
        namespace="models",
        replicas=3,
    )
    docs = list(yaml.safe_load_all(rendered.text))
    assert kubernetes_module.validate(docs) == []
    kinds = [d["kind"] for d in docs]
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    ]
    config = parse(docs[0]["data"]["router.yaml"])
    assert (config.listen.host, config.listen.port) == ("0.0.0.0", 8080)
    assert len(config.backends) == 5  # the router signs: nothing is skipped
    pod = docs[1]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "registry.local/deployer-router:1"
    assert container["command"][-1] == "deployer_router"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert docs[3]["spec"]["minReplicas"] == 3
    assert all(d["metadata"]["namespace"] == "models" for d in docs)
    assert any("sigv4" in n for n in rendered.notes)
    default = render(manifest, "kubernetes")
    assert "image: deployer-router:" in default.text


def test_route53_failover_and_weighted() -> None:
    text = """\
name: iris
backends:
  - {name: eu, url: "http://eu.iris.example.com", tier: 0, weight: 2}
  - {name: eu2, url: "http://eu2.iris.example.com", tier: 0}
  - {name: us, url: "http://us.iris.example.com", tier: 1}
"""
    rendered = render(parse(text), "route53", dns_name="api.example.com", hosted_zone_id="Z1")
    document = json.loads(rendered.text)
    records = [c["ResourceRecordSet"] for c in document["ChangeBatch"]["Changes"]]
    primary = next(r for r in records if r.get("Failover") == "PRIMARY")
    secondary = next(r for r in records if r.get("Failover") == "SECONDARY")
    assert primary["AliasTarget"] == {
        "HostedZoneId": "Z1",
        "DNSName": "tier0.api.example.com.",
        "EvaluateTargetHealth": True,
    }
    assert secondary["ResourceRecords"] == [{"Value": "us.iris.example.com"}]
    assert secondary["HealthCheckId"] == "{{health_check_id:us}}"
    weighted = [r for r in records if r["Name"] == "tier0.api.example.com."]
    assert {r["SetIdentifier"]: r["Weight"] for r in weighted} == {"eu": 2, "eu2": 1}
    assert {c["HealthCheckConfig"]["FullyQualifiedDomainName"] for c in document["HealthChecks"]}
    one_tier = render(parse(text.replace("tier: 1", "tier: 0")), "route53", dns_name="api.x")
    assert {
        r["ResourceRecordSet"].get("Weight")
        for r in json.loads(one_tier.text)["ChangeBatch"]["Changes"]
    } == {1, 2}
    with pytest.raises(UsageError, match="--dns-name"):
        render(parse(text), "route53")
