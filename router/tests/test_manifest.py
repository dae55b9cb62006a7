"""router.yaml: schema, errors with file, line and field, writing, and building it from
what a push left live."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.errors import ConfigError
from deployer.providers import Backend
from deployer.router.manifest import (
    from_backends,
    lint,
    load,
    parse,
    to_dict,
    with_backend,
    with_settings,
    without_backend,
    write,
)

GOOD = """\
version: 1
name: iris
policy: weighted
backends:
  - name: aws
    provider: sagemaker
    url: https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/iris/invocations
    region: eu-west-1
    auth: sigv4
    weight: 3
  - name: k8s
    provider: kubernetes
    url: http://iris.models.svc:8080
    tier: 1
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, "router.yaml")
    assert caught.value.exit_code == 2
    return caught.value.problems


def test_defaults_follow_the_provider() -> None:
    manifest = parse(GOOD)
    aws, k8s = manifest.backends
    assert (aws.mode, aws.health_source, aws.auth.kind) == ("fixed", "control-plane", "sigv4")
    assert (k8s.mode, k8s.health_source, k8s.health_path) == ("base", "active", "/ping")
    assert not aws.plain_http and k8s.plain_http
    assert manifest.retries.attempts == 3 and manifest.retries.budget_percent == 20
    assert manifest.tiers() == [0, 1]


def test_errors_name_line_and_field() -> None:
    text = GOOD.replace("weight: 3", "weight: 300").replace("tier: 1", "tier: 1\n    wieght: 2")
    text = text.replace("policy: weighted", "policy: fastest")
    problems = problems_of(text)
    assert "line 3: policy: expected 'weighted' or 'least-latency' (got 'fastest')" in problems
    assert any(
        p.startswith("line 10: backends.0.weight: expected less than or equal to 256")
        for p in problems
    )
    assert any(p.startswith("line 15: backends.1.wieght: unknown field") for p in problems)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("auth: sigv4", "auth: {kind: bearer, token: abc}"),
        ("auth: sigv4", "auth: {kind: bearer}"),
        ("auth: sigv4", "auth: kerberos"),
        ("auth: sigv4", "auth: {kind: bearer, tokn_env: X, token_env: Y}"),
        ("url: http://iris.models.svc:8080", "url: ftp://x"),
        ("version: 1", "version: 2"),
        ("name: k8s", "name: aws"),
    ],
)
def test_rejected(change: str, expected: str) -> None:
    problems = problems_of(GOOD.replace(change, expected))
    joined = "\n".join(problems)
    if "token: abc" in expected:
        assert "the manifest holds no secrets" in joined and "token_env" in joined
    elif "{kind: bearer}" in expected:
        assert "bearer auth needs token_env or token_file" in joined
    elif "tokn_env" in expected:
        assert "auth 'bearer' takes no option tokn_env (check the spelling)" in joined
    elif "kerberos" in expected:
        assert "expected one of azure-key, azure-token, bearer" in joined
    elif "ftp" in expected:
        assert "expected an http:// or https:// URL" in joined
    elif "version" in expected:
        assert joined.startswith("version: expected 1")
    else:
        assert "the name 'aws' is used twice" in joined


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    assert problems_of("name: [")[0].startswith("line 1, column")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path / "router.yaml")
    assert caught.value.hint == "create one with: deployer router init"


def test_write_and_load_round_trip(tmp_path: Path) -> None:
    manifest = parse(GOOD)
    path = write(manifest, tmp_path / "router.yaml")
    text = path.read_text()
    assert text.startswith("# router.yaml")
    assert load(path) == manifest
    entry = to_dict(manifest)["backends"][0]
    assert list(entry)[:7] == ["name", "provider", "url", "region", "auth", "weight", "tier"]
    assert "health" not in entry  # the provider's default is not written out


def test_from_backends_keeps_hand_edits_and_drops_what_is_gone() -> None:
    first = from_backends(
        "iris",
        [
            Backend(
                "aws", "sagemaker", "https://a/endpoints/iris/invocations", "sigv4", "eu-west-1"
            ),
            Backend("gcp", "vertex", "https://b/v1/x:rawPredict", "google-oauth", "europe-west4"),
            Backend("local", "local", "http://127.0.0.1:8080"),
        ],
        options={"aws": {"region": "eu-west-1", "instance_type": "ml.m5.large"}},
    )
    assert [b.name for b in first.backends] == ["aws", "gcp", "local"]
    assert first.backend("aws").target == {"region": "eu-west-1", "instance_type": "ml.m5.large"}
    assert first.backend("local").health_source == "active"
    assert first.backend("gcp").health_source == "control-plane"
    edited = with_settings(first, "aws", weight=5, tier=1)
    edited = with_settings(edited, policy="least-latency")
    edited = with_backend(edited, {"name": "extra", "url": "http://10.0.0.9:8080", "pinned": True})
    second = from_backends(
        "iris",
        [
            Backend("local", "local", "http://127.0.0.1:8081"),
            Backend(
                "aws", "sagemaker", "https://a2/endpoints/iris/invocations", "sigv4", "eu-west-1"
            ),
        ],
        edited,
    )
    assert [b.name for b in second.backends] == ["aws", "local", "extra"]  # gcp is gone
    aws = second.backend("aws")
    assert (aws.weight, aws.tier, aws.url) == (5, 1, "https://a2/endpoints/iris/invocations")
    assert aws.target == {"region": "eu-west-1", "instance_type": "ml.m5.large"}
    assert second.backend("local").url == "http://127.0.0.1:8081"
    assert second.policy == "least-latency"


def test_editing_and_lint() -> None:
    manifest = parse(GOOD)
    with pytest.raises(ConfigError, match="already exists"):
        with_backend(manifest, {"name": "aws", "url": "http://x:1"})
    with pytest.raises(ConfigError, match="no backend named 'nope'"):
        without_backend(manifest, "nope")
    smaller = without_backend(manifest, "k8s")
    assert [b.name for b in smaller.backends] == ["aws"]
    warnings = lint(with_settings(manifest, "k8s", weight=0))
    assert "tier 1: every backend has weight 0, so the tier never serves" in warnings
    assert any("control-plane health needs the target's options" in w for w in warnings)


def test_per_backend_timeout_and_body_limit() -> None:
    text = GOOD.replace("weight: 3", "weight: 3\n    timeout: 60\n    max_body_mb: 4")
    aws, k8s = parse(text).backends
    assert (aws.timeout, aws.max_body_mb, aws.body_bytes) == (60, 4, 4 * 1024 * 1024)
    assert (k8s.timeout, k8s.body_bytes) == (None, None)
    problems = problems_of(text.replace("max_body_mb: 4", "max_body_mb: 0"))
    assert any(
        p.startswith("line 12: backends.0.max_body_mb: expected greater than 0") for p in problems
    ), problems
    problems = problems_of(text.replace("timeout: 60", "timeout: soon"))
    assert any(p.startswith("line 11: backends.0.timeout:") for p in problems), problems
