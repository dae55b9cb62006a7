"""Fixtures: the fake Azure ML cloud over TLS, a fake TokenCredential, provider factories."""

from __future__ import annotations

import os
import socket
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():  # the SDK's schemas warn about marshmallow 4 at import
    warnings.simplefilter("ignore")
    import azure.ai.ml  # noqa: F401

from azure_fake import FakeAzureML
from azure_support import FakeCredential, target_options
from tls_support import TLSCertificate, make_certificate

from deployer.providers import ProjectInfo, Target
from deployer_azure.auth import make_credential as REAL_MAKE_CREDENTIAL  # before any fake


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> TLSCertificate:
    return make_certificate(tmp_path_factory.mktemp("azure-tls"))


@pytest.fixture(autouse=True)
def _azure_environment(
    certificate: TLSCertificate, monkeypatch: pytest.MonkeyPatch
) -> FakeCredential:
    """Trust the fake's certificate; the fake credential; no state leaks between tests."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate.cert))
    monkeypatch.delenv("AZUREML_CURRENT_CLOUD", raising=False)
    monkeypatch.delenv("AZUREML_DEV_URL_MFE", raising=False)
    credential = FakeCredential()
    monkeypatch.setattr("deployer_azure.auth.make_credential", lambda: credential)
    return credential


@pytest.fixture
def credential(_azure_environment: FakeCredential) -> FakeCredential:
    """The fake credential every Azure call of this test uses."""
    return _azure_environment


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to open a network connection beyond the loopback interface."""
    original = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in (
            "127.0.0.1",
            "::1",
        ):
            raise AssertionError(f"the test tried to reach {address}")
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture
def no_azure_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, loopback_only: None
) -> None:
    """The real DefaultAzureCredential on a machine with no credentials at all."""
    from deployer_azure import auth

    for name in list(os.environ):
        if name.startswith(("AZURE_", "MSI_", "IDENTITY_", "IMDS_")):
            monkeypatch.delenv(name)
    # a managed-identity endpoint that refuses (instead of probing the real IMDS address)
    monkeypatch.setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "unused")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # no az, azd or pwsh to ask
    monkeypatch.setattr(auth, "make_credential", REAL_MAKE_CREDENTIAL)


@pytest.fixture
def fake(certificate: TLSCertificate) -> Iterator[FakeAzureML]:
    cloud = FakeAzureML(certificate)
    yield cloud
    cloud.close()


@pytest.fixture
def make_provider(fake: FakeAzureML) -> Callable[..., Any]:
    from deployer_azure.provider import AzureMLProvider

    def make(target: str = "azure", project: str = "iris", **options: Any) -> AzureMLProvider:
        opts = target_options(fake, **options)
        return AzureMLProvider(Target(target, "azureml", opts), ProjectInfo(project))

    return make
