"""Push the image to Artifact Registry with a short-lived Google access token."""

from __future__ import annotations

from typing import Any

from deployer.providers import DeployerError, Image, Progress
from deployer_gcp import names
from deployer_gcp.credentials import access_token

# Artifact Registry (and Container Registry) accept an OAuth access token as the
# password of this fixed user name.
TOKEN_USER = "oauth2accesstoken"


def publish(
    image: Image, registry: str, image_name: str, credentials: Any, progress: Progress
) -> str:
    """Push ``image`` to ``REGISTRY/IMAGE:VERSION``; return ``REGISTRY/IMAGE@sha256:...``."""
    from deployer.providers import PushError, RegistryAuth, docker_client, push_image

    repository = names.image_repository(registry, image_name)
    auth = RegistryAuth(TOKEN_USER, access_token(credentials))
    progress(f"pushing {image.ref} to {repository}:{image.version}")
    try:
        return push_image(docker_client(), image.id, repository, image.version, auth, progress)
    except PushError as exc:
        raise DeployerError(
            exc.message,
            hint=_hint(registry, exc.message),
        ) from None


def _hint(registry: str, message: str) -> str:
    lowered = message.lower()
    if "denied" in lowered or "unauthorized" in lowered or "403" in lowered:
        return (
            f"the account ADC uses needs roles/artifactregistry.writer on the repository {registry}"
        )
    if "not found" in lowered or "name unknown" in lowered:
        return (
            "create the repository first: gcloud artifacts repositories create REPOSITORY "
            "--repository-format=docker --location=REGION (or set the registry option)"
        )
    return f"check that {registry} is reachable and is a docker repository"
