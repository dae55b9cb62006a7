"""Reach the Docker engine, or explain exactly why not."""

from __future__ import annotations

import os
from typing import Any

from deployer.errors import MissingDependencyError


def docker_client(timeout: int = 300) -> Any:
    """A docker SDK client that has answered a ping."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        raise MissingDependencyError(
            "the 'docker' Python package is not installed", hint="pip install 'deployer[docker]'"
        ) from None
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except DockerException as exc:
        raise MissingDependencyError(
            f"cannot reach a Docker engine at {host}: {_reason(exc)}",
            hint="install Docker and start it (`sudo systemctl start docker`, or run `dockerd`); "
            "set DOCKER_HOST for a remote engine",
        ) from None
    return client


def _reason(exc: Exception) -> str:
    text = str(exc)
    if "FileNotFoundError" in text or "No such file" in text:
        return "the socket does not exist (Docker is not installed or not running)"
    if "Connection refused" in text:
        return "connection refused (the daemon is not running)"
    if "Permission denied" in text:
        return "permission denied (add your user to the 'docker' group)"
    return text


def require_image(client: Any, ref: str) -> Any:
    """The local image ``ref``, or an error saying how to get it."""
    from docker.errors import ImageNotFound

    from deployer.errors import UsageError

    try:
        return client.images.get(ref)
    except ImageNotFound:
        raise UsageError(
            f"image {ref} is not on this machine", hint="build it with: deployer build"
        ) from None
