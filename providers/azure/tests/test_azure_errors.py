"""Credentials, permissions, throttling, transient errors and options, through the real SDK."""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure_fake import FakeAzureML
from azure_support import image_ref, release, target_options

from deployer.errors import ConfigError, DeployerError, MissingDependencyError
from deployer.providers import ProjectInfo, Strategy, Target
from deployer_azure import names
from deployer_azure.auth import AzurePermissionError
from deployer_azure.provider import AzureMLProvider

EP = "iris-azure"


def quiet(_message: str) -> None:
    return None


def deploy_and_wait(provider: Any, fake: FakeAzureML, number: int = 1) -> Any:
    deployment = provider.deploy(release(number), image_ref(fake, number), Strategy(), quiet)
    return provider.wait(deployment, 120, quiet)


def test_missing_credentials_name_the_chain(
    fake: FakeAzureML, make_provider: Any, no_azure_credentials: None
) -> None:
    """The real DefaultAzureCredential on a machine with no credentials at all."""
    provider = make_provider()
    with pytest.raises(MissingDependencyError) as caught:
        provider.status()
    message = str(caught.value)
    assert "no Azure credentials" in message
    for part in ("environment variables", "workload identity", "managed identity", "Azure CLI"):
        assert part in message
    assert "EnvironmentCredential" in message and "ManagedIdentityCredential" in message
    assert "az login" in message
    assert caught.value.exit_code == 3
    assert not fake.requests  # nothing reached the cloud without a token


def test_a_rejected_token_says_so(fake: FakeAzureML, make_provider: Any, monkeypatch: Any) -> None:
    import azure_fake

    monkeypatch.setattr(azure_fake, "TOKEN", "another-token")
    with pytest.raises(DeployerError, match=r"Azure rejected the credentials .*401"):
        make_provider().status()


def test_missing_permission_names_the_action_and_the_scope(
    fake: FakeAzureML, make_provider: Any
) -> None:
    action = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/write"
    scope = f"{fake.workspace_id}/onlineEndpoints/{EP}"
    fake.forbid("PUT", f"/onlineEndpoints/{EP}", action, scope)
    provider = make_provider()
    with pytest.raises(AzurePermissionError) as caught:
        provider.deploy(release(1), image_ref(fake, 1), Strategy(), quiet)
    message = str(caught.value)
    assert f"may not perform {action} on {scope}" in message
    assert "AuthorizationFailed" in message and "grant a role" in message
    assert fake.requests_to("PUT", f"/onlineEndpoints/{EP}")[0].status == 403


class SdkSleeps:
    """Stands in for azure-core's ``HttpTransport.sleep`` (retries and LRO polling sleep
    there): records each sleep with the request the fake answered just before it."""

    def __init__(self, fake: FakeAzureML) -> None:
        self.fake = fake
        self.sleeps: list[tuple[float, str, str, int]] = []

    def sleep(self, seconds: float) -> None:
        with self.fake.lock:
            last = self.fake.requests[-1]
            self.sleeps.append((float(seconds), last.method, last.path, last.status))
        time.sleep(seconds)

    def after(self, method: str, part: str, status: int) -> list[float]:
        """The sleeps right after ``method`` on a path containing ``part`` got ``status``."""
        return [
            s for s, m, path, code in self.sleeps if (m, code) == (method, status) and part in path
        ]


@pytest.fixture
def sdk_sleeps(fake: FakeAzureML, monkeypatch: pytest.MonkeyPatch) -> SdkSleeps:
    from azure.core.pipeline.transport import HttpTransport

    recorder = SdkSleeps(fake)
    monkeypatch.setattr(HttpTransport, "sleep", lambda _transport, s: recorder.sleep(s))
    return recorder


def test_throttling_is_retried_after_retry_after(
    fake: FakeAzureML, make_provider: Any, sdk_sleeps: SdkSleeps
) -> None:
    fake.throttle("GET", f"/onlineEndpoints/{EP}", times=2, retry_after="0.3")
    fake.throttle("PUT", "/deployments/", times=1, retry_after="0.2")
    status = deploy_and_wait(make_provider(), fake)
    assert status.healthy, status.reason
    gets = fake.requests_to("GET", f"/onlineEndpoints/{EP}")
    assert [r.status for r in gets[:3]] == [429, 429, 404]
    puts = fake.requests_to("PUT", "/deployments/")
    assert [r.status for r in puts] == [429, 201]
    # the SDK waited as long as Retry-After asked, after each 429, before trying again
    assert sdk_sleeps.after("GET", f"/onlineEndpoints/{EP}", 429) == [0.3, 0.3]
    assert sdk_sleeps.after("PUT", "/deployments/", 429) == [0.2]


def test_transient_server_errors_are_retried_with_backoff(
    fake: FakeAzureML, make_provider: Any, sdk_sleeps: SdkSleeps
) -> None:
    fake.transient("GET", f"/onlineEndpoints/{EP}", times=2, status=503)
    fake.transient("PUT", f"/onlineEndpoints/{EP}", times=1, status=500)
    status = deploy_and_wait(make_provider(retry_backoff=0.1), fake)
    assert status.healthy, status.reason
    gets = fake.requests_to("GET", f"/onlineEndpoints/{EP}")
    assert [r.status for r in gets[:3]] == [503, 503, 404]
    # azure-core: the first retry is immediate, the next waits backoff * 2
    assert sdk_sleeps.after("GET", f"/onlineEndpoints/{EP}", 503) == [0.2]
    assert [r.status for r in fake.requests_to("PUT", f"/onlineEndpoints/{EP}")][:2] == [500, 201]


def test_throttling_that_never_ends_is_reported(fake: FakeAzureML, make_provider: Any) -> None:
    fake.throttle("GET", f"/onlineEndpoints/{EP}", times=100, retry_after="0.01")
    with pytest.raises(DeployerError, match=r"429 TooManyRequests.*Rate limit exceeded"):
        make_provider(retries=2).status()
    assert len(fake.requests_to("GET", f"/onlineEndpoints/{EP}")) == 3


def test_a_wrong_workspace_is_named(fake: FakeAzureML, make_provider: Any) -> None:
    with pytest.raises(DeployerError) as caught:
        make_provider(workspace="nope").deploy(release(1), image_ref(fake, 1), Strategy(), quiet)
    assert "not found" in str(caught.value) and "nope" in str(caught.value)
    assert "check subscription_id, resource_group and workspace" in str(caught.value)


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"workspace": None}, "targets.azure.workspace: required field is missing"),
        ({"subscription_id": None}, "targets.azure.subscription_id: required field is missing"),
        ({"endpoint_name": "9lives"}, "targets.azure.endpoint_name: String should match"),
        ({"endpoint_name": "x" * 33}, "targets.azure.endpoint_name: String should match"),
        ({"request_timeout_ms": 180_001}, "targets.azure.request_timeout_ms: Input should be"),
        ({"instance_count": 0}, "targets.azure.instance_count: Input should be greater"),
        ({"instance_count": 51}, "targets.azure.instance_count: Input should be less"),
        ({"auth_mode": "aad"}, "targets.azure.auth_mode: Input should be 'key' or 'aml_token'"),
        ({"instance_tpye": "x"}, "targets.azure.instance_tpye: unknown field"),
        ({"tags": {"deployer-version": "1"}}, "targets.azure.tags: Value error, tags starting"),
        ({"resource_manager_endpoint": "ftp://x"}, "targets.azure.resource_manager_endpoint"),
    ],
)
def test_options_are_validated(options: dict[str, Any], problem: str) -> None:
    values = {
        "provider": "azureml",
        "subscription_id": "s",
        "resource_group": "rg",
        "workspace": "ws",
        **options,
    }
    values = {k: v for k, v in values.items() if v is not None}
    with pytest.raises(ConfigError) as caught:
        AzureMLProvider(Target("azure", "azureml", values), ProjectInfo("iris"))
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_the_provider_is_found_by_its_entry_point(fake: FakeAzureML) -> None:
    from deployer.providers import provider_class

    cls = provider_class("azureml")
    assert cls is AzureMLProvider and cls.name == "azureml"
    provider = cls(Target("azure", "azureml", target_options(fake)), ProjectInfo("iris"))
    assert provider.endpoint == EP


def test_names_follow_azure_rules() -> None:
    assert names.endpoint_name("iris", "azure") == "iris-azure"
    assert names.endpoint_name("iris", "prod_eu") == "iris-prod-eu"
    assert names.endpoint_name("iris", "azure", "Custom-Name") == "Custom-Name"
    long = names.endpoint_name("a-very-long-project-name-indeed", "production-westeurope")
    assert 30 <= len(long) <= 32 and long[0].isalpha() and not long.endswith("-")
    assert long != names.endpoint_name("a-very-long-project-name-indeed", "production-westeuropf")
    assert names.endpoint_name("p", "1") == "p-1"
    assert names.endpoint_name("p", "") == "p-ep"
    version = release(1).version
    assert names.deployment_name(version) == f"v{version}"
    assert len(names.deployment_name("x" * 60)) == 32
