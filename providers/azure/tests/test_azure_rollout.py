"""deploy/wait/rollback/destroy against the fake ARM, through the real azure-ai-ml SDK."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure_fake import FakeAzureML, StubRuntime
from azure_support import image_ref, release

from deployer.errors import UsageError
from deployer.providers import Strategy
from deployer_azure import names

EP = "iris-azure"


def quiet(_message: str) -> None:
    return None


def name_of(number: int) -> str:
    return names.deployment_name(release(number).version)


def push(
    provider: Any,
    fake: FakeAzureML,
    number: int,
    strategy: str = "all-at-once",
    bake: float = 0.0,
    timeout: float = 120,
) -> Any:
    deployment = provider.deploy(
        release(number), image_ref(fake, number), Strategy.parse(strategy, bake), quiet
    )
    return deployment, provider.wait(deployment, timeout, quiet)


def test_first_deploy_creates_a_tagged_endpoint_and_deployment(
    fake: FakeAzureML, make_provider: Any
) -> None:
    provider = make_provider()
    deployment, status = push(provider, fake, 1)
    assert deployment.changed and deployment.previous_version is None
    assert status.healthy, status.reason
    assert status.version == release(1).version
    assert status.url == f"{fake.scoring_url}/{EP}/score"
    assert fake.traffic_updates(EP) == [{}, {name_of(1): 100}]

    endpoint = fake.endpoints[EP]
    assert endpoint["tags"]["deployer-project"] == "iris"
    assert endpoint["tags"]["deployer-target"] == "azure"
    assert endpoint["properties"]["authMode"] == "Key"
    body = fake.requests_to("PUT", f"/deployments/{name_of(1)}")[0].body
    assert body["tags"]["deployer-version"] == release(1).version
    assert body["tags"]["deployer-project"] == "iris"
    assert body["properties"]["instanceType"] == "Standard_DS3_v2"
    assert body["sku"]["capacity"] == 1
    assert body["properties"]["requestSettings"]["requestTimeout"] == "PT5S"
    environment = fake._environment_of(body["properties"]["environmentId"])
    assert environment is not None
    assert environment["properties"]["image"] == image_ref(fake, 1)
    assert environment["properties"]["inferenceConfig"] == {
        "livenessRoute": {"port": 8080, "path": "/live"},
        "readinessRoute": {"port": 8080, "path": "/ready"},
        "scoringRoute": {"port": 8080, "path": "/score"},
    }
    # the new deployment answered a targeted smoke call before it got traffic
    assert fake.scoring_calls[0] == (EP, name_of(1), 200)

    answer = provider.invoke(b"[[5.1, 3.5, 1.4, 0.2]]", "application/json", "application/json")
    assert answer.status == 200 and json.loads(answer.body) == {"predictions": [0]}
    backend = provider.route()
    assert (backend.url, backend.auth, backend.region) == (status.url, "azure-key", "westeurope")
    assert backend.provider == "azureml"


def test_redeploying_the_live_version_changes_nothing(
    fake: FakeAzureML, make_provider: Any
) -> None:
    provider = make_provider()
    push(provider, fake, 1)
    writes = len([r for r in fake.requests if r.method in ("PUT", "DELETE")])
    deployment, status = push(make_provider(), fake, 1)
    assert not deployment.changed and status.healthy
    assert deployment.previous_version == release(1).version
    assert len([r for r in fake.requests if r.method in ("PUT", "DELETE")]) == writes


def test_all_at_once_moves_all_traffic_and_keeps_the_previous_deployment(
    fake: FakeAzureML, make_provider: Any
) -> None:
    provider = make_provider()
    push(provider, fake, 1)
    deployment, status = push(provider, fake, 2)
    assert status.healthy and status.version == release(2).version
    assert deployment.previous_version == release(1).version
    assert fake.traffic_updates(EP)[-1] == {name_of(2): 100}
    assert {n for (_e, n) in fake.deployments} == {name_of(1), name_of(2)}


def test_canary_sends_n_percent_then_promotes(fake: FakeAzureML, make_provider: Any) -> None:
    provider = make_provider()
    push(provider, fake, 1)
    _, status = push(provider, fake, 2, "canary:10", bake=0.1)
    assert status.healthy, status.reason
    assert fake.traffic_updates(EP)[-2:] == [
        {name_of(2): 10, name_of(1): 90},
        {name_of(2): 100},
    ]
    # one health check before any traffic, one after the bake, both aimed at the canary
    checks = [c for c in fake.scoring_calls if c[1] == name_of(2)]
    assert checks == [(EP, name_of(2), 200)] * 2


def test_linear_moves_traffic_in_steps(fake: FakeAzureML, make_provider: Any) -> None:
    provider = make_provider()
    push(provider, fake, 1)
    _, status = push(provider, fake, 2, "linear:40")
    assert status.healthy, status.reason
    assert fake.traffic_updates(EP)[-3:] == [
        {name_of(2): 40, name_of(1): 60},
        {name_of(2): 80, name_of(1): 20},
        {name_of(2): 100},
    ]


def test_a_third_version_retires_the_oldest(fake: FakeAzureML, make_provider: Any) -> None:
    provider = make_provider()
    for number in (1, 2, 3):
        push(provider, fake, number)
    assert {n for (_e, n) in fake.deployments} == {name_of(2), name_of(3)}
    assert fake.requests_to("DELETE", f"/deployments/{name_of(1)}")


def test_keep_previous_false_deletes_the_old_deployment(
    fake: FakeAzureML, make_provider: Any
) -> None:
    provider = make_provider(keep_previous=False)
    push(provider, fake, 1)
    push(provider, fake, 2)
    assert {n for (_e, n) in fake.deployments} == {name_of(2)}
    with pytest.raises(UsageError, match="no previous version"):
        provider.rollback(quiet)


def test_a_failed_deployment_reports_the_azure_error_and_the_old_one_keeps_serving(
    fake: FakeAzureML, make_provider: Any
) -> None:
    provider = make_provider()
    push(provider, fake, 1)
    fake.fail_deployment(
        name_of(2),
        "User container has crashed or terminated: exit code 3",
        logs="loading model.joblib\nValueError: incompatible pickle\n",
    )
    _, status = push(provider, fake, 2, "canary:10")
    assert status.state == "failed"
    assert "ResourceNotReady" in (status.reason or "")
    assert "User container has crashed or terminated: exit code 3" in (status.reason or "")
    assert "ValueError: incompatible pickle" in (status.reason or "")
    assert f"the previous version {release(1).version} keeps serving" in (status.reason or "")
    assert status.version == release(1).version
    # traffic never moved; the failed deployment is gone
    assert all(name_of(2) not in t for t in fake.traffic_updates(EP))
    assert (EP, name_of(2)) not in fake.deployments
    now = provider.status()
    assert now.healthy and now.version == release(1).version


def test_a_failed_first_deployment_says_nothing_was_serving(
    fake: FakeAzureML, make_provider: Any
) -> None:
    provider = make_provider()
    fake.fail_deployment("*", "ImagePullFailure: manifest unknown")
    _, status = push(provider, fake, 1)
    assert status.state == "failed" and status.version is None
    assert "ImagePullFailure: manifest unknown" in (status.reason or "")
    assert "nothing was serving before" in (status.reason or "")


def test_a_canary_failing_its_health_check_is_rolled_back(
    fake: FakeAzureML, make_provider: Any
) -> None:
    provider = make_provider()
    push(provider, fake, 1)
    assert isinstance(fake.runtime, StubRuntime)
    fake.runtime.fail_after[name_of(2)] = 1  # passes the first check, fails after the bake
    _, status = push(provider, fake, 2, "canary:20", bake=0.05)
    assert status.state == "failed"
    reason = status.reason or ""
    assert "answered 500" in reason and "model crashed" in reason
    assert f"rolled back: traffic 100% to {name_of(1)}" in reason
    assert fake.traffic_updates(EP)[-2:] == [
        {name_of(2): 20, name_of(1): 80},
        {name_of(1): 100},
    ]
    assert (EP, name_of(2)) not in fake.deployments
    assert provider.status().version == release(1).version


def test_rollback_moves_traffic_back_to_the_previous_deployment(
    fake: FakeAzureML, make_provider: Any
) -> None:
    provider = make_provider()
    push(provider, fake, 1)
    with pytest.raises(UsageError, match="no previous version"):
        provider.rollback(quiet)
    push(provider, fake, 2)
    rolled = provider.rollback(quiet)
    assert rolled.version == release(1).version
    assert rolled.previous_version == release(2).version
    assert fake.traffic_updates(EP)[-1] == {name_of(1): 100}
    assert provider.status().version == release(1).version
    # rolling forward again is a plain deploy of the newer version
    deployment, status = push(provider, fake, 2)
    assert deployment.changed and status.version == release(2).version


def test_destroy_removes_exactly_this_targets_endpoint(
    fake: FakeAzureML, make_provider: Any
) -> None:
    provider = make_provider()
    other = make_provider(target="other")
    push(provider, fake, 1)
    push(provider, fake, 2)
    push(other, fake, 1)
    removed = provider.destroy(quiet)
    assert removed == [
        *sorted(f"deployment {EP}/{n}" for n in (name_of(1), name_of(2))),
        f"endpoint {EP}",
    ]
    assert EP not in fake.endpoints and "iris-other" in fake.endpoints
    assert provider.status().state == "absent"
    assert provider.destroy(quiet) == []


def test_an_endpoint_of_someone_else_is_left_alone(fake: FakeAzureML, make_provider: Any) -> None:
    push(make_provider(project="billing", endpoint_name=EP), fake, 1)
    provider = make_provider()
    with pytest.raises(UsageError, match="not tagged for project iris"):
        provider.deploy(release(2), image_ref(fake, 2), Strategy(), quiet)
    with pytest.raises(UsageError, match="not tagged"):
        provider.destroy(quiet)
    assert EP in fake.endpoints


def test_plan_reads_only(fake: FakeAzureML, make_provider: Any) -> None:
    provider = make_provider()
    plan = provider.plan(release(1))
    assert [(c.action, c.resource) for c in plan.changes] == [
        ("create", f"endpoint {EP}"),
        ("create", f"deployment {name_of(1)}"),
        ("update", f"endpoint {EP}"),
    ]
    push(provider, fake, 1)
    assert not provider.plan(release(1)).changed
    push(provider, fake, 2)
    before = len(fake.requests)
    actions = [(c.action, c.resource) for c in provider.plan(release(3)).changes]
    assert actions == [
        ("create", f"deployment {name_of(3)}"),
        ("update", f"endpoint {EP}"),
        ("delete", f"deployment {name_of(1)}"),
    ]
    assert all(r.method in ("GET", "POST") for r in fake.requests[before:])
    assert not [r for r in fake.requests[before:] if r.method == "POST" and "listKeys" in r.path]


def test_aml_token_auth_invokes_with_the_endpoint_token(
    fake: FakeAzureML, make_provider: Any
) -> None:
    provider = make_provider(auth_mode="aml_token")
    _, status = push(provider, fake, 1)
    assert status.healthy, status.reason
    assert fake.endpoints[EP]["properties"]["authMode"] == "AMLToken"
    assert fake.requests_to("POST", f"/onlineEndpoints/{EP}/token")
    assert provider.route().auth == "azure-token"
    assert provider.invoke(b"[[1, 2, 3, 4]]", "application/json").status == 200


def test_sdk_progress_never_reaches_stdout(
    fake: FakeAzureML, make_provider: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.provisioning_seconds = 0.2
    push(make_provider(), fake, 1)
    assert capsys.readouterr().out == ""
