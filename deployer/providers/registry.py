"""Discovery of provider plugins through entry points, and the one table of the
distributions that ship the providers we know of (to say what to install)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

from deployer.errors import MissingDependencyError, UsageError
from deployer.providers.protocol import check_plugin

if TYPE_CHECKING:
    from deployer.providers.protocol import Provider

ENTRY_POINT_GROUP = "deployer.providers"
# provider name -> the distribution that ships it. Only for messages: what a provider
# can do is declared by its class, never looked up here by name.
DISTRIBUTIONS = {
    "sagemaker": "deployer-aws",
    "vertex": "deployer-gcp",
    "azureml": "deployer-azure",
    "kubernetes": "deployer-kubernetes",
}
KNOWN_DISTRIBUTIONS = DISTRIBUTIONS  # the name it had before


def distribution(provider: str) -> str:
    """The distribution to install for ``provider`` (a phrase when it is not one we know)."""
    return DISTRIBUTIONS.get(provider, f"the distribution providing {provider!r}")


def available_providers() -> dict[str, metadata.EntryPoint]:
    """The installed plugins by provider name."""
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def provider_class(name: str) -> type[Provider]:
    """The provider plugin called ``name``, checked against the protocol (InvalidPlugin
    names what it lacks), or an error saying which distribution to install."""
    import deployer.providers as sdk  # through the package: tests may replace its lookup

    installed = sdk.available_providers()
    entry = installed.get(name)
    if entry is None:
        if name in DISTRIBUTIONS:
            raise MissingDependencyError(
                f"provider {name!r} is not installed", hint=f"pip install {DISTRIBUTIONS[name]}"
            )
        known = ", ".join(sorted(installed)) or "none"
        raise UsageError(f"unknown provider {name!r}; installed providers: {known}")
    cls = entry.load()
    dist = getattr(entry, "dist", None)
    check_plugin(cls, name, dist.name if dist is not None else None)
    return cls


@dataclass(frozen=True)
class Declared:
    """What a provider class declares for the router (see ``Provider``)."""

    managed: bool = False
    default_router_auth: str | None = None


_declared: dict[str, tuple[object, Declared]] = {}


def declared(provider: str) -> Declared:
    """What the installed ``provider`` plugin declares: whether its endpoints are managed
    and its default router auth kind. A provider that is not installed (or fails to load)
    declares nothing: not managed, no default auth. Cached while the lookup functions
    stay the same (tests replace them)."""
    import deployer.providers as sdk

    lookup = (sdk.provider_class, sdk.available_providers)
    cached = _declared.get(provider)
    if cached is not None and cached[0] == lookup:
        return cached[1]
    try:
        cls: Any = sdk.provider_class(provider)
    except Exception:  # not installed, or broken: the router names the cause when it signs
        facts = Declared()
    else:
        auth = getattr(cls, "default_router_auth", None)
        facts = Declared(
            managed=getattr(cls, "managed", False) is True,
            default_router_auth=auth if isinstance(auth, str) else None,
        )
    _declared[provider] = (lookup, facts)
    return facts
