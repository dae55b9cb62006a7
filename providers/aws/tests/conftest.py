"""Fixtures for the SageMaker provider's tests: a fake AWS at the wire (see aws_fake.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aws_fake import FakeAws
from aws_support import Recorder
from aws_test_env import CREDENTIAL_VARIABLES, fake_aws_environment

from deployer.providers import ProjectInfo, Target


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Fake credentials; no shared config, no instance metadata: nothing leaves 127.0.0.1."""
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    missing = tmp_path_factory.getbasetemp() / "no-aws-config"
    for name, value in fake_aws_environment(missing).items():
        monkeypatch.setenv(name, value)


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
    fake_server.hold_transforms.set()  # no Batch Transform runner outlives its test
    for transform in list(fake_server.transforms.values()):
        transform.done.wait(120)
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
