"""The signers the built-in router uses for Azure ML backends (router_auth.py picks one).

Each sets one header, ``Authorization: Bearer <secret>``, swapped whole on refresh:
the endpoint's own key or token (``AzureEndpointSigner``), a Microsoft Entra token
(``AzureEntraSigner``), or a key from an environment variable (``AzureKeySigner``).
Secrets never appear in messages, logs or reprs; errors name the backend.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import threading
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from deployer.providers import DeployerError, UsageError, refresh_after
from deployer_azure import client
from deployer_azure.auth import azure_errors
from deployer_azure.scoring import ScoringSecret, same_uri, utc

log = logging.getLogger("deployer.router.azure")

KEY_REFRESH_SECONDS = 900.0  # keys never expire, but someone may regenerate them
ENTRA_SCOPE = "https://ml.azure.com/.default"


def _for_backend(backend: str, exc: BaseException) -> DeployerError:
    """``exc`` as a DeployerError (of the same class when it is one) whose message names
    the backend. Azure SDK errors carry no secrets; the chained original is dropped."""
    if isinstance(exc, DeployerError):
        named = copy.copy(exc)
        named.message = f"backend {backend}: {exc.message}"
        named.args = (named.message,)
        return named
    lines = str(exc).strip().splitlines()
    detail = f": {lines[0]}" if lines else ""
    return DeployerError(f"backend {backend}: {type(exc).__name__}{detail}")


def seconds_until_refresh(
    expires_at: datetime | None, refresh_at: datetime | None, default: float
) -> float:
    """When to fetch a token again: the service's refresh-after time when it gives one
    (and it comes first), else before expiry (``refresh_after``); ``default`` for
    secrets that do not expire."""
    if expires_at is None:
        return default
    seconds = refresh_after(expires_at)
    if refresh_at is not None:
        hint = (refresh_at - datetime.now(timezone.utc)).total_seconds()
        if hint > 0:
            seconds = min(seconds, hint)
    return max(seconds, 0.2)


class _Headers:
    """The one header a signer sets, swapped whole on refresh (``sign`` runs on the
    event loop, ``refresh`` in a worker thread)."""

    def __init__(self) -> None:
        self._headers: Mapping[str, str] = {}

    def _set(self, authorization: str) -> None:
        self._headers = {"authorization": authorization}

    def sign(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> Mapping[str, str]:
        return self._headers


class AzureEndpointSigner(_Headers):
    """The endpoint's own key or token, from ``AzureMLProvider.scoring_secret``.

    The first refresh finds the endpoint whose scoring URI is the backend's URL
    (``find_endpoint``); every refresh fetches the key or token again and checks that
    the endpoint's scoring URI still is the backend's URL.
    """

    def __init__(self, backend: str, url: str, provider: Any, every: float) -> None:
        super().__init__()
        self.backend = backend
        self.url = url
        self.provider = provider
        self.every = every
        self.endpoint: str | None = None
        self.kind: str | None = None  # key or token, once known
        self.expires_at: datetime | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"AzureEndpointSigner(backend={self.backend!r}, endpoint={self.endpoint!r}, "
            f"kind={self.kind!r})"
        )

    def refresh(self) -> float:
        with self._lock:
            try:
                secret = self._fetch()
            except Exception as exc:
                raise _for_backend(self.backend, exc) from None
            self._set(secret.authorization)
            self.kind, self.expires_at = secret.kind, secret.expires_at
            seconds = seconds_until_refresh(secret.expires_at, secret.refresh_at, self.every)
            log.debug(
                "azure scoring credentials refreshed",
                extra={
                    "backend": self.backend,
                    "endpoint": self.endpoint,
                    "kind": secret.kind,
                    "expires": secret.expires_at.isoformat() if secret.expires_at else None,
                    "next_refresh_seconds": round(seconds, 1),
                },
            )
            return seconds

    def _fetch(self) -> ScoringSecret:
        if self.endpoint is None:
            self.endpoint = self.provider.find_endpoint(self.url)
            if self.endpoint is None:
                raise UsageError(
                    f"no online endpoint in workspace {self.provider.options.workspace} has "
                    f"the scoring URI {self.url}",
                    hint=f"check backends.{self.backend}.url and target, or run "
                    f"`deployer push --to {self.backend}`",
                )
        try:
            secret: ScoringSecret = self.provider.scoring_secret(self.endpoint)
        except DeployerError:
            self.endpoint = None  # look again next time: it may be recreated or renamed
            raise
        if not same_uri(secret.scoring_uri, self.url):
            endpoint, self.endpoint = self.endpoint, None
            raise UsageError(
                f"endpoint {endpoint} has the scoring URI {secret.scoring_uri}, not the "
                f"backend's URL {self.url}; the router sends an endpoint's key only to its "
                "own scoring URI",
                hint=f"set backends.{self.backend}.url to the scoring URI "
                "(`deployer push` writes it)",
            )
        return secret


class AzureEntraSigner(_Headers):
    """A Microsoft Entra access token for Azure ML (``auth.source: entra``), from the
    credential chain, renewed before it expires."""

    def __init__(self, backend: str, scope: str = ENTRA_SCOPE) -> None:
        super().__init__()
        self.backend = backend
        self.scope = scope
        self.expires_at: datetime | None = None
        self._credential: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AzureEntraSigner(backend={self.backend!r}, scope={self.scope!r})"

    def refresh(self) -> float:
        with self._lock:
            try:
                with azure_errors(f"getting a Microsoft Entra token for {self.scope}", self.scope):
                    if self._credential is None:
                        self._credential = client.credential()
                    token = self._credential.get_token(self.scope)
            except Exception as exc:
                raise _for_backend(self.backend, exc) from None
            if not getattr(token, "token", None):
                raise DeployerError(f"backend {self.backend}: the credential gave an empty token")
            self._set(f"Bearer {token.token}")
            self.expires_at = utc(getattr(token, "expires_on", None))
            return seconds_until_refresh(self.expires_at, None, KEY_REFRESH_SECONDS)


class AzureKeySigner(_Headers):
    """An endpoint key read from the environment variable ``auth.key_env`` names (an
    explicit override: the key never sits in router.yaml, and no Azure call is made)."""

    def __init__(self, key_env: str, backend: str | None = None) -> None:
        super().__init__()
        self.key_env = key_env
        self.backend = backend

    def __repr__(self) -> str:
        return f"AzureKeySigner(backend={self.backend!r}, key_env={self.key_env!r})"

    def refresh(self) -> float:
        key = os.environ.get(self.key_env, "").strip()
        who = f"backend {self.backend}: " if self.backend else ""
        if not key:
            raise DeployerError(
                f"{who}no endpoint key in environment variable {self.key_env}",
                hint=f"set {self.key_env}, or remove auth.key_env to fetch the key from Azure",
            )
        if any(c.isspace() for c in key):
            raise DeployerError(f"{who}the key in environment variable {self.key_env} has spaces")
        self._set(f"Bearer {key}")
        return math.inf
