"""Fixtures for the SageMaker provider's tests: a fake AWS at the wire (see aws_fake.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aws_fake import FakeAws
from aws_support import Recorder

from deployer.providers import ProjectInfo, Target

CREDENTIAL_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_ENDPOINT_URL",
)


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Fake credentials; no shared config, no instance metadata: nothing leaves 127.0.0.1."""
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    missing = tmp_path_factory.getbasetemp() / "no-aws-config"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(missing / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(missing / "credentials"))
    monkeypatch.setenv("BOTO_CONFIG", str(missing / "boto.cfg"))


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeAws]:
    fake = FakeAws().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(fake_server: FakeAws) -> Iterator[FakeAws]:
    """The fake AWS, reset before each test."""
    fake_server.reset()
    yield fake_server
    fake_server.registry = None
    fake_server.docker = None


ProviderFactory = Callable[..., Any]


@pytest.fixture
def provider(fake: FakeAws) -> ProviderFactory:
    """``provider(target="prod", project="iris", **options)``: a SageMakerProvider on the fake."""
    from deployer_aws.provider import SageMakerProvider

    def make(target: str = "prod", project: str = "iris", **options: Any) -> SageMakerProvider:
        return SageMakerProvider(
            Target(target, "sagemaker", fake.options(**options)), ProjectInfo(project)
        )

    return make


@pytest.fixture
def progress() -> Recorder:
    return Recorder()
