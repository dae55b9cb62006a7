"""How the built-in router signs requests to an Azure ML scoring URI: the endpoint key."""

from __future__ import annotations

import os
from collections.abc import Mapping


class AzureKeySigner:
    """An Azure ML online endpoint key, sent as ``Authorization: Bearer KEY``, read from
    the environment variable the manifest's auth options name (``key_env``), so the key
    never sits in router.yaml."""

    def __init__(self, key_env: str) -> None:
        self.key_env = key_env
        self._headers: dict[str, str] = {}

    def refresh(self) -> float:
        key = os.environ.get(self.key_env)
        if not key:
            raise RuntimeError(f"no key in {self.key_env}")
        self._headers = {"authorization": f"Bearer {key}"}
        return 3600.0

    def sign(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> Mapping[str, str]:
        return self._headers
