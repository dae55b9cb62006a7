"""Signing requests to backends: the ``Signer`` interface, the built-in ``none`` and
``bearer`` signers, and the plugin lookup for cloud auth kinds.

A signer has two halves, so the hot path never waits on the network:

- ``refresh()`` fetches or renews credentials. It may block (it runs in a worker thread)
  and returns how many seconds from now it wants to be called again: before the
  credentials expire, with a margin. The router calls it once before the backend takes
  traffic, then on that schedule; a failure is retried with backoff while the last good
  credentials stay in use.
- ``sign(method, url, headers, body)`` returns the headers to add to one request. It runs
  on the event loop for every request: no I/O, no blocking, cheap.

Cloud auth kinds (``sigv4``, ``google-oauth``, ``azure-key``, ``azure-token``) come from the
backend's provider plugin: ``router_signer(backend) -> Signer``, a classmethod of the class
registered under the ``deployer.providers`` entry point. The core never imports a cloud SDK.
Credentials are never logged: errors carry the exception type and message of the
credential source, never header values.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from deployer.errors import ConfigError, MissingDependencyError
from deployer.router import plugins

if TYPE_CHECKING:
    from deployer.router.manifest import BackendConfig

FOREVER = math.inf
FILE_RECHECK_SECONDS = 60.0  # projected service-account tokens rotate; re-read files


@runtime_checkable
class Signer(Protocol):
    """Adds credentials to requests for one backend."""

    def refresh(self) -> float:
        """Fetch or renew credentials (may block). Seconds until the next call."""
        ...

    def sign(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> Mapping[str, str]:
        """Headers to add to this request (lower-case names). No I/O: runs per request.

        ``url`` is the full URL sent to, ``headers`` the request headers already decided
        (lower-case names, ``host`` included), ``body`` the exact bytes sent.
        """
        ...


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
            try:
                token = Path(self.token_file).read_text(encoding="utf-8")
            except OSError as exc:
                raise RuntimeError(
                    f"cannot read token file {self.token_file}: {exc.strerror}"
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


def refresh_after(expiry: datetime | None) -> float:
    """Seconds until credentials expiring at ``expiry`` should be renewed: five minutes
    early, or half-way for short-lived ones. For provider signers' ``refresh``."""
    if expiry is None:
        return FOREVER
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=timezone.utc)
    left = (expiry - datetime.now(timezone.utc)).total_seconds()
    return left - 300 if left > 600 else max(left / 2, 0.2)


def signer_for(backend: BackendConfig) -> Signer:
    """The signer for ``backend``'s auth kind (plugin lookup for cloud kinds)."""
    kind = backend.auth.kind
    if kind == "none":
        return NoSigner()
    if kind == "bearer":
        return BearerSigner(backend.auth.token_env, backend.auth.token_file)
    cls = plugins.lookup(backend.provider)
    factory = getattr(cls, "router_signer", None)
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
