"""The provider against the fake API server, through the real kubernetes client: deploy,
no-op, every strategy, failures with their causes, timeouts, rollback, destroy, plan,
credentials, permissions, retries, invoke through the service proxy, routes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_support import ADMIN_TOKEN, ProviderFactory, image_ref, quiet, release
from k8sfake import FakeKube

import deployer_kubernetes.deploy
import deployer_kubernetes.provider
from deployer.errors import ConfigError, DeployerError, MissingDependencyError, UsageError
from deployer.providers import ProjectInfo, Strategy, Target, provider_class
from deployer_kubernetes.provider import KubernetesProvider

APPS = ("apps", "v1", "deployments")
CORE_SERVICES = ("", "v1", "services")


def push(
    provider: KubernetesProvider,
    n: int,
    strategy: str = "all-at-once",
    bake: float = 0.0,
    timeout: float = 120,
) -> Any:
    """deploy + wait, as the orchestrator runs them."""
    lines: list[str] = []
    deployment = provider.deploy(
        release(n), image_ref(n), Strategy.parse(strategy, bake), lines.append
    )
    status = provider.wait(deployment, timeout, lines.append)
    return deployment, status, lines


def applies(fake: FakeKube, plural: str = "deployments") -> list[dict[str, Any]]:
    """Bodies of the real (not dry-run) server-side applies of ``plural``, in order."""
    return [
        r.json()
        for r in fake.writes()
        if r.method == "PATCH"
        and f"/{plural}/" in r.path
        and r.content_type == "application/apply-patch+yaml"
    ]


def image_of(deployment: dict[str, Any]) -> str:
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


class VirtualClock:
    """Stands in for ``time`` in the provider's modules: the clock starts at 0 and moves only
    when they sleep, so a wait's deadline depends on how often it polled, not on how busy the
    machine is. A wait still sleeping an hour past its start never honoured its timeout."""

    LIMIT = 3600.0

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0, "a poll loop that does not sleep spins"
        self.now += seconds
        assert self.now < self.LIMIT, "still waiting an hour later: the timeout was ignored"


class RetrySleeps:
    """Stands in for ``time`` in urllib3.util.retry (the kubernetes client's retries):
    records each sleep with the request that was answered just before it, and returns."""

    def __init__(self, fake: FakeKube) -> None:
        self.fake = fake
        self.sleeps: list[tuple[float, str, str]] = []

    def sleep(self, seconds: float) -> None:
        last = self.fake.requests[-1]
        self.sleeps.append((seconds, last.method, last.path))

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


# -- discovery and first deploy ------------------------------------------------------------


def test_registered_under_the_entry_point_group() -> None:
    assert provider_class("kubernetes") is KubernetesProvider


def test_first_deploy_applies_every_object_server_side(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    provider = make_provider()
    deployment, status, lines = push(provider, 1)
    assert deployment.changed and deployment.previous_version is None
    assert status.healthy and status.version == release(1).version
    assert status.url == "http://iris-k8s.default.svc.cluster.local"
    patches = [r for r in fake.writes() if r.method == "PATCH"]
    assert [r.path.split("/")[-2] for r in patches] == [
        "poddisruptionbudgets",
        "services",
        "deployments",
    ]
    for request in patches:
        assert request.content_type == "application/apply-patch+yaml"
        assert request.query["fieldManager"] == "deployer"
        assert request.query["force"] == "true"
    live = fake.object(*APPS, "default", "iris-k8s")
    assert image_of(live) == image_ref(1)
    assert live["metadata"]["labels"]["deployer-version"] == release(1).version
    assert [m["manager"] for m in live["metadata"]["managedFields"]] == ["deployer"]
    assert any("successfully rolled out" in line for line in lines)
    # waited the kubectl way: the rollout was observed before it was declared done
    assert live["status"]["observedGeneration"] == live["metadata"]["generation"]


def test_redeploying_the_live_version_changes_nothing(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    provider = make_provider()
    push(provider, 1)
    before = {
        o["metadata"]["name"]: o["metadata"]["resourceVersion"]
        for o in fake.objects(*APPS) + fake.objects(*CORE_SERVICES)
    }
    writes = len(fake.writes())
    lines: list[str] = []
    deployment = provider.deploy(release(1), image_ref(1), Strategy(), lines.append)
    assert not deployment.changed
    assert deployment.previous_version == release(1).version
    assert len(fake.writes()) == writes  # only dry runs
    assert provider.wait(deployment, 120, quiet).healthy
    after = {
        o["metadata"]["name"]: o["metadata"]["resourceVersion"]
        for o in fake.objects(*APPS) + fake.objects(*CORE_SERVICES)
    }
    assert after == before


def test_a_config_change_of_the_live_version_is_applied(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    push(make_provider(replicas=2), 1)
    deployment, status, _ = push(make_provider(replicas=3), 1)
    assert deployment.changed and status.healthy
    assert fake.object(*APPS, "default", "iris-k8s")["spec"]["replicas"] == 3
    assert status.details["previous_version"] is None  # same version: nothing to roll back to


# -- strategies ----------------------------------------------------------------------------


def test_all_at_once_rolls_the_main_deployment(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    provider = make_provider()
    push(provider, 1)
    deployment, status, _ = push(provider, 2)
    assert deployment.previous_version == release(1).version
    assert status.healthy and status.version == release(2).version
    bodies = applies(fake)
    assert [image_of(b) for b in bodies] == [image_ref(1), image_ref(2)]
    assert bodies[-1]["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
    }
    annotations = fake.object(*APPS, "default", "iris-k8s")["metadata"]["annotations"]
    assert annotations["deployer.dev/previous-image"] == image_ref(1)
    assert annotations["deployer.dev/previous-version"] == release(1).version
    assert not any("canary" in r.path for r in fake.writes())


def test_canary_runs_a_second_deployment_then_promotes(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    provider = make_provider(replicas=4)
    push(provider, 1)
    _deployment, status, lines = push(provider, 2, "canary:20", bake=0.3)
    assert status.healthy, status.reason
    assert status.version == release(2).version
    canary = [b for b in applies(fake) if b["metadata"]["name"] == "iris-k8s-canary"]
    assert len(canary) == 1
    assert canary[0]["spec"]["replicas"] == 1  # 1 of 5 pods = 20%
    assert image_of(canary[0]) == image_ref(2)
    assert canary[0]["spec"]["selector"]["matchLabels"]["deployer-track"] == "canary"
    # a Service of its own for the smoke call; the main Service selects both tracks
    canary_service = [
        b for b in applies(fake, "services") if b["metadata"]["name"] == "iris-k8s-canary"
    ]
    assert canary_service[0]["spec"]["selector"]["deployer-track"] == "canary"
    main_service = fake.object(*CORE_SERVICES, "default", "iris-k8s")
    assert "deployer-track" not in main_service["spec"]["selector"]
    smoke = [
        r for r in fake.requests if "/services/iris-k8s-canary:http/proxy/invocations" in r.path
    ]
    assert len(smoke) == 1 and json.loads(smoke[0].body) == [[0, 0, 0, 0], [0, 0, 0, 0]]
    assert any("baking iris-k8s-canary for 0.3s" in line for line in lines)
    # promoted: the main Deployment has the new version, the canary is gone
    assert image_of(fake.object(*APPS, "default", "iris-k8s")) == image_ref(2)
    assert [d["metadata"]["name"] for d in fake.objects(*APPS)] == ["iris-k8s"]
    assert [s["metadata"]["name"] for s in fake.objects(*CORE_SERVICES)] == ["iris-k8s"]
    deletes = [r.path.rsplit("/", 2)[-2:] for r in fake.writes() if r.method == "DELETE"]
    assert deletes == [["deployments", "iris-k8s-canary"], ["services", "iris-k8s-canary"]]
    # the canary went only after the main Deployment rolled out
    promote = max(
        i
        for i, r in enumerate(fake.requests)
        if r.method == "PATCH" and r.path.endswith("/deployments/iris-k8s") and not r.dry_run
    )
    delete = next(i for i, r in enumerate(fake.requests) if r.method == "DELETE")
    assert promote < delete


def test_linear_steps_the_canary_share(fake: FakeKube, make_provider: ProviderFactory) -> None:
    provider = make_provider(replicas=3)
    push(provider, 1)
    _, status, _lines = push(provider, 2, "linear:25")
    assert status.healthy, status.reason
    canary_replicas = [
        b["spec"]["replicas"] for b in applies(fake) if b["metadata"]["name"] == "iris-k8s-canary"
    ]
    assert canary_replicas == [1, 3, 9]  # 25%, 50%, 75% of the pods beside 3 stable ones
    smokes = [r for r in fake.requests if "iris-k8s-canary:http/proxy" in r.path]
    assert len(smokes) == 3
    assert image_of(fake.object(*APPS, "default", "iris-k8s")) == image_ref(2)


def test_canary_with_an_http_route_weighs_the_backends(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    fake.enable_gateway_api()
    provider = make_provider(
        http_route={"gateway": "infra/public", "hostnames": ["iris.example.com"]}
    )
    push(provider, 1)
    _, status, _ = push(provider, 2, "canary:10")
    assert status.healthy, status.reason
    weights = [
        [(b["name"], b["weight"]) for b in body["spec"]["rules"][0]["backendRefs"]]
        for body in applies(fake, "httproutes")
    ]
    assert weights == [
        [("iris-k8s", 100)],
        [("iris-k8s", 90), ("iris-k8s-canary", 10)],
        [("iris-k8s", 100)],
        [("iris-k8s", 100)],
    ]
    # with weighted backends the main Service selects only the stable track
    assert (
        fake.object(*CORE_SERVICES, "default", "iris-k8s")["spec"]["selector"]["deployer-track"]
        == "stable"
    )
    assert provider.route().url == "http://iris.example.com"


def test_canary_on_first_deploy_goes_all_at_once(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    _, status, lines = push(make_provider(), 1, "canary:10")
    assert status.healthy
    assert any("nothing is live yet" in line for line in lines)
    assert [d["metadata"]["name"] for d in fake.objects(*APPS)] == ["iris-k8s"]


# -- failures ------------------------------------------------------------------------------


def test_image_pull_backoff_is_reported_and_the_previous_version_keeps_serving(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    provider = make_provider()
    push(provider, 1)
    fake.fail_image(image_ref(2), "ImagePullBackOff")
    _deployment, status, _lines = push(provider, 2)
    assert status.state == "failed"
    assert "ImagePullBackOff" in status.reason
    assert (
        f'Failed to pull image "{image_ref(2)}"' in status.reason and "not found" in status.reason
    )
    assert f"rolled back: {release(1).version} keeps serving" in status.reason
    after = provider.status()
    assert after.healthy and after.version == release(1).version
    assert image_of(fake.object(*APPS, "default", "iris-k8s")) == image_ref(1)
    assert provider.invoke(b"[[1, 2, 3, 4]]", "application/json").status == 200


def test_crash_loop_shows_the_containers_last_log_lines(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    provider = make_provider()
    push(provider, 1)
    logs = ["loading model from /opt/ml/model", "error: the model file is corrupt (EOFError)"]
    fake.fail_image(image_ref(2), "CrashLoopBackOff", logs=logs)
    _, status, _ = push(provider, 2)
    assert status.state == "failed"
    assert "CrashLoopBackOff (exit code 3, Error" in status.reason
    assert "last log lines:" in status.reason
    assert "error: the model file is corrupt (EOFError)" in status.reason
    log_calls = [r for r in fake.requests if r.path.endswith("/log")]
    assert log_calls and log_calls[0].query["previous"] == "true"
    assert provider.status().version == release(1).version


def test_unschedulable_pods_fail_at_the_progress_deadline(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    push(make_provider(), 1)  # the default deadline: a busy machine cannot fail this rollout
    provider = make_provider(progress_deadline_seconds=1)
    fake.fail_image(
        image_ref(2), "Unschedulable", "0/3 nodes are available: 3 Insufficient memory."
    )
    _, status, _lines = push(provider, 2)
    assert status.state == "failed"
    assert "exceeded its progress deadline (ProgressDeadlineExceeded" in status.reason
    assert "Unschedulable: 0/3 nodes are available: 3 Insufficient memory." in status.reason
    assert provider.status().version == release(1).version


def test_a_failed_first_deploy_has_nothing_to_roll_back_to(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    fake.fail_image(image_ref(1), "ImagePullBackOff")
    provider = make_provider()
    _, status, _ = push(provider, 1)
    assert status.state == "failed" and "rolled back" not in status.reason
    current = provider.status()
    assert current.state == "unhealthy" and "ImagePullBackOff" in current.reason


def test_a_failing_canary_is_removed_and_the_main_deployment_untouched(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    provider = make_provider()
    push(provider, 1)
    fake.fail_image(image_ref(2), "CrashLoopBackOff", logs=["Traceback: boom"])
    _, status, _ = push(provider, 2, "canary:10")
    assert status.state == "failed"
    assert "canary iris-k8s-canary" in status.reason and "Traceback: boom" in status.reason
    assert f"the canary was removed and {release(1).version} keeps serving" in status.reason
    assert [d["metadata"]["name"] for d in fake.objects(*APPS)] == ["iris-k8s"]
    assert image_of(fake.object(*APPS, "default", "iris-k8s")) == image_ref(1)
    assert [b["metadata"]["name"] for b in applies(fake)] == ["iris-k8s", "iris-k8s-canary"]


def test_a_canary_failing_its_smoke_call_is_rolled_back(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    provider = make_provider()
    push(provider, 1)
    fake.fault("POST", "iris-k8s-canary:http/proxy/invocations", 500)
    _, status, _ = push(provider, 2, "canary:50")
    assert status.state == "failed"
    assert "smoke prediction answered 500" in status.reason or "500" in status.reason
    assert provider.status().version == release(1).version


# -- rollback, destroy, plan ---------------------------------------------------------------


def test_rollback_returns_to_the_previous_version(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    provider = make_provider()
    push(provider, 1)
    push(provider, 2)
    result = provider.rollback(quiet)
    assert result.version == release(1).version and result.previous_version == release(2).version
    status = provider.status()
    assert status.healthy and status.version == release(1).version
    assert image_of(fake.object(*APPS, "default", "iris-k8s")) == image_ref(1)
    # rolling back again goes forward to what was rolled back from
    assert provider.rollback(quiet).version == release(2).version


def test_rollback_without_a_previous_version_is_a_usage_error(
    make_provider: ProviderFactory,
) -> None:
    provider = make_provider()
    with pytest.raises(UsageError, match="nothing deployed"):
        provider.rollback(quiet)
    push(provider, 1)
    with pytest.raises(UsageError, match="no previous version"):
        provider.rollback(quiet)


def test_destroy_removes_exactly_what_deployer_created(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    fake.enable_gateway_api()
    mine = make_provider(autoscaling={"min": 2, "max": 3}, http_route={"gateway": "gw"})
    other_target = make_provider(target="other")
    push(mine, 1)
    push(other_target, 1)
    first = len(fake.requests)
    removed = mine.destroy(quiet)
    assert removed == [
        "httproute/iris-k8s",
        "horizontalpodautoscaler/iris-k8s",
        "poddisruptionbudget/iris-k8s",
        "service/iris-k8s",
        "deployment/iris-k8s",
    ]
    assert [d["metadata"]["name"] for d in fake.objects(*APPS)] == ["iris-other"]
    assert mine.status().state == "absent"
    assert other_target.status().healthy
    assert mine.destroy(quiet) == []  # idempotent
    deletes = [r for r in fake.requests[first:] if r.method == "DELETE"]
    lists = [r for r in fake.requests[first:] if r.method == "GET" and "labelSelector" in r.query]
    assert all(
        r.query["labelSelector"] == "deployer-project=iris,deployer-target=k8s" for r in lists
    )
    assert len(deletes) == 5


def test_plan_shows_the_difference_by_server_side_dry_run(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    provider = make_provider()
    first = provider.plan(release(1))
    assert [(c.action, c.resource) for c in first.changes] == [
        ("create", "poddisruptionbudget/iris-k8s"),
        ("create", "service/iris-k8s"),
        ("create", "deployment/iris-k8s"),
    ]
    assert fake.writes(dry_run=False) == []
    assert all(r.query.get("dryRun") == "All" for r in fake.writes(dry_run=None))
    push(provider, 1)
    assert not provider.plan(release(1)).changed
    later = make_provider(replicas=5, autoscaling=None).plan(release(2))
    deployment_change = next(c for c in later.changes if c.resource == "deployment/iris-k8s")
    assert deployment_change.action == "update"
    assert "spec.replicas: 2 -> 5" in deployment_change.detail
    assert (
        f"deployer-version: {release(1).version} -> {release(2).version}"
        in deployment_change.detail
    )
    before = len(fake.writes(dry_run=False))
    make_provider(autoscaling={"min": 2, "max": 4}).plan(release(1))
    assert len(fake.writes(dry_run=False)) == before


def test_switching_to_autoscaling_hands_replicas_to_the_hpa(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    push(make_provider(replicas=4), 1)
    _, status, lines = push(make_provider(autoscaling={"min": 2, "max": 10}), 1)
    assert status.healthy
    assert any("handed spec.replicas over" in line for line in lines)
    live = fake.object(*APPS, "default", "iris-k8s")
    assert live["spec"]["replicas"] == 4  # not reset to 1 when deployer stopped owning it
    owners = {m["manager"]: m["fieldsV1"] for m in live["metadata"]["managedFields"]}
    assert "f:replicas" not in owners["deployer"]["f:spec"]
    assert fake.objects("autoscaling", "v2", "horizontalpodautoscalers")
    # and back: a fixed count deletes the HPA
    push(make_provider(replicas=2), 1)
    assert fake.objects("autoscaling", "v2", "horizontalpodautoscalers") == []
    assert fake.object(*APPS, "default", "iris-k8s")["spec"]["replicas"] == 2


def test_ingress_and_route(fake: FakeKube, make_provider: ProviderFactory) -> None:
    provider = make_provider(
        ingress={"host": "iris.example.com", "tls_secret": "t", "path": "/iris"},
        route_auth="bearer",
        region="eu-west-1",
    )
    push(provider, 1)
    ingress = fake.objects("networking.k8s.io", "v1", "ingresses")[0]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "iris-k8s", "port": {"name": "http"}}
    route = provider.route()
    assert (route.url, route.auth, route.region, route.provider) == (
        "https://iris.example.com/iris",
        "bearer",
        "eu-west-1",
        "kubernetes",
    )


def test_http_route_needs_the_gateway_api(make_provider: ProviderFactory) -> None:
    provider = make_provider(http_route={"gateway": "gw"})
    with pytest.raises(DeployerError, match="does not serve the Gateway API"):
        provider.deploy(release(1), image_ref(1), Strategy(), quiet)


# -- invoke --------------------------------------------------------------------------------


def test_invoke_goes_through_the_service_proxy(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    provider = make_provider()
    push(provider, 1)
    answer = provider.invoke(b"[[1,2,3,4],[5,6,7,8]]", "application/json", "application/json")
    assert answer.status == 200 and json.loads(answer.body) == {"predictions": [0, 0]}
    assert answer.content_type == "application/json"
    (call,) = [r for r in fake.requests if "/proxy/" in r.path]
    assert call.path == "/api/v1/namespaces/default/services/iris-k8s:http/proxy/invocations"
    assert call.body == b"[[1,2,3,4],[5,6,7,8]]"  # byte for byte
    assert provider.invoke(b"not json", "application/json").status == 400  # the model's answer


def test_invoke_without_endpoints_says_so(make_provider: ProviderFactory) -> None:
    with pytest.raises(DeployerError, match='services "iris-k8s" not found'):
        make_provider().invoke(b"[[0]]", "application/json")


# -- credentials, permissions, retries, options --------------------------------------------


def test_missing_kubeconfig_names_the_credential_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    provider = KubernetesProvider(
        Target("k8s", "kubernetes", {"provider": "kubernetes"}), ProjectInfo("iris")
    )
    with pytest.raises(MissingDependencyError) as caught:
        provider.status()
    message = str(caught.value)
    assert "no Kubernetes credentials found" in message
    assert "$KUBECONFIG (unset)" in message and ".kube/config (missing)" in message
    assert "in-cluster service account" in message
    assert caught.value.exit_code == 3


def test_an_unknown_context_lists_the_known_ones(make_provider: ProviderFactory) -> None:
    with pytest.raises(ConfigError) as caught:
        make_provider(context="prod").status()
    assert "targets.k8s.context" in str(caught.value) and "contexts: fake" in str(caught.value)


def test_refused_credentials(
    fake: FakeKube, tmp_path: Path, make_provider: ProviderFactory
) -> None:
    config = fake.kubeconfig(tmp_path / "stale", token="expired-token")
    with pytest.raises(MissingDependencyError, match="refused the credentials of context fake"):
        make_provider(kubeconfig=str(config)).status()
    assert "expired-token" not in repr(make_provider(kubeconfig=str(config)))


def test_missing_permissions_name_the_action_and_resource(
    fake: FakeKube, tmp_path: Path, make_provider: ProviderFactory
) -> None:
    fake.add_user("reader-token", "system:serviceaccount:ci:reader", {"get", "list"})
    config = fake.kubeconfig(tmp_path / "reader", token="reader-token")
    provider = make_provider(kubeconfig=str(config))
    with pytest.raises(DeployerError) as caught:
        provider.deploy(release(1), image_ref(1), Strategy(), quiet)
    message = str(caught.value)
    assert message.startswith("permission denied: cannot patch poddisruptionbudget/iris-k8s")
    assert "in namespace default (context fake)" in message
    assert (
        'User "system:serviceaccount:ci:reader" cannot patch resource "poddisruptionbudgets"'
        in message
    )
    assert "reader-token" not in message


def test_throttling_and_transient_errors_are_retried_with_backoff(
    fake: FakeKube, make_provider: ProviderFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib3.util.retry

    retries = RetrySleeps(fake)
    monkeypatch.setattr(urllib3.util.retry, "time", retries)
    fake.fault("PATCH", "/deployments/iris-k8s$", 429, times=2, retry_after=1)
    fake.fault("GET", "/deployments/iris-k8s$", 503, times=2)
    provider = make_provider(retry_backoff=0.05)
    _, status, _ = push(provider, 1)
    assert status.healthy
    # Retry-After: 1 was honoured after each throttled apply; the 503s backed off
    deployment = "/apis/apps/v1/namespaces/default/deployments/iris-k8s"
    after_patch = [s for s, m, path in retries.sleeps if (m, path) == ("PATCH", deployment)]
    assert after_patch == [1.0, 1.0]
    after_get = [s for s, m, path in retries.sleeps if (m, path) == ("GET", deployment)]
    assert after_get and all(0 < s < 1 for s in after_get)
    patches = [
        r
        for r in fake.requests
        if r.method == "PATCH" and r.path.endswith("/deployments/iris-k8s") and not r.dry_run
    ]
    assert len(patches) == 3
    assert all(f.times == 0 for f in fake.faults)


def test_persistent_throttling_gives_up_with_a_clear_message(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    fake.fault("GET", "/deployments/iris-k8s$", 503, times=100)
    with pytest.raises(
        DeployerError,
        match="kept answering 503 ServiceUnavailable to read deployment/iris-k8s after 2 retries",
    ):
        make_provider(retries=2).status()


def test_a_missing_namespace_is_a_usage_error(make_provider: ProviderFactory) -> None:
    with pytest.raises(UsageError, match="namespace team-a does not exist"):
        make_provider(namespace="team-a").deploy(release(1), image_ref(1), Strategy(), quiet)


def test_an_unreachable_api_server(tmp_path: Path, make_provider: ProviderFactory) -> None:
    from docker_support import free_port

    config = tmp_path / "gone"
    data = yaml.safe_load(Path(make_provider().options.kubeconfig or "").read_text())
    data["clusters"][0]["cluster"]["server"] = f"http://127.0.0.1:{free_port()}"
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(
        DeployerError, match=r"cannot reach the Kubernetes API server at http://127\.0\.0\.1"
    ):
        make_provider(kubeconfig=str(config), retries=1).status()


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"replicas": 2, "autoscaling": {"min": 1}}, "set either replicas or autoscaling"),
        ({"autoscaling": {"min": 5, "max": 2}}, "max (2) must be at least min (5)"),
        ({"service_type": "ExternalName"}, "targets.k8s.service_type"),
        ({"namespace": "Team_A"}, "targets.k8s.namespace"),
        ({"resources": {"requests": {"cpu": "lots"}}}, "not a Kubernetes quantity"),
        ({"replica": 2}, "targets.k8s.replica: unknown field"),
        ({"registry_username_env": "U"}, "go together"),
        (
            {"ingress": {"host": "a.example"}, "http_route": {"gateway": "g"}},
            "either ingress or http_route",
        ),
        ({"pdb_min_available": "half"}, "pdb_min_available"),
    ],
)
def test_option_validation(options: dict[str, Any], problem: str) -> None:
    target = Target("k8s", "kubernetes", {"provider": "kubernetes", **options})
    with pytest.raises(ConfigError) as caught:
        KubernetesProvider(target, ProjectInfo("iris"))
    assert problem in str(caught.value)


def test_name_override_and_admin_token_stays_out_of_errors(
    fake: FakeKube, make_provider: ProviderFactory
) -> None:
    provider = make_provider(name="churn-model", namespace="default")
    push(provider, 1)
    assert fake.object(*APPS, "default", "churn-model")
    fake.fault("GET", "/deployments/churn-model$", 500, times=100)
    with pytest.raises(DeployerError) as caught:
        make_provider(name="churn-model", retries=0).status()
    assert ADMIN_TOKEN not in str(caught.value)


def test_a_canary_whose_bake_outlasts_the_timeout_is_removed_not_promoted(
    fake: FakeKube, make_provider: ProviderFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the push timeout (120 s) cannot hold the 600 s bake: before, the bake ran on past
    # the deadline and promoted; now the canary is removed and the old version serves
    provider = make_provider(replicas=4)
    push(provider, 1)
    lines: list[str] = []
    deployment = provider.deploy(
        release(2), image_ref(2), Strategy.parse("canary:20", 600), lines.append
    )
    clock = VirtualClock()
    monkeypatch.setattr(deployer_kubernetes.provider, "time", clock)
    monkeypatch.setattr(deployer_kubernetes.deploy, "time", clock)
    status = provider.wait(deployment, 120, lines.append)
    assert clock.now < 120  # it did not bake past the deadline
    assert status.state == "failed" and status.version == release(1).version
    assert "not enough for the 600s bake at 20%: the rollout cannot finish in time" in (
        status.reason or ""
    )
    assert f"the canary was removed and {release(1).version} keeps serving" in status.reason
    assert any("removed canary iris-k8s-canary" in line for line in lines)
    assert [d["metadata"]["name"] for d in fake.objects(*APPS)] == ["iris-k8s"]
    assert image_of(fake.object(*APPS, "default", "iris-k8s")) == image_ref(1)
    now = provider.status()  # status agrees: the old version, healthy, no canary
    assert now.healthy and now.version == release(1).version and "canary" not in now.details
