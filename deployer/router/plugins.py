"""Where the router finds provider plugins: signers for cloud auth kinds and control-plane
status. One lookup, so tests (and embedders) can register plugins by replacing
``provider_class`` in this module.

``deployer.providers`` is imported lazily: the router image may ship without it, and then
only the built-in auth kinds (``none``, ``bearer``) and ``active``/passive health work.
"""

from __future__ import annotations

from typing import Any

from deployer.errors import MissingDependencyError

# The distribution that ships each provider (kept here too: the router image has no
# deployer.providers to ask).
DISTRIBUTIONS = {
    "sagemaker": "deployer-aws",
    "vertex": "deployer-gcp",
    "azureml": "deployer-azure",
    "kubernetes": "deployer-kubernetes",
}


def distribution(provider: str) -> str:
    return DISTRIBUTIONS.get(provider, f"the distribution providing {provider!r}")


def _provider_class(name: str) -> Any:
    try:
        from deployer.providers import provider_class as lookup
    except ImportError:  # pragma: no cover - the router image without the provider API
        raise MissingDependencyError(
            f"provider {name!r} is needed but deployer.providers is not installed here",
            hint=f"install deployer and {distribution(name)} where the router runs",
        ) from None
    return lookup(name)


# Replaced in tests to register fake providers.
provider_class = _provider_class


def lookup(name: str) -> Any:
    """The provider plugin class called ``name`` (raises a DeployerError naming what to
    install when it is missing)."""
    return provider_class(name)
