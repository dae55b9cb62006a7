"""The ``Provider`` protocol, its optional capabilities, and the check a plugin class
passes when it is loaded.

Required of every provider (a class registered under the ``deployer.providers`` entry
point group, constructed for one target of one project):

- ``name``: the ``provider:`` value of deployer.yaml targets (and the entry point's name);
- ``managed``: True when the target is a managed endpoint (one fixed invoke URL, no
  public health route). The router then sends every request to that URL as is and, for
  health, asks the control plane: it constructs the provider from the backend's
  ``target`` options and calls ``status()`` (healthy and updating serve);
- ``default_router_auth``: the auth kind the router uses for this provider's backends
  when ``route()`` names none (None: ``none``);
- ``plan``, ``publish``, ``deploy``, ``wait``, ``status``, ``invoke``, ``rollback``,
  ``destroy``, ``route``: see ``Provider`` below. ``plan`` takes the strategy as an
  optional ``strategy`` parameter (``plan(release, strategy=None)``) and lists what the
  target would refuse in ``Plan.problems``; the core passes it only to a ``plan`` that
  accepts it (``plan_of``), so older providers keep working.

A ``wait`` whose target went back to the previous version by itself (the platform's
own rollback: SageMaker's auto-rollback or failed update, a removed canary) returns a
not-healthy Status with ``details["rolled_back"] = True`` and ``version`` the version
live now; the orchestrator journals "rolled back by the cloud" and reports the target
"rolled back" without rolling it back again.

Optional capabilities, each complete or absent:

- ``RendersManifests`` (``render_yaml`` and ``write_manifests``): targets declared by
  manifests, for ``deployer render`` (GitOps);
- ``SignsRouterRequests`` (the classmethod ``router_signer(backend) -> Signer``): the
  router signs requests to this provider's backends for its cloud auth kinds.

Optional limits, each a class attribute, an instance attribute set in ``__init__`` or a
property (read from the provider instance with ``getattr`` and a default, so a provider
without them keeps working; see ``limit``):

- ``rollout_allowance_seconds`` (float, default ``DEFAULT_ROLLOUT_ALLOWANCE``): seconds
  one traffic step needs for provisioning, on top of its bake. The push timeout a
  strategy needs is ``steps x (bake + allowance)``;
- ``request_timeout_seconds`` (float, default None: the router's ``timeouts.request``):
  the longest the platform's invoke path answers one request in; the router's
  per-backend timeout;
- ``max_request_bytes`` (int, default None: the router's ``limits.body_mb``): the
  largest request body the platform's invoke path accepts; the router answers 413
  above it, before forwarding.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from deployer.errors import MissingDependencyError

if TYPE_CHECKING:
    from deployer.image.build import Image
    from deployer.providers.signing import RouterBackend, Signer
    from deployer.providers.types import (
        Backend,
        Deployment,
        Invocation,
        Plan,
        Progress,
        ProjectInfo,
        Release,
        Status,
        Strategy,
        Target,
    )


class Provider(Protocol):
    """What every target implements. Constructed for one target of one project; never
    imports another provider; imports its cloud SDK lazily (inside methods)."""

    name: ClassVar[str]
    managed: ClassVar[bool]
    default_router_auth: ClassVar[str | None]

    def __init__(self, target: Target, project: ProjectInfo) -> None: ...

    def plan(self, release: Release, strategy: Strategy | None = None) -> Plan:
        """What a push of ``release`` with ``strategy`` would change. Reads only: changes
        nothing. A strategy the target would refuse (``deploy`` raising UsageError for
        it) is listed in ``Plan.problems``, naming the target, the strategy and what would
        work; None: the strategy is not known, check nothing about it.

        ``strategy`` was added after the first release of this protocol: the core calls
        ``plan`` through ``plan_of``, which passes it only to a ``plan`` that accepts a
        ``strategy`` parameter (or ``**kwargs``), so a provider written before keeps
        working and simply reports no problems."""
        ...

    def publish(self, image: Image, progress: Progress) -> str:
        """Push ``image`` where the platform pulls from; the reference to deploy."""
        ...

    def deploy(
        self, release: Release, image_ref: str, strategy: Strategy, progress: Progress
    ) -> Deployment:
        """Start serving ``release`` (``changed`` False when it already serves it)."""
        ...

    def wait(self, deployment: Deployment, timeout: float, progress: Progress) -> Status:
        """Wait until ``deployment`` serves or fails. A failure leaves (or puts back) the
        previous version serving."""
        ...

    def status(self) -> Status:
        """What the target serves now (``absent`` when nothing is deployed)."""
        ...

    def invoke(self, body: bytes, content_type: str, accept: str | None = None) -> Invocation:
        """One prediction through the platform's own invoke path."""
        ...

    def rollback(self, progress: Progress) -> Deployment:
        """Serve the previous version again (UsageError when there is none)."""
        ...

    def destroy(self, progress: Progress) -> list[str]:
        """Remove what carries this project's and target's labels; what was removed.
        Idempotent: a second call removes nothing and succeeds."""
        ...

    def route(self) -> Backend:
        """How the router reaches this target (URL, auth kind, region)."""
        ...


@runtime_checkable
class RendersManifests(Protocol):
    """Optional capability: providers whose targets are declared by manifests (GitOps)."""

    def render_yaml(self, source: Release | str, *, version: str | None = None) -> str: ...

    def write_manifests(
        self, source: Release | str, folder: Path, *, version: str | None = None
    ) -> list[Path]: ...


class SignsRouterRequests(Protocol):
    """Optional capability: the router signs requests to this provider's backends."""

    @classmethod
    def router_signer(cls, backend: RouterBackend) -> Signer: ...


DEFAULT_ROLLOUT_ALLOWANCE = 600.0
OPTIONAL_LIMITS: dict[str, tuple[type, ...]] = {
    "rollout_allowance_seconds": (int, float),
    "request_timeout_seconds": (int, float),
    "max_request_bytes": (int,),
}


def limit(provider: Any, attribute: str) -> float | None:
    """The optional class attribute ``attribute`` (one of ``OPTIONAL_LIMITS``) of
    ``provider`` (an instance or class): a positive number, or None when it declares
    none or an unusable value (a bool, a string, zero or less)."""
    value = getattr(provider, attribute, None)
    if isinstance(value, bool) or not isinstance(value, OPTIONAL_LIMITS[attribute]):
        return None
    number = float(value)  # type: ignore[arg-type]  # an int or a float, checked above
    return number if number > 0 else None


def rollout_allowance(provider: Any) -> float:
    """Seconds one traffic step of ``provider`` needs besides its bake."""
    return limit(provider, "rollout_allowance_seconds") or DEFAULT_ROLLOUT_ALLOWANCE


METHODS = ("plan", "publish", "deploy", "wait", "status", "invoke", "rollback", "destroy", "route")
CAPABILITIES = {"RendersManifests": ("render_yaml", "write_manifests")}


class InvalidPlugin(MissingDependencyError):
    """A registered provider plugin that does not implement the protocol."""


def plan_of(provider: Any, release: Release, strategy: Strategy | None) -> Plan:
    """``provider.plan(release, strategy=strategy)``, or ``provider.plan(release)`` when
    its ``plan`` takes no ``strategy`` (a provider written before the parameter)."""
    if strategy is not None and _accepts(provider.plan, "strategy"):
        plan: Plan = provider.plan(release, strategy=strategy)
    else:
        plan = provider.plan(release)
    return plan


def _accepts(method: Callable[..., Any], parameter: str) -> bool:
    """Whether ``method`` takes a keyword argument ``parameter``."""
    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        return False
    found = parameters.get(parameter)
    if found is not None:
        return found.kind in (found.POSITIONAL_OR_KEYWORD, found.KEYWORD_ONLY)
    return any(p.kind == p.VAR_KEYWORD for p in parameters.values())


def router_signer(cls: Any) -> Callable[[RouterBackend], Signer] | None:
    """The provider class's ``router_signer``, or None when it has that capability not."""
    factory = getattr(cls, "router_signer", None)
    return factory if callable(factory) else None


def check_plugin(cls: Any, registered_as: str, distribution: str | None = None) -> None:
    """Raise InvalidPlugin naming every required member ``cls`` lacks (or has wrong)."""
    where = f"provider plugin {registered_as!r}"
    if distribution:
        where += f" (from {distribution})"
    if not inspect.isclass(cls):
        raise InvalidPlugin(
            f"{where} is {type(cls).__name__}, not a class implementing deployer.providers."
            "Provider",
            hint="the entry point must name the provider class",
        )
    label = f"{where}, class {cls.__module__}.{cls.__qualname__}"
    problems: list[str] = []
    name = getattr(cls, "name", None)
    if name is None:
        problems.append("missing `name` (the provider: value it serves)")
    elif name != registered_as:
        problems.append(f"`name` is {name!r} but the entry point is {registered_as!r}")
    if not isinstance(getattr(cls, "managed", None), bool):
        problems.append("missing `managed` (a bool class attribute)")
    if not hasattr(cls, "default_router_auth"):
        problems.append("missing `default_router_auth` (an auth kind or None)")
    elif not isinstance(cls.default_router_auth, (str, type(None))):
        problems.append("`default_router_auth` must be an auth kind (str) or None")
    problems += [
        f"missing method `{method}`"
        for method in METHODS
        if not callable(getattr(cls, method, None))
    ]
    for capability, members in CAPABILITIES.items():
        present = [m for m in members if callable(getattr(cls, m, None))]
        if present and len(present) < len(members):
            missing = ", ".join(f"`{m}`" for m in members if m not in present)
            problems.append(f"{capability} is incomplete: missing {missing}")
    problems += [
        f"`{name}` must be a positive number, not {getattr(cls, name)!r}"
        for name in OPTIONAL_LIMITS
        if hasattr(cls, name)
        and not isinstance(inspect.getattr_static(cls, name), property)  # read per instance
        and limit(cls, name) is None
    ]
    if hasattr(cls, "router_signer") and router_signer(cls) is None:
        problems.append("`router_signer` is not callable")
    if problems:
        raise InvalidPlugin(
            f"{label} does not implement deployer.providers.Provider: " + "; ".join(problems),
            hint=f"upgrade or uninstall {distribution or 'the distribution registering it'}",
        )
