"""Publishing the image to the target's registry, with credentials named by env vars."""

from __future__ import annotations

import os
import re

from deployer.providers import (
    DeployerError,
    Image,
    MissingDependencyError,
    Progress,
    PushError,
    RegistryAuth,
    push_image,
)
from deployer_kubernetes.options import KubernetesOptions

_AUTH_FAILURE = re.compile(r"unauthori[sz]ed|authentication required|no basic auth|denied", re.I)


def registry_auth(options: KubernetesOptions, target: str) -> RegistryAuth | None:
    """Credentials from the environment variables the options name; None pushes with the
    engine's own credentials (``docker login``) or anonymously."""
    if options.registry_username_env is None or options.registry_password_env is None:
        return None
    missing = [
        name
        for name in (options.registry_username_env, options.registry_password_env)
        if not os.environ.get(name)
    ]
    if missing:
        raise MissingDependencyError(
            f"registry credentials for {options.registry} are missing: "
            f"{', '.join('$' + m for m in missing)} {'is' if len(missing) == 1 else 'are'} not set",
            hint=f"export them, or remove targets.{target}.registry_username_env and "
            "registry_password_env to push with `docker login` credentials",
        )
    return RegistryAuth(
        os.environ[options.registry_username_env], os.environ[options.registry_password_env]
    )


def publish(options: KubernetesOptions, target: str, image: Image, progress: Progress) -> str:
    """Push ``image`` to ``options.registry`` tagged with its version; return repo@digest."""
    if not options.registry:
        progress(
            f"no registry set for {target}: the cluster must already have {image.ref} "
            "(e.g. `kind load docker-image`)"
        )
        return image.ref
    from deployer.providers import docker_client

    auth = registry_auth(options, target)
    client = docker_client()
    progress(f"pushing {image.ref} to {options.registry}:{image.version}")
    try:
        return push_image(client, image.id, options.registry, image.version, auth, progress)
    except PushError as exc:
        if _AUTH_FAILURE.search(exc.message):
            tried = (
                f"${options.registry_username_env}/${options.registry_password_env}"
                if auth
                else f"targets.{target}.registry_username_env/registry_password_env (unset), "
                "then the Docker engine's own credentials (none for this registry)"
            )
            raise MissingDependencyError(
                f"{exc.message} (credentials tried: {tried})",
                hint="set registry_username_env and registry_password_env to the names of "
                "environment variables holding a user and token allowed to push",
            ) from None
        raise DeployerError(exc.message, hint=f"check targets.{target}.registry") from None
