"""Fixtures: the fake Azure ML cloud over TLS, a fake TokenCredential, provider factories."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

with warnings.catch_warnings():  # the SDK's schemas warn about marshmallow 4 at import
    warnings.simplefilter("ignore")
    import azure.ai.ml  # noqa: F401

from azure_fake import FakeAzureML
from azure_support import FakeCredential, target_options
from azure_tls import TLSCertificate, make_certificate

from deployer.providers import ProjectInfo, Target


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
