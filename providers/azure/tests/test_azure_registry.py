"""The workspace registry's credentials without Docker: admin keys and the ACR token exchange."""

from __future__ import annotations

from typing import Any

import pytest
from azure_fake import FakeAzureML
from azure_support import FakeCredential, target_options

from deployer.errors import DeployerError
from deployer_azure import client
from deployer_azure.options import AzureOptions
from deployer_azure.registry import NULL_GUID_USER, acr_target


def target_for(fake: FakeAzureML, **options: Any) -> Any:
    parsed = AzureOptions.model_validate(target_options(fake, **options))
    credential = client.credential()
    return acr_target(
        client.ml_client(parsed, credential), client.arm_client(parsed, credential),
        parsed, credential,
    )  # fmt: skip


def test_admin_credentials_come_from_the_workspace_keys(fake: FakeAzureML) -> None:
    target = target_for(fake)
    assert target.method == "admin" and target.login_server == fake.registry_host
    assert (target.auth.username, target.auth.password) == (fake.registry_user, "acr-pass")
    assert "acr-pass" not in repr(target)
    assert fake.requests_to("POST", "/listKeys")


def test_forcing_admin_when_it_is_disabled_says_how_to_fix_it(fake: FakeAzureML) -> None:
    fake.admin_enabled = False
    with pytest.raises(DeployerError, match="admin user disabled") as caught:
        target_for(fake, registry_auth="admin")
    assert "registry_auth: token" in str(caught.value)


def test_token_exchange_when_the_admin_user_is_disabled(
    fake: FakeAzureML, _azure_environment: FakeCredential
) -> None:
    """registry_auth auto → ACR's /oauth2/exchange for the AAD token (the fake plays ACR)."""
    fake.admin_enabled = False
    fake.registry_host = fake.url.removeprefix("https://")
    target = target_for(fake)
    assert target.method == "token" and target.login_server == fake.registry_host
    assert target.auth.username == NULL_GUID_USER
    assert target.auth.password == "acr-refresh-token-for-127.0.0.1"
    assert "acr-refresh" not in repr(target)
    assert not fake.requests_to("POST", "/listKeys")

    assert _azure_environment.scopes[-1] == (f"{fake.url}/.default",)
