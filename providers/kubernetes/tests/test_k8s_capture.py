"""Prediction capture on Kubernetes: the release's capture rendered into the Deployment
(DEPLOYER_CAPTURE, a PVC when asked), valid for every claimed minor, shown and checked by
plan, applied by deploy and idempotent, kept by a canary and a rollback; and captured()
reading the pods' logs back through the real client (sinceSeconds, bad lines counted).
Reading a claim back: test_k8s_capture_pvc.py."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import kubernetes_validate
import pytest
from k8s_support import VERSIONS, ProviderFactory, image_ref, quiet, release
from k8sfake import EchoRuntime, FakeKube

from deployer.errors import UsageError
from deployer.providers import Release, Strategy, monitoring
from deployer_kubernetes.provider import KubernetesProvider

SPEC = monitoring.CaptureSpec(1.0, drop=("ssn",), hash=("email",))


def capturing(n: int, spec: monitoring.CaptureSpec | None = SPEC) -> Release:
    return dataclasses.replace(release(n), capture=spec)


def container(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = next(m for m in manifests if m["kind"] == "Deployment")
    return dict(deployment["spec"]["template"]["spec"]["containers"][0])


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env") or []}


def push(provider: KubernetesProvider, rel: Release, strategy: str = "all-at-once") -> Any:
    deployment = provider.deploy(rel, image_ref(rel.version), Strategy.parse(strategy), quiet)
    return deployment, provider.wait(deployment, 120, quiet)


# -- rendering --------------------------------------------------------------------------


def test_stdout_capture_renders_the_images_env_with_redaction_passed_through(
    make_provider: ProviderFactory,
) -> None:
    manifests = make_provider().render(capturing(1))
    env = env_of(container(manifests))
    spec = monitoring.CaptureSpec.from_env(env)
    assert spec is not None
    assert spec.destination == "stdout"
    assert (spec.sample, spec.drop, spec.hash) == (1.0, ("ssn",), ("email",))
    for manifest in manifests:
        for version in VERSIONS:
            assert kubernetes_validate.validate(manifest, version, strict=True) == version


def test_no_capture_renders_no_env(make_provider: ProviderFactory) -> None:
    assert "env" not in container(make_provider().render(release(1)))


def test_a_pvc_is_mounted_where_the_image_writes(make_provider: ProviderFactory) -> None:
    manifests = make_provider(capture_pvc="captures").render(capturing(1))
    pod = next(m for m in manifests if m["kind"] == "Deployment")["spec"]["template"]["spec"]
    model = pod["containers"][0]
    spec = monitoring.CaptureSpec.from_env(env_of(model))
    assert spec is not None and spec.destination == "/var/lib/deployer/capture"
    assert {"name": "capture", "mountPath": "/var/lib/deployer/capture"} in model["volumeMounts"]
    assert {"name": "capture", "persistentVolumeClaim": {"claimName": "captures"}} in pod["volumes"]
    for manifest in manifests:
        for version in VERSIONS:
            assert kubernetes_validate.validate(manifest, version, strict=True) == version


def test_an_absolute_folder_destination_is_the_mount_path(make_provider: ProviderFactory) -> None:
    spec = dataclasses.replace(SPEC, destination="/data/capture")
    model = container(make_provider(capture_pvc="captures").render(capturing(1, spec)))
    assert {"name": "capture", "mountPath": "/data/capture"} in model["volumeMounts"]


@pytest.mark.parametrize(
    ("destination", "options", "expected"),
    [
        ("s3://bucket/capture", {}, "not to object storage"),
        ("/data/capture", {}, "emptyDir"),
        ("relative/path", {"capture_pvc": "c"}, "absolute folder"),
        ("stdout", {"capture_pvc": "c"}, "remove one"),
    ],
)
def test_plan_names_what_the_target_refuses(
    make_provider: ProviderFactory, destination: str, options: dict[str, Any], expected: str
) -> None:
    provider = make_provider(**options)
    rel = capturing(1, dataclasses.replace(SPEC, destination=destination))
    plan = provider.plan(rel)
    assert len(plan.problems) == 1 and expected in plan.problems[0]
    assert "monitoring.capture.destination" in plan.problems[0]
    with pytest.raises(UsageError, match=r"monitoring\.capture\.destination"):
        provider.deploy(rel, image_ref(1), Strategy(), quiet)


def test_plan_shows_the_capture_and_deploy_is_idempotent(
    make_provider: ProviderFactory, fake: FakeKube
) -> None:
    provider = make_provider()
    plan = provider.plan(capturing(1))
    assert plan.ok
    assert any("100% of requests" in n and "stdout" in n and "drop ssn" in n for n in plan.notes)
    _, status = push(provider, capturing(1))
    assert status.state == "healthy"
    live = fake.object("apps", "v1", "deployments", "default", "iris-k8s")
    assert monitoring.CAPTURE_ENV in env_of(live["spec"]["template"]["spec"]["containers"][0])
    assert not provider.plan(capturing(1)).changed
    again, _ = push(provider, capturing(1))
    assert not again.changed
    # turning capture off is a change plan shows
    assert provider.plan(release(1)).changed


def test_a_canary_promotion_and_a_rollback_keep_the_capture(
    make_provider: ProviderFactory, fake: FakeKube
) -> None:
    provider = make_provider(replicas=1)
    push(provider, capturing(1))
    _, status = push(provider, capturing(2), "canary:50")
    assert status.state == "healthy" and status.version == release(2).version
    live = fake.object("apps", "v1", "deployments", "default", "iris-k8s")
    assert monitoring.CAPTURE_ENV in env_of(live["spec"]["template"]["spec"]["containers"][0])
    provider.rollback(quiet)
    live = fake.object("apps", "v1", "deployments", "default", "iris-k8s")
    assert live["metadata"]["labels"]["deployer-version"] == release(1).version
    assert monitoring.CAPTURE_ENV in env_of(live["spec"]["template"]["spec"]["containers"][0])


# -- reading back -----------------------------------------------------------------------


def test_captured_reads_each_pods_log_through_the_client(
    make_provider: ProviderFactory, fake: FakeKube
) -> None:
    provider = make_provider(replicas=2)
    assert isinstance(provider, monitoring.CapturesPredictions)
    push(provider, capturing(1))
    start = datetime.now(timezone.utc) - timedelta(seconds=1)
    bodies = [[[1, 2, 3, 4]], [[5, 6, 7, 8], [9, 10, 11, 12]]]
    for body in bodies:
        assert provider.invoke(json.dumps(body).encode(), "application/json").status == 200
    records = list(provider.captured(since=start))
    assert [len(r.rows or []) for r in records] == [1, 2]
    assert records[1].rows == [
        {"f0": 5, "f1": 6, "f2": 7, "f3": 8},
        {"f0": 9, "f1": 10, "f2": 11, "f3": 12},
    ]
    assert records[1].predictions == [0, 0]
    assert records[0].time <= records[1].time
    logs = [r for r in fake.requests if r.path.endswith("/log")]
    assert logs and all("sinceSeconds" in r.query for r in logs)


def test_captured_skips_and_counts_bad_lines_and_honours_since(
    make_provider: ProviderFactory, fake: FakeKube
) -> None:
    provider = make_provider(replicas=1)
    push(provider, capturing(1))
    runtime = fake.runtime
    assert isinstance(runtime, EchoRuntime)
    pod = fake.objects("", "v1", "pods", "default")[0]["metadata"]["name"]
    prefix = monitoring.CAPTURE_STDOUT_PREFIX
    now = datetime.now(timezone.utc)
    old = monitoring.CapturedRecord("old", now - timedelta(hours=2), predictions=[1])
    new = monitoring.CapturedRecord("new", now, predictions=[2], version="v")
    runtime.log(pod, prefix + json.dumps(old.to_json()), at=old.time.timestamp())
    runtime.log(pod, "INFO an ordinary log line")
    runtime.log(pod, prefix + "{not json")
    runtime.log(pod, prefix + json.dumps({"request_id": 3, "time": "x"}))
    runtime.log(pod, prefix + json.dumps(new.to_json()))
    recent = list(provider.captured(since=now - timedelta(minutes=5)))
    assert [r.request_id for r in recent] == ["new"]
    assert provider.captured_skipped == 2
    assert [r.request_id for r in provider.captured()] == ["old", "new"]
    naive = (now - timedelta(minutes=5)).replace(tzinfo=None)  # naive: UTC
    assert [r.request_id for r in provider.captured(since=naive)] == ["new"]


def test_captured_says_when_nothing_is_captured(make_provider: ProviderFactory) -> None:
    provider = make_provider(replicas=1)
    with pytest.raises(UsageError, match="nothing deployed"):
        provider.captured()  # at once, not on the first record
    push(provider, release(1))
    with pytest.raises(UsageError, match="captures nothing"):
        list(provider.captured())
    # a claim is read by a reader Job: test_k8s_capture_pvc.py


def test_the_fake_refuses_a_bad_since_seconds(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    provider = make_provider(replicas=1)
    push(provider, capturing(1))
    pod = fake.objects("", "v1", "pods", "default")[0]["metadata"]["name"]
    from kubernetes.client.exceptions import ApiException

    api = provider.cluster.api("CoreV1Api")
    with pytest.raises(ApiException) as raised:
        api.read_namespaced_pod_log(pod, "default", since_seconds=-5)
    assert raised.value.status == 400
