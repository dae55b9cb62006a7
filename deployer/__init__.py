"""deployer: one model, one image, every cloud.

The package root stays import-light: the serving runtime inside the image imports
``deployer.serving`` and must not drag in the CLI or configuration libraries, so the
public API (``Project`` and friends) is loaded on first attribute access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deployer._version import __version__

if TYPE_CHECKING:
    from deployer.api import Project
    from deployer.errors import ConfigError, DeployerError

__all__ = ["ConfigError", "DeployerError", "Project", "__version__"]

_LAZY = {
    "Project": "deployer.api",
    "DeployerError": "deployer.errors",
    "ConfigError": "deployer.errors",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'deployer' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
