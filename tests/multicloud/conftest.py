"""Fixtures for the multi-cloud tests: the three providers' own fakes, side by side.

The AWS (moto, plain HTTP), Vertex AI (gRPC over TLS) and Azure ML (ARM over HTTPS)
fakes come from each provider's tests folder (an import root in pyproject's pytest
``pythonpath``). Only their helper modules are imported, never their conftest.py
files (their fixtures share names such as ``fake`` and ``provider``). Each cloud has
its own docker-registry on 127.0.0.1 (ECR, Artifact Registry and the workspace's ACR)
and answers predictions from real containers of the pushed image, so the real SDKs,
the real registry pushes and the real model run.

- ``clouds`` (module): the three fakes, their registries and the test credentials;
- ``multicloud`` (function): the fakes reset, a fresh Azure cloud and fresh container
  runtimes, plus ``project(model_path)``: the iris project with targets ``aws``
  (sagemaker), ``gcp`` (vertex) and ``azure`` (azureml). Containers are removed after.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROVIDER_TESTS = {name: REPO / "providers" / name / "tests" for name in ("aws", "gcp", "azure")}

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # no GOAWAY notes when the fake stops
with warnings.catch_warnings():  # the Azure SDK's schemas warn about marshmallow 4 at import
    warnings.simplefilter("ignore")
    import azure.ai.ml  # noqa: F401

import azure_runtime  # noqa: E402
import google.auth  # noqa: E402
import vertex_runtime  # noqa: E402
from aws_fake import FakeAws  # noqa: E402
from aws_test_env import CREDENTIAL_VARIABLES, fake_aws_environment  # noqa: E402
from azure_fake import FakeAzureML  # noqa: E402
from azure_support import FakeCredential  # noqa: E402
from azure_support import target_options as azure_options  # noqa: E402
from docker_support import LocalRegistry, remove_tags, run_registry  # noqa: E402
from tls_support import TLSCertificate, make_certificate  # noqa: E402
from vertex_fake import FakeVertex  # noqa: E402
from vertex_support import PROJECT_ID, REGISTRY_USER, TOKEN, FakeCredentials  # noqa: E402
from vertex_support import options as vertex_options  # noqa: E402

from deployer import Project  # noqa: E402

POLL = 0.05  # seconds between polls, for every provider


# -- registries --------------------------------------------------------------------------


# -- TLS for the fake Vertex -------------------------------------------------------------


def vertex_certificate(config: pytest.Config, ours: TLSCertificate) -> tuple[bytes, bytes]:
    """(certificate, key) for the fake Vertex that this process's gRPC trusts.

    gRPC reads GRPC_DEFAULT_SSL_ROOTS_FILE_PATH once per process, at its first TLS
    channel. When the Vertex provider's conftest is loaded (a whole-repository run) it has
    named its own CA there at import, so its certificate is reused; otherwise ours is
    named before any channel exists.
    """
    gcp = _loaded_conftest(config, PROVIDER_TESTS["gcp"] / "conftest.py")
    if gcp is not None:
        return gcp.CERTIFICATE, gcp.KEY
    os.environ["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = str(ours.cert)
    return ours.cert.read_bytes(), ours.key.read_bytes()


def _loaded_conftest(config: pytest.Config, path: Path) -> Any | None:
    for plugin in config.pluginmanager.get_plugins():
        if Path(getattr(plugin, "__file__", None) or "/nonexistent") == path:
            return plugin
    return None


# -- the three clouds --------------------------------------------------------------------


@dataclass
class Clouds:
    """The fakes and their registries (module scope); Azure and the runtimes per test."""

    docker: Any
    certificate: TLSCertificate
    aws: FakeAws
    vertex: FakeVertex
    registries: dict[str, LocalRegistry]
    azure: FakeAzureML | None = None
    vertex_runtime: vertex_runtime.DockerRuntime | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def registry(self, cloud: str) -> LocalRegistry:
        """The registry of ``cloud`` (aws: ECR, gcp: Artifact Registry, azure: ACR)."""
        return self.registries[cloud]

    def auth(self, cloud: str) -> dict[str, str]:
        """``cloud``'s registry credentials, as the docker SDK's auth_config."""
        registry = self.registry(cloud)
        return {"username": registry.username, "password": registry.password}

    def open(self) -> None:
        """A clean state for one test: scripts cleared, new Azure cloud, new runtimes."""
        self.aws.reset()
        self.aws.registry, self.aws.docker = self.registry("aws"), self.docker
        self.vertex.reset()
        self.vertex.expected_token = TOKEN
        self.vertex_runtime = vertex_runtime.DockerRuntime(self.docker, self.auth("gcp"))
        self.vertex.runtime = self.vertex_runtime
        acr = self.registry("azure")
        runtime = azure_runtime.DockerRuntime(self.docker, self.auth("azure"))
        self.azure = FakeAzureML(
            self.certificate, (acr.host, acr.username, acr.password), runtime=runtime
        )

    def close(self) -> None:
        """Remove every container the fakes started, and the per-test Azure cloud."""
        self.aws.remove_containers()
        if self.vertex_runtime is not None:
            self.vertex_runtime.close()
        self.vertex.reset()
        if self.azure is not None:
            self.azure.close()  # also removes its runtime's containers
            self.azure = None

    def targets(self) -> dict[str, dict[str, Any]]:
        """deployer.yaml ``targets``: aws, gcp and azure on the fakes, polling fast."""
        assert self.azure is not None, "open() first"
        gar = f"{self.registry('gcp').host}/{PROJECT_ID}/deployer"
        return {
            "aws": self.aws.options(instance_type="ml.c5.large", poll_interval=POLL),
            "gcp": vertex_options(self.vertex.address, registry=gar, poll_interval=POLL),
            "azure": azure_options(self.azure, poll_interval=POLL),
        }


@pytest.fixture(scope="module")
def cloud_credentials(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TLSCertificate]:
    """Test credentials for the three SDKs (nothing leaves 127.0.0.1); the Azure TLS cert."""
    certificate = make_certificate(tmp_path_factory.mktemp("multicloud-tls"))
    missing = tmp_path_factory.getbasetemp() / "no-aws-config"
    azure_credential = FakeCredential()
    google_credentials = FakeCredentials(TOKEN)
    with pytest.MonkeyPatch.context() as patch:
        for name in CREDENTIAL_VARIABLES:
            patch.delenv(name, raising=False)
        for name, value in {
            **fake_aws_environment(missing),
            "REQUESTS_CA_BUNDLE": str(certificate.cert),
        }.items():
            patch.setenv(name, value)
        patch.setattr("deployer_azure.auth.make_credential", lambda: azure_credential)
        patch.setattr(google.auth, "default", lambda *_a, **_k: (google_credentials, PROJECT_ID))
        yield certificate


@pytest.fixture(scope="module")
def clouds(
    request: pytest.FixtureRequest,
    docker: Any,
    cloud_credentials: TLSCertificate,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Clouds]:
    """The fake AWS, Vertex AI and Azure ML, with one registry per cloud."""
    folder = tmp_path_factory.mktemp("multicloud-registries")
    users = {"aws": ("ecr-user", "ecr-secret"), "gcp": (REGISTRY_USER, TOKEN)}
    users["azure"] = ("acr-user", "acr-secret")
    registries: dict[str, LocalRegistry] = {}
    with contextlib.ExitStack() as cleanup:
        hosts = {r.host for r in registries.values()}
        cleanup.callback(lambda: remove_tags(docker, lambda ref: ref.split("/", 1)[0] in hosts))
        for cloud, (username, password) in users.items():
            (folder / cloud).mkdir()
            registries[cloud] = cleanup.enter_context(
                run_registry(folder / cloud, username, password)
            )
        aws = FakeAws().start()
        cleanup.callback(aws.stop)
        vertex = FakeVertex(*vertex_certificate(request.config, cloud_credentials))
        vertex.start()
        cleanup.callback(vertex.stop)
        yield Clouds(docker, cloud_credentials, aws, vertex, registries)


ProjectFactory = Callable[[str], Project]


@dataclass
class MultiCloud:
    """One test's clouds and the way to load the project for a model file."""

    clouds: Clouds
    project: ProjectFactory


@pytest.fixture
def multicloud(clouds: Clouds, iris_project: Project) -> Iterator[MultiCloud]:
    """``multicloud.project(model_path)``: the iris project with targets aws, gcp, azure.

    The deployer.yaml goes into the session's iris project folder (model paths relative
    to it), so version A (``model.joblib``) reuses the session's ``iris_image`` build.
    """
    clouds.open()
    written: list[Path] = []

    def project(model_path: str) -> Project:
        config = {
            "name": iris_project.name,
            "model": {"path": model_path},
            "targets": clouds.targets(),
        }
        file = iris_project.root / f"multicloud-{len(written)}.deployer.yaml"
        file.write_text(yaml.safe_dump(config, sort_keys=False))
        written.append(file)
        return Project.load(file)

    try:
        yield MultiCloud(clouds, project)
    finally:
        clouds.close()
        for file in written:
            file.unlink(missing_ok=True)
