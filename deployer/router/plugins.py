"""Where the router finds provider plugins: signers for cloud auth kinds and control-plane
status. One lookup, so tests (and embedders) can register plugins by replacing
``provider_class`` in this module. The plugins come from the provider SDK's registry
(``deployer.providers``), which also names the distribution to install.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from deployer.providers import registry
from deployer.providers.protocol import router_signer as _router_signer

if TYPE_CHECKING:
    from deployer.providers.signing import RouterBackend, Signer


def distribution(provider: str) -> str:
    """The distribution that ships ``provider`` (for hints)."""
    return registry.distribution(provider)


def _provider_class(name: str) -> Any:
    import deployer.providers as sdk  # through the package: tests may replace its lookup

    return sdk.provider_class(name)


# Replaced in tests to register fake providers.
provider_class = _provider_class


def lookup(name: str) -> Any:
    """The provider plugin class called ``name`` (raises a DeployerError naming what to
    install when it is missing)."""
    return provider_class(name)


def router_signer(cls: Any) -> Callable[[RouterBackend], Signer] | None:
    """The plugin class's ``router_signer`` (the SignsRouterRequests capability), or None."""
    return _router_signer(cls)
