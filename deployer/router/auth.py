"""Signing requests to backends: the built-in ``none`` and ``bearer`` signers, and the
lookup of a cloud auth kind's signer from the backend's provider plugin.

The ``Signer`` interface (``refresh`` may block and says when to call it again; ``sign``
runs per request, no I/O) is the provider SDK's: ``deployer.providers.signing``. Cloud
auth kinds (``sigv4``, ``google-oauth``, ``azure-key``, ``azure-token``) come from the
backend's provider plugin: its ``router_signer(backend) -> Signer`` classmethod (the
``SignsRouterRequests`` capability). The core never imports a cloud SDK. Credentials are
never logged: errors carry the exception type and message of the credential source,
never header values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from deployer.errors import ConfigError, MissingDependencyError, read_config_text
from deployer.providers.signing import FOREVER, Signer, refresh_after
from deployer.router import plugins

if TYPE_CHECKING:
    from deployer.router.manifest import BackendConfig

__all__ = ["FOREVER", "BearerSigner", "NoSigner", "Signer", "refresh_after", "signer_for"]

FILE_RECHECK_SECONDS = 60.0  # projected service-account tokens rotate; re-read files


class NoSigner:
    """``auth: none``: the client's headers go through unchanged."""

    def refresh(self) -> float:
        return FOREVER

    def sign(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> Mapping[str, str]:
        return {}


class BearerSigner:
    """``auth: {kind: bearer, token_env: VAR}`` or ``token_file: PATH``: a static or
    file-rotated bearer token (Kubernetes service-account tokens, API gateways)."""

    def __init__(self, token_env: str | None = None, token_file: str | None = None) -> None:
        if not (token_env or token_file):
            raise ValueError("bearer auth needs token_env or token_file")
        self.token_env = token_env
        self.token_file = token_file
        self._headers: dict[str, str] = {}

    def refresh(self) -> float:
        if self.token_env:
            token = os.environ.get(self.token_env, "")
            where = f"environment variable {self.token_env}"
            again = FOREVER
        else:
            assert self.token_file is not None
            try:  # a FIFO is refused, not opened; the size is bounded
                token = read_config_text(Path(self.token_file))
            except ConfigError as exc:
                raise RuntimeError(
                    f"cannot read token file {self.token_file}: {'; '.join(exc.problems)}"
                ) from None
            where = f"file {self.token_file}"
            again = FILE_RECHECK_SECONDS
        token = token.strip()
        if not token:
            raise RuntimeError(f"no bearer token in {where}")
        if any(c.isspace() for c in token):
            raise RuntimeError(f"the bearer token in {where} contains whitespace")
        self._headers = {"authorization": f"Bearer {token}"}
        return again

    def sign(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> Mapping[str, str]:
        return self._headers


def signer_for(backend: BackendConfig) -> Signer:
    """The signer for ``backend``'s auth kind (plugin lookup for cloud kinds)."""
    kind = backend.auth.kind
    if kind == "none":
        return NoSigner()
    if kind == "bearer":
        return BearerSigner(backend.auth.token_env, backend.auth.token_file)
    cls = plugins.lookup(backend.provider)
    factory = plugins.router_signer(cls)
    if factory is None:
        raise MissingDependencyError(
            f"backend {backend.name}: auth {kind!r} needs the {backend.provider} provider's "
            "router signer, and the installed provider has none",
            hint=f"install a version of {plugins.distribution(backend.provider)} with router "
            "support",
        )
    signer = factory(backend)
    if not isinstance(signer, Signer):
        raise ConfigError(
            "router.yaml",
            [
                f"backends.{backend.name}.auth: {cls.__name__}.router_signer returned "
                f"{type(signer).__name__}, which is not a Signer (refresh and sign)"
            ],
        )
    return signer
