"""The real image through the real Docker engine: ECR push to the local registry, and the
whole ``Project.push`` flow with invocations answered by a container of the pushed image."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import yaml
from aws_fake import FakeAws
from aws_support import Recorder

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module", autouse=True)
def _clean_up(docker: Any, registry: Any, fake_server: FakeAws) -> Iterator[None]:
    """Afterwards: remove the model containers and the registry references we made."""
    yield
    fake_server.remove_containers()
    for image in docker.images.list(name=f"{registry.host}/iris-test"):
        for ref in [*image.tags, *image.attrs.get("RepoDigests", [])]:
            if ref.startswith(f"{registry.host}/"):
                with contextlib.suppress(Exception):
                    docker.images.remove(ref, noprune=True)


def manifest_exists(registry: Any, repository: str, digest: str) -> bool:
    answer = httpx.get(
        f"http://{registry.host}/v2/{repository}/manifests/{digest}",
        auth=(registry.username, registry.password),
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    return answer.status_code == 200


def test_publish_pushes_with_the_ecr_token(
    docker: Any, registry: Any, iris_image: Any, fake: FakeAws, provider: Any
) -> None:
    fake.registry = registry
    p = provider(project="iris-test")
    progress = Recorder()
    ref = p.publish(iris_image, progress)
    assert ref.startswith(f"{registry.host}/iris-test@sha256:")
    assert manifest_exists(registry, "iris-test", ref.split("@")[1])
    (created,) = fake.calls("CreateRepository")
    assert created["repositoryName"] == "iris-test"
    assert {"Key": "deployer-project", "Value": "iris-test"} in created["tags"]
    assert len(fake.calls("GetAuthorizationToken")) == 1
    assert registry.password not in progress.text
    # publishing again is cheap: the repository exists, every layer is already there
    again = Recorder()
    assert p.publish(iris_image, again) == ref
    assert len(fake.calls("CreateRepository")) == 1
    assert "pushing" in again.text


def test_publish_with_wrong_registry_credentials_fails_clearly(
    docker: Any, registry: Any, iris_image: Any, fake: FakeAws, provider: Any
) -> None:
    from deployer.image.registry import PushError

    fake.registry = type(registry)(registry.host, registry.username, "wrong-password")
    with pytest.raises(PushError) as caught:
        provider(project="iris-test").publish(iris_image, Recorder())
    assert "wrong-password" not in str(caught.value)


@pytest.fixture
def aws_project(iris_project: Any, fake: FakeAws, docker: Any, registry: Any) -> Any:
    """The iris project (same folder, so the same image) with a ``sagemaker`` target."""
    from deployer import Project

    config = {
        "name": iris_project.name,
        "model": {"path": "model.joblib"},
        "targets": {"aws": fake.options(instance_type="ml.c5.large")},
    }
    file = iris_project.root / "aws.deployer.yaml"
    file.write_text(yaml.safe_dump(config))
    fake.registry = registry
    fake.docker = docker  # InvokeEndpoint answers from a container of the pushed image
    return Project.load(file)


def test_project_push_flow_end_to_end(aws_project: Any, fake: FakeAws, registry: Any) -> None:
    events: list[str] = []
    result = aws_project.push(["aws"], timeout=60, events=lambda _t, m: events.append(m))
    (target,) = result.targets
    assert result.ok, (target.error, events)
    assert target.provider == "sagemaker" and target.outcome == "updated"
    assert target.version == result.version and target.previous_version is None
    assert target.live_version == result.version
    assert target.url.endswith("/endpoints/iris-test-aws/invocations")
    assert "smoke test passed: 2 rows" in events
    (model,) = fake.calls("CreateModel")
    image = model["PrimaryContainer"]["Image"]
    assert image.startswith(f"{registry.host}/iris-test@sha256:")
    assert manifest_exists(registry, "iris-test", image.split("@")[1])

    # predictions come from the real model through InvokeEndpoint
    answer = aws_project.predict("aws", b"[[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]")
    assert answer.status == 200
    assert orjson.loads(answer.body)["predictions"] == [0, 2]
    csv = aws_project.predict("aws", b"5.1,3.5,1.4,0.2\n", "text/csv", "text/csv")
    assert csv.status == 200 and csv.body.strip() == b"0"
    # the container's 400 comes back through SageMaker's ModelError with its own answer
    wrong = aws_project.predict("aws", b"[[1, 2]]")
    assert wrong.status == 400 and b"error" in wrong.body

    # pushing the same image again changes nothing
    again = aws_project.push(["aws"], timeout=60)
    assert again.ok and again.targets[0].outcome == "unchanged"
    assert len(fake.calls("CreateEndpoint")) == 1 and fake.calls("UpdateEndpoint") == []

    (status,) = aws_project.status(["aws"])
    assert status.healthy and status.version == result.version
    removed = aws_project.destroy(["aws"])["aws"]
    assert "endpoint iris-test-aws" in removed
    (gone,) = aws_project.status(["aws"])
    assert gone.state == "absent"
