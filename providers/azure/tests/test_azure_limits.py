"""The limits the provider declares for the core and the router, and the deployment's
request settings (issue 15, 9): Azure's documented values."""

from __future__ import annotations

from typing import Any

import pytest
from azure_fake import FakeAzureML
from azure_support import image_ref, release

from deployer.errors import ConfigError
from deployer.providers import ProjectInfo, Strategy, Target
from deployer_azure import names
from deployer_azure.provider import AzureMLProvider


def quiet(_message: str) -> None:
    return None


def request_settings(provider: Any, fake: FakeAzureML) -> dict[str, Any]:
    deployment = provider.deploy(
        release(1), image_ref(fake, 1), Strategy.parse("all-at-once"), quiet
    )
    provider.wait(deployment, 120, quiet)
    name = names.deployment_name(release(1).version)
    body = fake.requests_to("PUT", f"/deployments/{name}")[0].body
    return dict(body["properties"]["requestSettings"])


def test_the_declared_limits_are_azures(make_provider: Any) -> None:
    default = make_provider()
    assert default.request_timeout_seconds == 5.0  # Azure's default request_timeout_ms
    assert make_provider(request_timeout_ms=180_000).request_timeout_seconds == 180.0
    assert default.max_request_bytes == 1_572_864  # 1.5 MB, else 413
    assert getattr(AzureMLProvider, "max_request_bytes", None) == 1_572_864
    assert default.rollout_allowance_seconds >= 600  # provisioning takes minutes


def test_the_deployment_declares_its_request_timeout(fake: FakeAzureML, make_provider: Any) -> None:
    provider = make_provider(request_timeout_ms=120_000)
    assert request_settings(provider, fake)["requestTimeout"] == "PT2M"
    assert provider.request_timeout_seconds == 120.0


def test_the_default_concurrency_is_not_azures_one_per_instance(
    fake: FakeAzureML, make_provider: Any
) -> None:
    settings = request_settings(make_provider(), fake)
    assert settings["maxConcurrentRequestsPerInstance"] == 16


def test_the_concurrency_follows_the_serving_workers_or_the_option(
    fake: FakeAzureML, make_provider: Any
) -> None:
    from azure_support import target_options

    class WithWorkers(ProjectInfo):
        workers = 4

    provider = AzureMLProvider(
        Target("azure", "azureml", target_options(fake)), WithWorkers("iris")
    )
    assert provider.options.max_concurrent_requests_per_instance == 64
    explicit = make_provider(max_concurrent_requests_per_instance=3)
    assert request_settings(explicit, fake)["maxConcurrentRequestsPerInstance"] == 3


def test_the_options_stop_at_azures_documented_maximums(make_provider: Any) -> None:
    """request_timeout_ms at most 180000 and at most 50 instances (how-to-manage-quotas.md,
    reference-yaml-deployment-managed-online.md): past them the option names the field."""
    assert make_provider(instance_count=50).options.instance_count == 50
    for options, field in (
        ({"request_timeout_ms": 180_001}, "request_timeout_ms"),
        ({"instance_count": 51}, "instance_count"),
    ):
        with pytest.raises(ConfigError) as refused:
            make_provider(**options)
        assert f"targets.azure.{field}" in str(refused.value)
