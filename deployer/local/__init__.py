"""The built-in ``local`` target: the image on this machine's Docker engine, behind a front.

- ``provider``: ``LocalProvider``, the plugin (entry point ``local``); it imports only the
  provider SDK and this package.
- ``front``: the front container's program, one published port and one switchable upstream.
- ``front_image``: builds the front's small image with the core's image builder.

Kept import-free: the front container imports this package with only the front's
requirements installed.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "LocalProvider":  # ``from deployer.local import LocalProvider``
        from deployer.local.provider import LocalProvider

        return LocalProvider
    raise AttributeError(name)
