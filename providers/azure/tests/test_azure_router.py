"""The built-in router signing for Azure ML: the endpoint key or token fetched through
the real azure-ai-ml SDK from the fake ARM (``listKeys``, ``token``), or a Microsoft
Entra token from the credential chain, sent to the fake scoring URI, which checks it.

The router runs in this process (azure_router.RouterInProcess) with the manifest
``deployer push`` writes: ``auth: azure-key`` (or ``azure-token``) and no options.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from azure_fake import FakeAzureML
from azure_router import RouterInProcess, pushed_manifest, register_azure_plugin
from azure_support import ML_SCOPE, FakeCredential, image_ref, release, target_options
from tls_support import TLSCertificate

from deployer.errors import ConfigError, DeployerError, MissingDependencyError, UsageError
from deployer.providers import Strategy
from deployer.router.manifest import BackendConfig
from deployer_azure.provider import AzureMLProvider
from deployer_azure.router_auth import (
    KEY_REFRESH_SECONDS,
    AzureEndpointSigner,
    AzureEntraSigner,
    AzureKeySigner,
)

EP = "iris-azure"
BODY = b'{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}'


def quiet(_message: str) -> None:
    return None


@pytest.fixture
def router_env(monkeypatch: pytest.MonkeyPatch, certificate: TLSCertificate) -> None:
    """The router finds the azureml plugin, and trusts the fake scoring server's
    certificate (it verifies TLS with the default context: SSL_CERT_FILE)."""
    register_azure_plugin(monkeypatch)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.cert))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


def deployed(fake: FakeAzureML, make_provider: Any, **options: Any) -> Any:
    provider = make_provider(**options)
    deployment = provider.deploy(release(1), image_ref(fake, 1), Strategy(), quiet)
    status = provider.wait(deployment, 120, quiet)
    assert status.healthy, status.reason
    return provider


def backend(fake: FakeAzureML, auth: Any = "azure-key", **fields: Any) -> BackendConfig:
    data: dict[str, Any] = {
        "name": "azure",
        "provider": "azureml",
        "url": f"{fake.scoring_url}/{EP}/score",
        "auth": auth,
        "target": target_options(fake),
        **fields,
    }
    return BackendConfig.model_validate(data)


def predict(router: RouterInProcess, client: httpx.Client) -> httpx.Response:
    return client.post(
        router.url + "/score",
        content=BODY,
        headers={"content-type": "application/json", "authorization": "Bearer client-own"},
    )


def predict_until(
    router: RouterInProcess,
    client: httpx.Client,
    condition: Callable[[], bool],
    what: str,
    timeout: float = 60.0,
) -> list[int]:
    """Keep sending predictions through the router until ``condition()`` holds (the router
    refreshes its secret in the background); the status of each prediction."""
    statuses: list[int] = []
    deadline = time.monotonic() + timeout
    while True:
        statuses.append(predict(router, client).status_code)
        if condition():
            return statuses
        assert time.monotonic() < deadline, f"no {what} within {timeout:g}s: {statuses[-5:]}"
        time.sleep(0.05)


def everything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("azure", "msal", "urllib3", "deployer"):
        logging.getLogger(name).setLevel(logging.DEBUG)


# -- azure-key: the key from get_keys ---------------------------------------------------


def test_router_signs_with_the_endpoint_key_from_azure(
    fake: FakeAzureML, make_provider: Any, router_env: None, caplog: pytest.LogCaptureFixture
) -> None:
    provider = deployed(fake, make_provider)
    manifest = pushed_manifest("iris", provider, target_options(fake))
    config = manifest.backends[0]
    assert config.auth.kind == "azure-key" and config.auth.options() == {}
    everything(caplog)
    before = len(fake.requests_to("POST", f"/onlineEndpoints/{EP}/listKeys"))
    with RouterInProcess(manifest) as router, httpx.Client(timeout=20) as client:
        for _ in range(3):
            answer = predict(router, client)
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"predictions": [0, 0]}
            assert answer.headers["x-deployer-backend"] == "azure"
        signer = router.upstream().signer
        assert isinstance(signer, AzureEndpointSigner)
        assert (signer.endpoint, signer.kind, signer.expires_at) == (EP, "key", None)
    # the router got the key through the SDK: ARM's listKeys, with the ARM token
    assert len(fake.requests_to("POST", f"/onlineEndpoints/{EP}/listKeys")) > before
    assert fake.rejected == []
    key = fake.keys[EP][0]
    assert key not in caplog.text and key not in repr(signer)
    assert "azure scoring credentials refreshed" in caplog.text


def test_a_key_is_fetched_again_every_15_minutes_by_default(
    fake: FakeAzureML, make_provider: Any, caplog: pytest.LogCaptureFixture
) -> None:
    deployed(fake, make_provider)
    everything(caplog)  # the SDK's own HTTP logging too
    signer = AzureMLProvider.router_signer(backend(fake))
    assert signer.refresh() == KEY_REFRESH_SECONDS == 900
    assert "listKeys" in caplog.text and fake.keys[EP][0] not in caplog.text
    assert signer.sign("POST", "u", {}, b"") == {"authorization": f"Bearer {fake.keys[EP][0]}"}
    configured = AzureMLProvider.router_signer(
        backend(fake, {"kind": "azure-key", "refresh_seconds": 60})
    )
    assert configured.refresh() == 60


def test_a_regenerated_key_is_picked_up_at_the_next_refresh(
    fake: FakeAzureML, make_provider: Any, router_env: None
) -> None:
    provider = deployed(fake, make_provider)
    auth = {"kind": "azure-key", "refresh_seconds": 1}
    manifest = pushed_manifest("iris", provider, target_options(fake), auth)
    with RouterInProcess(manifest) as router, httpx.Client(timeout=20) as client:
        assert predict(router, client).status_code == 200
        new = fake.regenerate_key(EP)
        signer = router.upstream().signer
        deadline = time.monotonic() + 60
        while signer.sign("POST", "u", {}, b"") != {"authorization": f"Bearer {new}"}:
            assert time.monotonic() < deadline, "the new key was not picked up within 60 s"
            time.sleep(0.05)
        for _ in range(3):
            answer = predict(router, client)
            assert answer.status_code == 200, answer.text


# -- azure-token: the endpoint token (aml_token) -------------------------------------------


def test_aml_tokens_are_refreshed_before_they_expire(
    fake: FakeAzureML, make_provider: Any, router_env: None, caplog: pytest.LogCaptureFixture
) -> None:
    provider = deployed(fake, make_provider, auth_mode="aml_token")
    # The service asks for a refresh after 3 s. Tokens live an hour, so whether a call
    # succeeds never depends on how soon a busy machine gets round to the refresh; when
    # short-lived tokens are refreshed is test_token_refresh_honours_refresh_after_...'s.
    fake.token_lifetime, fake.token_refresh_after = 3600, 3
    manifest = pushed_manifest("iris", provider, target_options(fake))
    assert manifest.backends[0].auth.kind == "azure-token"
    everything(caplog)
    first_call = len(fake.scoring_secrets)

    def used() -> set[str]:
        return set(fake.scoring_secrets[first_call:])

    with RouterInProcess(manifest) as router, httpx.Client(timeout=20) as client:
        statuses = predict_until(router, client, lambda: len(used()) >= 3, "two token refreshes")
        assert router.upstream().signer.kind == "token"
    assert set(statuses) == {200}, statuses
    issued = fake.tokens[EP]
    assert used() <= set(issued)  # every call carried a token the endpoint had issued
    assert fake.rejected == []
    assert "router listening" in caplog.text  # the router's records were captured
    assert not any(token in caplog.text for token in issued)


def test_token_refresh_honours_refresh_after_else_a_margin_before_expiry(
    fake: FakeAzureML, make_provider: Any
) -> None:
    deployed(fake, make_provider, auth_mode="aml_token")
    signer = AzureMLProvider.router_signer(backend(fake, "azure-token"))
    seconds = signer.refresh()  # expires in 3600 s, refresh after 1800 s
    assert 1790 <= seconds <= 1800
    assert (
        signer.sign("POST", "u", {}, b"")["authorization"].removeprefix("Bearer ")
        in (fake.tokens[EP])
    )
    fake.token_refresh_after = None
    assert 3290 <= signer.refresh() <= 3300  # five minutes before expiry
    fake.token_lifetime = 120
    assert 55 <= signer.refresh() <= 60  # short-lived: half-way


def test_a_key_endpoint_listed_as_azure_token_still_gets_its_key(
    fake: FakeAzureML, make_provider: Any
) -> None:
    """The signer follows the endpoint's auth mode, whatever router.yaml's kind says."""
    deployed(fake, make_provider)
    signer = AzureMLProvider.router_signer(backend(fake, "azure-token"))
    assert signer.refresh() == KEY_REFRESH_SECONDS
    assert signer.kind == "key"


def test_invoke_fetches_a_new_token_when_its_token_expires(
    fake: FakeAzureML, make_provider: Any
) -> None:
    provider = deployed(fake, make_provider, auth_mode="aml_token")
    fake.token_lifetime, fake.token_refresh_after = 30, None
    provider._scoring = None
    assert provider.invoke(BODY, "application/json").status == 200
    secret = provider._scoring
    assert secret is not None and secret.kind == "token" and secret.expired()  # < 60 s left
    assert secret.value not in repr(secret)
    assert provider.invoke(BODY, "application/json").status == 200
    assert provider._scoring is not secret
    assert fake.rejected == []


# -- azure-token, source: entra -----------------------------------------------------------


def test_entra_tokens_from_the_credential_chain(
    fake: FakeAzureML,
    make_provider: Any,
    router_env: None,
    credential: FakeCredential,
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = deployed(fake, make_provider)
    fake.endpoints[EP]["properties"]["authMode"] = "AADToken"
    fake.entra_tokens = credential.entra_tokens
    # Tokens say they expire after 3 s: the router renews them half-way. The fake scoring
    # URI accepts them an hour longer, so a renewal a busy machine makes late fails no call.
    credential.entra_lifetime, credential.entra_grace = 3, 3600
    auth = {"kind": "azure-token", "source": "entra"}
    manifest = pushed_manifest("iris", provider, target_options(fake), auth)
    everything(caplog)
    keys_before = len(fake.requests_to("POST", "/listKeys")) + len(
        fake.requests_to("POST", "/token")
    )
    first_call = len(fake.scoring_secrets)

    def used() -> set[str]:
        return set(fake.scoring_secrets[first_call:])

    with RouterInProcess(manifest) as router, httpx.Client(timeout=20) as client:
        assert isinstance(router.upstream().signer, AzureEntraSigner)
        statuses = predict_until(router, client, lambda: len(used()) >= 3, "two renewals")
    assert set(statuses) == {200}, statuses
    assert used() <= set(credential.entra_tokens)
    # renewal is planned half-way to the expiry the token gives
    assert 0 < AzureEntraSigner("azure").refresh() <= credential.entra_lifetime / 2
    assert (ML_SCOPE,) in credential.scopes
    # no ARM call for the secret: the token comes from the credential alone
    keys_after = len(fake.requests_to("POST", "/listKeys")) + len(
        fake.requests_to("POST", "/token")
    )
    assert keys_after == keys_before
    assert "router listening" in caplog.text  # the router's records were captured
    assert not any(token in caplog.text for token in credential.entra_tokens)


def test_entra_without_credentials_names_the_backend_and_the_chain(
    fake: FakeAzureML, no_azure_credentials: None
) -> None:
    signer = AzureMLProvider.router_signer(
        backend(fake, {"kind": "azure-token", "source": "entra"})
    )
    with pytest.raises(MissingDependencyError) as caught:
        signer.refresh()
    message = str(caught.value)
    assert message.startswith("backend azure: no Azure credentials while getting a Microsoft Entra")
    assert "az login" in message and caught.value.exit_code == 3


# -- errors ---------------------------------------------------------------------------------


def test_a_missing_endpoint_is_named_and_keeps_the_backend_out(
    fake: FakeAzureML, router_env: None
) -> None:
    signer = AzureMLProvider.router_signer(backend(fake))
    with pytest.raises(UsageError) as caught:
        signer.refresh()
    assert str(caught.value).startswith(
        f"backend azure: no online endpoint in workspace ws-test has the scoring URI "
        f"{fake.scoring_url}/{EP}/score"
    )
    named = AzureMLProvider.router_signer(
        backend(fake, target={**target_options(fake), "endpoint_name": EP})
    )
    with pytest.raises(
        UsageError, match=f"backend azure: endpoint {EP} does not exist in workspace ws-test"
    ):
        named.refresh()

    from deployer.router.manifest import Manifest

    manifest = Manifest.model_validate(
        {
            "name": "iris",
            "access_log": {"enabled": False},
            "backends": [backend(fake).model_dump()],
        }
    )
    with RouterInProcess(manifest) as router:
        answer = httpx.post(router.url + "/score", content=BODY, timeout=20)
    assert answer.status_code == 503
    reason = answer.json()["unavailable"]["azure"]
    assert reason.startswith("credentials not ready: UsageError: backend azure: no online endpoint")


def test_no_credentials_name_the_backend_and_the_chain(
    fake: FakeAzureML, no_azure_credentials: None
) -> None:
    signer = AzureMLProvider.router_signer(backend(fake))
    with pytest.raises(MissingDependencyError) as caught:
        signer.refresh()
    message = str(caught.value)
    assert message.startswith("backend azure: no Azure credentials while looking for the endpoint")
    assert "EnvironmentCredential" in message and "az login" in message
    assert not fake.requests


def test_a_forbidden_key_listing_names_the_action(fake: FakeAzureML, make_provider: Any) -> None:
    deployed(fake, make_provider)
    action = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/listkeys/action"
    fake.forbid("POST", f"/onlineEndpoints/{EP}/listKeys", action)
    signer = AzureMLProvider.router_signer(backend(fake))
    with pytest.raises(DeployerError) as caught:
        signer.refresh()
    message = str(caught.value)
    assert message.startswith(
        f"backend azure: permission denied while getting the keys of endpoint {EP}: "
        f"the identity may not perform {action}"
    )
    assert "grant a role" in message
    assert fake.keys[EP][0] not in message


def test_the_key_goes_only_to_the_endpoints_own_scoring_uri(
    fake: FakeAzureML, make_provider: Any
) -> None:
    deployed(fake, make_provider)
    elsewhere = backend(
        fake,
        url="https://127.0.0.1:9/elsewhere/score",
        target={**target_options(fake), "endpoint_name": EP},
    )
    signer = AzureMLProvider.router_signer(elsewhere)
    with pytest.raises(UsageError) as caught:
        signer.refresh()
    message = str(caught.value)
    assert "sends an endpoint's key only to its own scoring URI" in message
    assert fake.keys[EP][0] not in message
    assert signer.sign("POST", "u", {}, b"") == {}
    # without endpoint_name no endpoint matches that URL at all
    with pytest.raises(UsageError, match="no online endpoint in workspace ws-test"):
        AzureMLProvider.router_signer(backend(fake, url="https://127.0.0.1:9/x/score")).refresh()


def test_the_endpoint_is_looked_up_by_the_scoring_host_first(
    fake: FakeAzureML, make_provider: Any
) -> None:
    """Azure's scoring URIs are https://NAME.REGION.inference.ml.azure.com/score: the
    host names the endpoint (only parsed here: nothing is sent there)."""
    provider = deployed(fake, make_provider)
    before = len(fake.requests)
    uri = f"https://{EP}.westeurope.inference.ml.azure.com/score"
    assert provider.find_endpoint(uri) is None  # the fake's URI is another one
    calls = [(r.method, r.path.removeprefix(fake.workspace_id)) for r in fake.requests[before:]]
    assert calls[0] == ("GET", f"/onlineEndpoints/{EP}")  # the name the host gives
    assert ("GET", "/onlineEndpoints") in calls  # then a listing, matched by URI
    assert provider.find_endpoint(f"{fake.scoring_url}/{EP}/score/") == EP


def test_key_env_overrides_the_lookup(fake: FakeAzureML, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_TEST_ENDPOINT_KEY", "key-from-env")
    signer = AzureMLProvider.router_signer(
        backend(fake, {"kind": "azure-key", "key_env": "AZURE_TEST_ENDPOINT_KEY"}, target={})
    )
    assert isinstance(signer, AzureKeySigner)
    signer.refresh()
    assert signer.sign("POST", "u", {}, b"") == {"authorization": "Bearer key-from-env"}
    assert "key-from-env" not in repr(signer)
    assert not fake.requests
    monkeypatch.delenv("AZURE_TEST_ENDPOINT_KEY")
    with pytest.raises(DeployerError, match="backend azure: no endpoint key in environment"):
        signer.refresh()


@pytest.mark.parametrize(
    ("auth", "fields", "problem"),
    [
        (
            {"kind": "azure-key", "key_file": "/k"},
            {},
            "backends.azure.auth.key_file: auth azure-key takes no option key_file",
        ),
        (
            {"kind": "azure-token", "source": "aad"},
            {},
            "backends.azure.auth.source: expected endpoint or entra",
        ),
        (
            {"kind": "azure-token", "scope": "https://ml.azure.com/.default"},
            {},
            "backends.azure.auth.scope: only for source: entra",
        ),
        (
            {"kind": "azure-key", "refresh_seconds": 0},
            {},
            "backends.azure.auth.refresh_seconds: expected a number of seconds > 0",
        ),
        ("azure-key", {"target": {}}, "backends.azure.target: the router fetches"),
        (
            "azure-key",
            {"target": {"provider": "azureml", "subscription_id": "s", "resource_group": "r"}},
            "backends.azure.target.workspace: required field is missing",
        ),
        ("sigv4", {}, "backends.azure.auth.kind: azureml backends use azure-key or azure-token"),
    ],
)
def test_auth_options_that_cannot_work_are_configuration_errors(
    fake: FakeAzureML, auth: Any, fields: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        AzureMLProvider.router_signer(backend(fake, auth, **fields))
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems
    assert caught.value.source == "router.yaml"
    assert not fake.requests  # building a signer makes no call


def test_scoring_secret_reports_the_key_without_showing_it(
    fake: FakeAzureML, make_provider: Any
) -> None:
    provider = deployed(fake, make_provider)
    secret = provider.scoring_secret()
    assert (secret.scoring_uri, secret.kind, secret.value) == (
        f"{fake.scoring_url}/{EP}/score",
        "key",
        fake.keys[EP][0],
    )
    assert secret.expires_at is None and not secret.expired()
    assert fake.keys[EP][0] not in repr(secret) and fake.keys[EP][0] not in str(secret)
