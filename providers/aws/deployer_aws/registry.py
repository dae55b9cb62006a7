"""ECR: make sure the repository exists (tagged), get a short-lived token, push the image."""

from __future__ import annotations

import base64
from urllib.parse import urlparse

from deployer.providers import DeployerError, Image, Progress, RegistryAuth
from deployer_aws import names
from deployer_aws.aws import Aws


def repository_exists(aws: Aws, repository: str) -> dict[str, str] | None:
    """The repository's description, or None when it does not exist."""
    found = aws.call(
        "ecr",
        "describe_repositories",
        f"ECR repository {repository}",
        absent="RepositoryNotFoundException",
        repositoryNames=[repository],
    )
    if not found or not found.get("repositories"):
        return None
    return dict(found["repositories"][0])


def ensure_repository(
    aws: Aws, repository: str, project: str, target: str, progress: Progress
) -> None:
    if repository_exists(aws, repository) is not None:
        return
    progress(f"creating ECR repository {repository}")
    aws.call(
        "ecr",
        "create_repository",
        f"ECR repository {repository}",
        repositoryName=repository,
        imageScanningConfiguration={"scanOnPush": True},
        tags=names.tags(project, target),
    )


def registry_login(aws: Aws, repository: str) -> tuple[str, RegistryAuth]:
    """(registry host, credentials) from ``get_authorization_token`` (valid for 12 hours)."""
    answer = aws.call("ecr", "get_authorization_token", f"ECR registry for {repository}")
    data = (answer or {}).get("authorizationData") or []
    if not data:
        raise DeployerError("ECR returned no authorization data")
    token = base64.b64decode(data[0]["authorizationToken"]).decode()
    username, _, password = token.partition(":")
    endpoint = data[0]["proxyEndpoint"]
    host = urlparse(endpoint).netloc or endpoint
    return host, RegistryAuth(username, password)


def publish(
    aws: Aws, image: Image, repository: str, project: str, target: str, progress: Progress
) -> str:
    """Push ``image`` to ECR as ``HOST/REPOSITORY:VERSION``; return ``HOST/REPOSITORY@sha256:``."""
    from deployer.providers import docker_client, push_image

    ensure_repository(aws, repository, project, target, progress)
    host, auth = registry_login(aws, repository)
    progress(f"pushing {image.ref} to {host}/{repository}:{image.version}")
    return push_image(
        docker_client(), image.id, f"{host}/{repository}", image.version, auth, progress
    )


def delete_repository(aws: Aws, repository: str, project: str) -> bool:
    """Delete the repository (and its images) if deployer created it for ``project``."""
    found = repository_exists(aws, repository)
    if found is None:
        return False
    listed = aws.call(
        "ecr",
        "list_tags_for_resource",
        f"ECR repository {repository}",
        resourceArn=found["repositoryArn"],
    )
    tags = names.tag_map(listed.get("tags", []))
    if tags.get(names.TAG_PROJECT) != project:
        return False
    aws.call(
        "ecr",
        "delete_repository",
        f"ECR repository {repository}",
        absent="RepositoryNotFoundException",
        repositoryName=repository,
        force=True,
    )
    return True
