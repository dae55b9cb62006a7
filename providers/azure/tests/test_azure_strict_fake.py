"""The fake ARM refuses what Azure ML refuses: bodies checked against the SDK's REST
models and the documented limits (azure_rest_check.py), sent through the real SDK."""

from __future__ import annotations

from typing import Any

import pytest
from azure_fake import FakeAzureML
from azure_rest_check import deployment_problems, endpoint_problems
from azure_support import image_ref, release

from deployer.providers import Strategy
from deployer_azure import endpoints, names, specs


def quiet(_message: str) -> None:
    return None


def deployed(provider: Any, fake: FakeAzureML) -> str:
    deployment = provider.deploy(
        release(1), image_ref(fake, 1), Strategy.parse("all-at-once"), quiet
    )
    assert provider.wait(deployment, 120, quiet).healthy
    return names.deployment_name(release(1).version)


def test_a_request_timeout_over_180_seconds_is_refused(
    fake: FakeAzureML, make_provider: Any
) -> None:
    from azure.core.exceptions import HttpResponseError

    provider = make_provider()
    deployed(provider, fake)
    ws = provider.workspace
    # the options refuse this; the SDK does not, and neither did the old fake
    too_long = ws.options.model_copy(update={"request_timeout_ms": 240_000})
    spec = specs.deployment_entity(too_long, ws.endpoint, "v-slow", image_ref(fake, 2), {})
    with pytest.raises(HttpResponseError) as refused:
        ws.ml.online_deployments.begin_create_or_update(spec).result()
    assert refused.value.status_code == 400
    assert "requestTimeout: PT4M is not within (0, 180 s]" in str(refused.value)
    assert (ws.endpoint, "v-slow") not in fake.deployments


def test_traffic_not_summing_to_100_is_refused(fake: FakeAzureML, make_provider: Any) -> None:
    from azure.core.exceptions import HttpResponseError

    provider = make_provider()
    name = deployed(provider, fake)
    with pytest.raises(HttpResponseError) as refused:
        endpoints.set_traffic(provider.workspace, {name: 90}, quiet)
    assert refused.value.status_code == 400
    assert "must sum to 100, got 90" in str(refused.value)
    assert fake.endpoints[provider.workspace.endpoint]["properties"]["traffic"] == {name: 100}


def test_deleting_a_deployment_still_provisioning_is_refused(
    fake: FakeAzureML, make_provider: Any
) -> None:
    """ARM refuses a second operation on a busy resource: no delete while Creating."""
    from azure.core.exceptions import HttpResponseError

    provider = make_provider()
    deployed(provider, fake)
    ws = provider.workspace
    gate = fake.hold_provisioning()
    spec = specs.deployment_entity(ws.options, ws.endpoint, "v-busy", image_ref(fake, 2), {})
    ws.ml.online_deployments.begin_create_or_update(spec)  # not waited for: still Creating
    with pytest.raises(HttpResponseError) as refused:
        ws.ml.online_deployments.begin_delete("v-busy", ws.endpoint).result()
    assert refused.value.status_code == 409
    assert "is in Creating provisioning state" in str(refused.value)
    assert fake.deployments[(ws.endpoint, "v-busy")]["properties"]["provisioningState"] == (
        "Creating"
    )
    gate.set()  # once its create ends, the same delete goes through
    assert endpoints.delete_deployment(ws, "v-busy", quiet, settle=30) is None
    assert (ws.endpoint, "v-busy") not in fake.deployments


def test_the_sdk_bodies_of_a_whole_rollout_pass(fake: FakeAzureML, make_provider: Any) -> None:
    provider = make_provider()
    deployed(provider, fake)
    assert fake.refused == []
    bodies = [r.body for r in fake.requests if r.method == "PUT" and "/deployments/" in r.path]
    assert bodies and all(deployment_problems(body) == [] for body in bodies)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"properties": {"authMode": "Key"}}, "onlineEndpoint.location is required"),
        ({"location": "x", "properties": {}}, "properties.authMode is required"),
        (
            {"location": "x", "properties": {"authMode": "Key", "traffic": {"a": 101}}},
            "traffic.a: 101 is not an integer percent 0-100",
        ),
        (
            {"location": "x", "properties": {"authMode": "Key", "mirrorTraffic": {"a": 60}}},
            "mirror traffic is at most 50%, got 60",
        ),
    ],
)
def test_endpoint_bodies_azure_refuses(body: dict[str, Any], problem: str) -> None:
    assert any(problem in found for found in endpoint_problems(body)), endpoint_problems(body)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"properties": {"endpointComputeType": "Managed"}}, "location is required"),
        ({"location": "x"}, "onlineDeployment.properties is required"),
        (
            {
                "location": "x",
                "properties": {"endpointComputeType": "Managed"},
                "sku": {"name": "Default", "capacity": 0},
            },
            "sku.capacity: 0 is not within 1-50",
        ),
        (
            {"location": "x", "properties": {"endpointComputeType": "Managed"}, "sku": {}},
            "sku.name is required",
        ),
    ],
)
def test_deployment_bodies_azure_refuses(body: dict[str, Any], problem: str) -> None:
    assert any(problem in found for found in deployment_problems(body)), deployment_problems(body)
