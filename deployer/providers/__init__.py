"""The provider SDK: everything a provider plugin author reads, and all a provider imports.

A provider is a plugin: a class registered under the entry-point group
``deployer.providers`` (the built-in ``local`` one too), constructed for one target (its
name and options from deployer.yaml) and one project. It imports this package, its own
package, its cloud SDK (lazily, inside methods) and the standard library; nothing else
of deployer, and never another provider. What is here:

- the data it takes and returns (``types``): ``Target``, ``ProjectInfo``, ``Release``,
  ``Strategy``, ``Plan``/``Change``, ``Deployment``, ``Status``, ``Invocation``,
  ``Backend``, ``Progress``, and the labels that mark what deployer owns;
- the ``Provider`` protocol and its optional capabilities (``protocol``): what is
  required (``name``, ``managed``, ``default_router_auth`` and nine methods), manifests
  (``RendersManifests``), request signing for the router (``SignsRouterRequests``:
  ``router_signer(backend) -> Signer``) and managed-endpoint health (``managed`` plus
  ``status``). A plugin is checked when loaded: one missing a required member fails
  with a message naming the member and the plugin;
- the registry (``registry``): discovery through entry points and the one table of the
  distributions that ship the providers we know of;
- signing (``signing``): ``Signer``, ``refresh_after``;
- ``parse_options``: a target's options through a pydantic model, errors naming the field;
- helpers (loaded on first use): the built ``Image``, ``push_image`` with
  ``RegistryAuth``/``PushError``, ``docker_client``, the serving ``routes``, running a
  container locally (``run_container``, ``wait_healthy``, ...), and the errors
  (``DeployerError``, ``UsageError``, ``ConfigError``, ``MissingDependencyError``);
- data URIs (``data_sources``): ``open_uri``, and what a provider's opener returns
  (``RemoteObject``, a ``DataObject``) and uses (``split_uri``);
- ``deployer.providers.testing``: the conformance kit a provider's tests run against
  its own fake (see providers/README.md, "How to add a provider").
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from deployer.errors import ConfigError, DeployerError, MissingDependencyError, UsageError
from deployer.providers.data_sources import DataObject, RemoteObject, open_uri, split_uri
from deployer.providers.options import parse_options
from deployer.providers.protocol import (
    DEFAULT_ROLLOUT_ALLOWANCE,
    InvalidPlugin,
    Provider,
    RendersManifests,
    SignsRouterRequests,
    check_plugin,
    limit,
    plan_of,
    rollout_allowance,
    router_signer,
)
from deployer.providers.registry import (
    DISTRIBUTIONS,
    ENTRY_POINT_GROUP,
    KNOWN_DISTRIBUTIONS,
    Declared,
    available_providers,
    declared,
    distribution,
    provider_class,
)
from deployer.providers.signing import FOREVER, RouterBackend, Signer, refresh_after
from deployer.providers.types import (
    ANNOTATION_GIT_COMMIT,
    ANNOTATION_KEYS,
    ANNOTATION_MODEL,
    ANNOTATION_PUSHED_BY,
    ANNOTATION_RELEASE,
    IMAGE_ACCELERATOR_LABEL,
    LABEL_PROJECT,
    LABEL_TARGET,
    LABEL_VERSION,
    Backend,
    Change,
    Deployment,
    Invocation,
    Plan,
    Progress,
    ProjectInfo,
    Release,
    State,
    Status,
    Strategy,
    Target,
)

if TYPE_CHECKING:
    from deployer.image.build import Image
    from deployer.image.containers import (
        ContainerFailed,
        RunningContainer,
        port_in_use,
        run_container,
        wait_healthy,
    )
    from deployer.image.engine import docker_client
    from deployer.image.registry import PushError, RegistryAuth, push_image
    from deployer.providers import live
    from deployer.serving import routes

# Helpers imported on first use, so importing the SDK stays light (the router image
# holds it without the image or serving packages).
_HELPERS = {
    "Image": "deployer.image.build",
    "ContainerFailed": "deployer.image.containers",
    "RunningContainer": "deployer.image.containers",
    "port_in_use": "deployer.image.containers",
    "run_container": "deployer.image.containers",
    "wait_healthy": "deployer.image.containers",
    "docker_client": "deployer.image.engine",
    "PushError": "deployer.image.registry",
    "RegistryAuth": "deployer.image.registry",
    "push_image": "deployer.image.registry",
    "routes": "deployer.serving.routes",
    "live": "deployer.providers.live",  # live gates: signals, verdicts, the watched bake
}


def __getattr__(name: str) -> Any:
    module = _HELPERS.get(name)
    if module is None:
        raise AttributeError(f"module 'deployer.providers' has no attribute {name!r}")
    loaded = importlib.import_module(module)
    value = loaded if module.endswith("." + name) else getattr(loaded, name)
    globals()[name] = value
    return value


__all__ = [
    "ANNOTATION_GIT_COMMIT",
    "ANNOTATION_KEYS",
    "ANNOTATION_MODEL",
    "ANNOTATION_PUSHED_BY",
    "ANNOTATION_RELEASE",
    "DEFAULT_ROLLOUT_ALLOWANCE",
    "DISTRIBUTIONS",
    "ENTRY_POINT_GROUP",
    "FOREVER",
    "IMAGE_ACCELERATOR_LABEL",
    "KNOWN_DISTRIBUTIONS",
    "LABEL_PROJECT",
    "LABEL_TARGET",
    "LABEL_VERSION",
    "Backend",
    "Change",
    "ConfigError",
    "ContainerFailed",
    "DataObject",
    "Declared",
    "DeployerError",
    "Deployment",
    "Image",
    "InvalidPlugin",
    "Invocation",
    "MissingDependencyError",
    "Plan",
    "Progress",
    "ProjectInfo",
    "Provider",
    "PushError",
    "RegistryAuth",
    "Release",
    "RemoteObject",
    "RendersManifests",
    "RouterBackend",
    "RunningContainer",
    "Signer",
    "SignsRouterRequests",
    "State",
    "Status",
    "Strategy",
    "Target",
    "UsageError",
    "available_providers",
    "check_plugin",
    "declared",
    "distribution",
    "docker_client",
    "limit",
    "live",
    "open_uri",
    "parse_options",
    "plan_of",
    "port_in_use",
    "provider_class",
    "push_image",
    "refresh_after",
    "rollout_allowance",
    "router_signer",
    "routes",
    "run_container",
    "split_uri",
    "wait_healthy",
]
