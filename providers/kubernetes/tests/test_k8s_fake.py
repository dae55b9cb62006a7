"""The fake API server is faithful where the provider relies on it: every call here goes
through the real kubernetes client, whose models validate the responses strictly."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from k8sfake import FakeKube

APPLY = "application/apply-patch+yaml"


@pytest.fixture
def api(fake: FakeKube, kubeconfig: Path) -> Any:
    from kubernetes import config

    return config.new_client_from_config(config_file=str(kubeconfig), context="fake")


def deployment(
    name: str = "web", image: str = "nginx:1.27", replicas: int | None = 2
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "containers": [{"name": "web", "image": image, "ports": [{"containerPort": 80}]}]
            },
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": spec,
    }


def apply(api: Any, body: dict[str, Any], manager: str = "tester", **kw: Any) -> Any:
    from kubernetes import client

    return client.AppsV1Api(api).patch_namespaced_deployment(
        body["metadata"]["name"],
        "default",
        body,
        field_manager=manager,
        _content_type=APPLY,
        **kw,
    )


def wait_for(check: Any, timeout: float = 60.0) -> Any:
    """Poll ``check`` until it returns something truthy (the fake's controllers run in
    their own thread); fail if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"condition not reached within {timeout:g}s")


def test_discovery_and_version(api: Any, fake: FakeKube) -> None:
    from kubernetes import client

    assert client.VersionApi(api).get_code().git_version.startswith("v1.")
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {"apps", "autoscaling", "policy", "networking.k8s.io"} <= groups
    assert "gateway.networking.k8s.io" not in groups
    fake.enable_gateway_api()
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert "gateway.networking.k8s.io" in groups
    resources = client.AppsV1Api(api).get_api_resources()
    assert {"deployments", "deployments/scale", "deployments/status"} <= {
        r.name for r in resources.resources
    }
    core = client.CoreV1Api(api).get_api_resources()
    assert "services/proxy" in {r.name for r in core.resources}


def test_server_side_apply_sets_identity_and_owns_fields(api: Any, fake: FakeKube) -> None:
    with fake.paused():
        created = apply(api, deployment())
        again = apply(api, deployment())
    meta = created.metadata
    assert meta.uid and meta.resource_version and meta.generation == 1 and meta.creation_timestamp
    assert (
        created.spec.template.spec.containers[0].termination_message_path == "/dev/termination-log"
    )
    (entry,) = meta.managed_fields
    assert (entry.manager, entry.operation, entry.fields_type) == ("tester", "Apply", "FieldsV1")
    assert again.metadata.resource_version == meta.resource_version  # a no-op apply
    changed = apply(api, deployment(image="nginx:1.28"))
    assert changed.metadata.generation == 2
    assert int(changed.metadata.resource_version) > int(meta.resource_version)


def test_apply_conflicts_without_force_and_takes_over_with_it(api: Any) -> None:
    from kubernetes.client.exceptions import ApiException

    apply(api, deployment(replicas=2), manager="first")
    with pytest.raises(ApiException) as caught:
        apply(api, deployment(replicas=5), manager="second")
    message = json.loads(caught.value.body)["message"]
    assert caught.value.status == 409
    assert message.startswith('Apply failed with 1 conflict: conflict with "first" using apps/v1')
    assert message.endswith(".spec.replicas")
    taken = apply(api, deployment(replicas=5), manager="second", force=True)
    assert taken.spec.replicas == 5


def test_fields_dropped_from_an_apply_are_removed_unless_someone_else_owns_them(api: Any) -> None:
    apply(api, deployment(replicas=3))
    dropped = apply(api, deployment(replicas=None))
    assert dropped.spec.replicas == 1  # removed, then defaulted, as a real server does
    apply(api, deployment(replicas=3))
    handover = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 3},
    }
    apply(api, handover, manager="handover", force=True)
    kept = apply(api, deployment(replicas=None))
    assert kept.spec.replicas == 3


def test_merge_strategic_and_json_patches(api: Any) -> None:
    from kubernetes import client

    apps = client.AppsV1Api(api)
    apply(api, deployment())
    merged = apps.patch_namespaced_deployment(
        "web",
        "default",
        {"metadata": {"labels": {"tier": "front"}}},
        _content_type="application/merge-patch+json",
    )
    assert merged.metadata.labels == {"app": "web", "tier": "front"}
    strategic = apps.patch_namespaced_deployment(
        "web",
        "default",
        {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox"}]}}}},
    )  # strategic merge is the client's default for objects: the list merges by name
    names = [c.name for c in strategic.spec.template.spec.containers]
    assert names == ["web", "sidecar"]
    patched = apps.patch_namespaced_deployment(
        "web",
        "default",
        [{"op": "replace", "path": "/spec/replicas", "value": 4}],
        _content_type="application/json-patch+json",
    )
    assert patched.spec.replicas == 4
    owners = {m.manager for m in patched.metadata.managed_fields}
    assert "tester" in owners


def test_replace_checks_the_resource_version(api: Any, fake: FakeKube) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    apps = client.AppsV1Api(api)
    with fake.paused():
        live = apply(api, deployment())
        body = api.sanitize_for_serialization(live)
        body["spec"]["replicas"] = 6
        replaced = apps.replace_namespaced_deployment("web", "default", body)
        assert replaced.spec.replicas == 6 and replaced.metadata.generation == 2
        with pytest.raises(ApiException) as caught:
            apps.replace_namespaced_deployment("web", "default", body)  # stale resourceVersion
    assert caught.value.status == 409


def test_dry_run_persists_nothing(api: Any, fake: FakeKube) -> None:
    result = apply(api, deployment(), dry_run="All")
    assert result.metadata.uid
    assert fake.objects("apps", "v1", "deployments") == []


def test_validation_and_immutable_selector(api: Any) -> None:
    from kubernetes.client.exceptions import ApiException

    broken = deployment()
    broken["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(ApiException) as caught:
        apply(api, broken)
    assert caught.value.status == 422
    assert "`selector` does not match template `labels`" in json.loads(caught.value.body)["message"]
    apply(api, deployment())
    moved = deployment()
    moved["spec"]["selector"]["matchLabels"]["tier"] = "x"
    moved["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    with pytest.raises(ApiException) as caught:
        apply(api, moved)
    assert "field is immutable" in caught.value.body


def test_selectors_and_not_found(api: Any) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    apps = client.AppsV1Api(api)
    apply(api, deployment("a"))
    apply(api, deployment("b"))
    assert [
        d.metadata.name
        for d in apps.list_namespaced_deployment("default", label_selector="app=a").items
    ] == ["a"]
    assert [
        d.metadata.name
        for d in apps.list_namespaced_deployment("default", label_selector="app in (a,b)").items
    ] == ["a", "b"]
    assert (
        apps.list_namespaced_deployment("default", label_selector="app!=a,app")
        .items[0]
        .metadata.name
        == "b"
    )
    with pytest.raises(ApiException) as caught:
        apps.read_namespaced_deployment("c", "default")
    assert caught.value.status == 404
    assert json.loads(caught.value.body)["message"] == 'deployments.apps "c" not found'
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment(
            "a", "nowhere", deployment("a"), field_manager="t", _content_type=APPLY
        )
    assert json.loads(caught.value.body)["message"] == 'namespaces "nowhere" not found'


def test_rollout_status_pods_events_and_logs(api: Any, fake: FakeKube) -> None:
    from kubernetes import client

    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apply(api, deployment(replicas=2))
    done = wait_for(
        lambda: (
            (d := apps.read_namespaced_deployment("web", "default")).status.available_replicas == 2
            and d
        )
    )
    assert done.status.observed_generation == done.metadata.generation
    assert {c.type: c.reason for c in done.status.conditions} == {
        "Available": "MinimumReplicasAvailable",
        "Progressing": "NewReplicaSetAvailable",
    }
    pods = core.list_namespaced_pod("default", label_selector="app=web").items
    assert len(pods) == 2 and all(p.status.phase == "Running" for p in pods)
    fake.fail_image("broken", "CrashLoopBackOff", logs=["boom"])
    apply(api, deployment(image="broken:1", replicas=2))
    crashed = wait_for(
        lambda: [
            p
            for p in core.list_namespaced_pod("default").items
            if p.status.container_statuses and p.status.container_statuses[0].state.waiting
        ]
    )
    waiting = crashed[0].status.container_statuses[0]
    assert (
        waiting.state.waiting.reason == "CrashLoopBackOff"
        and waiting.last_state.terminated.exit_code == 3
    )
    log = core.read_namespaced_pod_log(
        crashed[0].metadata.name, "default", previous=True, tail_lines=5
    )
    assert log == "boom\n"
    events = core.list_namespaced_event(
        "default",
        field_selector=f"involvedObject.kind=Pod,involvedObject.name={crashed[0].metadata.name}",
    ).items
    assert events and events[0].reason == "BackOff" and events[0].type == "Warning"
    # the old pods keep serving while the new ones crash (maxUnavailable)
    assert apps.read_namespaced_deployment("web", "default").status.available_replicas == 2


def test_deleting_a_deployment_collects_its_pods(api: Any, fake: FakeKube) -> None:
    from kubernetes import client

    apply(api, deployment(replicas=1))
    core = client.CoreV1Api(api)
    wait_for(lambda: core.list_namespaced_pod("default").items)
    status = client.AppsV1Api(api).delete_namespaced_deployment("web", "default")
    assert (status["status"] if isinstance(status, dict) else status.status) == "Success"
    wait_for(lambda: not core.list_namespaced_pod("default").items)


def test_services_get_defaults_and_answer_deletes_with_the_object(api: Any) -> None:
    from kubernetes import client

    core = client.CoreV1Api(api)
    body = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80}]},
    }
    service = core.create_namespaced_service("default", body)
    assert service.spec.cluster_ip and service.spec.ports[0].node_port >= 30000
    assert service.spec.ports[0].target_port == 80 and service.spec.session_affinity == "None"
    deleted = core.delete_namespaced_service("web", "default")
    assert deleted.metadata.name == "web"
