"""`deployer router image --with sagemaker`: a router image that signs for SageMaker and asks
its control plane for endpoint status, run as the rendered Kubernetes Deployment runs it
(uid 10001, read-only root filesystem, no capabilities), with host networking on
127.0.0.1. Its backend is a fake SageMaker runtime that verifies SigV4 with botocore
(cloud_signers.py), its control plane moto's SageMaker.

Only sagemaker is built here: botocore's wheels are small; vertex and azureml images are
not built in tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloud_signers import AWS, verify_sigv4
from docker_support import LocalRegistry, free_port
from router_support import JSON_BODY, FakeBackend, manifest, wait_until, write_manifest

pytestmark = [pytest.mark.docker, pytest.mark.slow]
REGION = "eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
# botocore's default chain finds the environment's keys and nothing else: no shared files,
# and never the instance metadata service (no traffic beyond 127.0.0.1).
NO_AMBIENT_AWS = {
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
}
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": AWS["key"],
    "AWS_SECRET_ACCESS_KEY": AWS["secret"],
    "AWS_SESSION_TOKEN": AWS["token"],
}


def router_image(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deployer", "router", "image", *args, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def image(docker: Any) -> dict[str, Any]:
    """The command's JSON answer (built once; later runs reuse the engine's image)."""
    result = router_image("--with", "sagemaker")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


@pytest.fixture(scope="module")
def control_plane() -> Iterator[str]:
    """moto's SageMaker on 127.0.0.1 with one InService endpoint, ``iris-aws``."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        sm = boto3.client(
            "sagemaker",
            region_name=REGION,
            endpoint_url=url,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        sm.create_model(
            ModelName="iris-m",
            ExecutionRoleArn=ROLE,
            PrimaryContainer={"Image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris:1"},
        )
        sm.create_endpoint_config(
            EndpointConfigName="iris-c",
            ProductionVariants=[
                {
                    "VariantName": "main",
                    "ModelName": "iris-m",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        sm.create_endpoint(EndpointName="iris-aws", EndpointConfigName="iris-c")
        yield url
    finally:
        server.stop()


def sagemaker_backend(name: str, runtime: FakeBackend, control_plane: str) -> dict[str, Any]:
    """A router.yaml backend as push writes it for a SageMaker target."""
    return {
        "name": name,
        "provider": "sagemaker",
        "url": f"{runtime.url}/endpoints/iris-{name}/invocations",
        "region": REGION,
        "auth": "sigv4",
        "health": {"source": "control-plane"},
        "target": {
            "region": REGION,
            "role_arn": ROLE,
            "endpoint_name": f"iris-{name}",
            "endpoint_urls": {"sagemaker": control_plane},
        },
    }


class Router:
    """The image's router in a container, as the rendered Deployment runs it."""

    def __init__(
        self, docker: Any, tag: str, data: dict[str, Any], folder: Path, env: dict[str, str]
    ):
        folder.mkdir()
        write_manifest(folder / "router.yaml", data)
        folder.chmod(0o755)
        (folder / "router.yaml").chmod(0o644)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.container = docker.containers.run(
            tag,
            command=[
                "serve",
                "/etc/deployer/router.yaml",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            environment={**NO_AMBIENT_AWS, **env},
            user="10001:10001",
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            tmpfs={"/tmp": "size=16m"},
            volumes={str(folder): {"bind": "/etc/deployer", "mode": "ro"}},
            network_mode="host",
            detach=True,
            labels={"dev.deployer.test": "router-providers-image"},
        )

    def live(self) -> bool:
        try:
            return httpx.get(self.url + "/-/router/live", timeout=1).status_code == 200
        except httpx.TransportError:
            self.container.reload()
            assert self.container.status != "exited", self.logs()
            return False

    def backend(self, name: str) -> dict[str, Any]:
        """The backend's entry in /-/router/health (available or not, and why)."""
        backends = httpx.get(self.url + "/-/router/health", timeout=5).json()["backends"]
        return dict(next(b for b in backends if b["name"] == name))

    def logs(self) -> str:
        return str(self.container.logs().decode(errors="replace"))

    def close(self) -> str:
        logs = self.logs()
        self.container.remove(force=True)
        return logs


@pytest.fixture
def runtime() -> Iterator[FakeBackend]:
    """A fake SageMaker runtime that answers only requests SigV4-signed with AWS's keys."""
    backend = FakeBackend("sagemaker")
    backend.check = verify_sigv4
    yield backend
    backend.close()


def test_the_command_reports_the_image_and_an_unchanged_rebuild_is_a_no_op(
    docker: Any, image: dict[str, Any]
) -> None:
    assert image["ok"] is True and image["providers"] == ["sagemaker"]
    assert image["tag"].startswith("deployer-router:") and "-sagemaker-" in image["tag"]
    assert set(image["distributions"]) == {"deployer", "deployer-router", "deployer-aws"}
    assert any(r.startswith("boto3") for r in image["requirements"])
    assert 0 < image["size"] < 400e6 and image["size_mb"] == round(image["size"] / 1e6, 1)
    labels = docker.api.inspect_image(image["tag"])["Config"]["Labels"]
    assert labels["dev.deployer.router.providers"] == "sagemaker"
    again = router_image("--with", "sagemaker", "--tag", "deployer-router-test:ci")
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert (second["built"], second["id"], second["tag"]) == (False, image["id"], image["tag"])
    # what went in is reported from the image's labels, with nothing rebuilt
    assert (second["distributions"], second["requirements"]) == (
        image["distributions"],
        image["requirements"],
    )
    assert second["tags"] == ["deployer-router-test:ci"] == [second["ref"]]
    assert docker.images.get("deployer-router-test:ci").id == image["id"]
    docker.images.remove("deployer-router-test:ci")


def test_the_image_holds_the_providers_but_no_cli_docker_or_numpy(
    docker: Any, image: dict[str, Any]
) -> None:
    probe = (
        "import importlib.util as u, json;"
        "print(json.dumps({m: u.find_spec(m) is not None for m in "
        "['deployer_aws', 'botocore', 'deployer.providers', 'docker', 'numpy', 'typer']}))"
    )
    output = docker.containers.run(
        image["tag"],
        entrypoint=["/opt/venv/bin/python", "-c", probe],
        remove=True,
        network_mode="none",
    )
    found = json.loads(output)
    assert found == {
        "deployer_aws": True,
        "botocore": True,
        "deployer.providers": True,
        "docker": False,
        "numpy": False,
        "typer": False,
    }


def test_the_containerised_router_signs_for_sagemaker_and_reads_its_control_plane(
    docker: Any, image: dict[str, Any], control_plane: str, runtime: FakeBackend, tmp_path: Path
) -> None:
    data = manifest(
        backends=[
            sagemaker_backend("aws", runtime, control_plane),
            sagemaker_backend("gone", runtime, control_plane),  # no such endpoint
        ]
    )
    router = Router(docker, image["tag"], data, tmp_path / "config", CREDENTIALS)
    try:
        wait_until(router.live, timeout=60, message="router in the image live")
        wait_until(lambda: router.backend("aws")["available"], timeout=30, message="aws up")
        # the health check of "gone" runs on its own: wait until the control plane's answer
        # took it out, so that no request below can be balanced to it
        wait_until(
            lambda: "control plane says absent" in (router.backend("gone")["reason"] or ""),
            timeout=30,
            message="the absent endpoint taken out",
        )
        with httpx.Client(timeout=10) as client:
            for path in ("/invocations", "/v2/models/iris/infer"):
                answer = client.post(
                    router.url + path,
                    content=JSON_BODY,
                    headers={"content-type": "application/json", "authorization": "Bearer x"},
                )
                assert answer.status_code == 200, answer.text
                assert answer.headers["x-deployer-backend"] == "aws"
        seen = runtime.seen[-1]
        assert seen["path"] == "/endpoints/iris-aws/invocations"
        assert verify_sigv4("POST", seen["path"], seen["headers"], seen["body"]) is None
        assert runtime.total() == 2  # nothing went to the endpoint the control plane lacks
        assert router.backend("gone")["available"] is False
    finally:
        logs = router.close()
    assert AWS["secret"] not in logs and AWS["token"] not in logs


def test_without_credentials_the_router_answers_503_naming_why(
    docker: Any, image: dict[str, Any], runtime: FakeBackend, tmp_path: Path
) -> None:
    backend = {
        **sagemaker_backend("aws", runtime, "http://127.0.0.1:9"),
        "health": {"source": "none"},
    }
    backend.pop("target")
    router = Router(docker, image["tag"], manifest(backends=[backend]), tmp_path / "config", {})
    try:
        wait_until(router.live, timeout=60, message="router in the image live")
        answer = httpx.post(router.url + "/invocations", content=JSON_BODY, timeout=10)
        assert answer.status_code == 503
        body = answer.json()
        assert body["error"] == "no backend could answer this request"
        reason = body["unavailable"]["aws"]
        assert reason.startswith("credentials not ready: RuntimeError: no AWS credentials"), body
        assert runtime.total() == 0
    finally:
        router.close()


def test_push_to_a_registry_prints_a_pullable_ref(
    docker: Any, image: dict[str, Any], registry: LocalRegistry
) -> None:
    result = router_image(
        "--with", "sagemaker", "--push", f"{registry.host}/team",
        "--registry-username-env", "TEST_REGISTRY_USER",
        "--registry-password-env", "TEST_REGISTRY_PASSWORD",
        env={"TEST_REGISTRY_USER": registry.username, "TEST_REGISTRY_PASSWORD": registry.password},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    pushed = json.loads(result.stdout)
    assert pushed["built"] is False
    repository, digest = pushed["pushed"].split("@")
    assert repository == f"{registry.host}/team/deployer-router"
    assert digest.startswith("sha256:") and pushed["ref"] == pushed["pushed"]
    assert registry.password not in result.stdout + result.stderr
    docker.images.remove(f"{repository}:{image['tag'].split(':')[1]}")  # the push's local tag
