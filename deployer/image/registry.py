"""Push an image to a registry with credentials passed explicitly.

This is the path every cloud provider uses (ECR, Artifact Registry, ACR): the provider
gets a short-lived token from its cloud and hands it here. Credentials go to the engine
with the push request only; nothing is written to ~/.docker/config.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deployer.errors import DeployerError
from deployer.image.build import Progress


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for one push. ``repr`` never shows the password."""

    username: str
    password: str = field(repr=False)


class PushError(DeployerError):
    """The registry refused the push or the engine could not reach it."""


def push_image(
    client: Any,
    image_id: str,
    repository: str,
    tag: str,
    auth: RegistryAuth | None,
    progress: Progress,
) -> str:
    """Tag ``image_id`` as ``repository:tag``, push it, return ``repository@sha256:...``."""
    from docker.errors import APIError

    client.api.tag(image_id, repository, tag)
    auth_config = {"username": auth.username, "password": auth.password} if auth else None
    digest = ""
    pushed = 0
    try:
        stream = client.api.push(
            repository, tag=tag, auth_config=auth_config, stream=True, decode=True
        )
        for chunk in stream:
            if "error" in chunk:
                raise PushError(
                    f"push of {repository}:{tag} failed: {_clean(chunk['error'], auth)}"
                )
            status = chunk.get("status", "")
            if status in ("Pushed", "Layer already exists"):
                pushed += 1
                progress(f"{repository}: {pushed} layer(s) in the registry")
            digest = chunk.get("aux", {}).get("Digest", digest)
    except APIError as exc:
        raise PushError(
            f"push of {repository}:{tag} failed: {_clean(str(exc.explanation or exc), auth)}"
        ) from None
    if not digest:
        raise PushError(f"push of {repository}:{tag} ended without a digest")
    return f"{repository}@{digest}"


def _clean(message: str, auth: RegistryAuth | None) -> str:
    """Never echo a password back, whatever the registry puts in its error."""
    if auth and auth.password:
        message = message.replace(auth.password, "***")
    return message.strip()
