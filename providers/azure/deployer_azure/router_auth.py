"""How the built-in router signs requests to an Azure ML scoring URI.

Every request carries ``Authorization: Bearer <secret>``; what the secret is depends on
the backend's ``auth`` in router.yaml:

- ``azure-key`` (what ``deployer push`` writes for ``auth_mode: key``): the endpoint's
  primary key, fetched with azure-ai-ml's ``online_endpoints.get_keys`` from the
  workspace the backend's ``target`` options name, with the credential from
  azure-identity's chain. Fetched again every ``refresh_seconds`` (900), since keys can
  be regenerated. With ``key_env: VAR`` the key is read from that variable instead.
- ``azure-token`` (``auth_mode: aml_token``): the endpoint token from the same call,
  fetched again at the service's ``refresh_after_time_utc``, or before
  ``expiry_time_utc`` (five minutes early; half-way for short-lived tokens).
- ``azure-token`` with ``source: entra``: a Microsoft Entra token for
  ``https://ml.azure.com/.default`` (``scope`` to change it) from the same credential
  chain, renewed before ``expires_on``. No ARM call, no ``target`` needed.

The endpoint is found by the backend's URL, which must be the endpoint's scoring URI:
the router never sends an endpoint's key to another host. The signer follows the
endpoint's actual auth mode, so a key endpoint listed as ``azure-token`` (or the reverse)
still works. Secrets never appear in messages, logs or reprs; errors name the backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from deployer.providers import ConfigError, ProjectInfo, Target
from deployer_azure.signers import (
    ENTRA_SCOPE,
    KEY_REFRESH_SECONDS,
    AzureEndpointSigner,
    AzureEntraSigner,
    AzureKeySigner,
)

__all__ = [
    "KEY_REFRESH_SECONDS",
    "AzureEndpointSigner",
    "AzureEntraSigner",
    "AzureKeySigner",
    "signer_for_backend",
]

SOURCES = ("endpoint", "entra")
KEY_OPTIONS = frozenset({"key_env", "refresh_seconds"})
TOKEN_OPTIONS = frozenset({"source", "scope", "refresh_seconds"})
SOURCE = "router.yaml"
# router.yaml does not say which project a backend belongs to; the signer finds the
# endpoint by the backend's URL (find_endpoint), never by the project's default name.
_NO_PROJECT = ProjectInfo("router")


def signer_for_backend(cls: Any, backend: Any) -> Any:
    """The signer for an ``azureml`` backend of router.yaml. No I/O here (the router
    builds signers on its event loop); options that cannot work are a ConfigError now,
    problems only the cloud can tell are raised by ``refresh()``."""
    name = backend.name
    kind = backend.auth.kind
    options = backend.auth.options()
    if kind == "azure-key":
        _only(name, options, KEY_OPTIONS, kind)
        if options.get("key_env"):
            return AzureKeySigner(str(options["key_env"]), backend=name)
        every = _refresh_seconds(name, options)
        return AzureEndpointSigner(name, backend.url, _provider(cls, backend), every)
    if kind == "azure-token":
        _only(name, options, TOKEN_OPTIONS, kind)
        source = options.get("source", "endpoint")
        if source not in SOURCES:
            _problem(name, "source", f"expected endpoint or entra (got {source!r})")
        if source == "entra":
            scope = options.get("scope", ENTRA_SCOPE)
            if not isinstance(scope, str) or not scope.startswith(("https://", "api://")):
                _problem(name, "scope", f"expected a token scope URI (got {scope!r})")
            return AzureEntraSigner(name, scope)
        if "scope" in options:
            _problem(name, "scope", "only for source: entra")
        every = _refresh_seconds(name, options)
        return AzureEndpointSigner(name, backend.url, _provider(cls, backend), every)
    raise ConfigError(
        SOURCE,
        [f"backends.{name}.auth.kind: azureml backends use azure-key or azure-token (got {kind})"],
    )


def _problem(backend: str, option: str, message: str) -> NoReturn:
    raise ConfigError(SOURCE, [f"backends.{backend}.auth.{option}: {message}"])


def _only(backend: str, options: Mapping[str, Any], allowed: frozenset[str], kind: str) -> None:
    for option in sorted(set(options) - allowed):
        takes = ", ".join(sorted(allowed))
        _problem(backend, option, f"auth {kind} takes no option {option} (it takes {takes})")


def _refresh_seconds(backend: str, options: Mapping[str, Any]) -> float:
    value = options.get("refresh_seconds", KEY_REFRESH_SECONDS)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        _problem(backend, "refresh_seconds", f"expected a number of seconds > 0 (got {value!r})")
    return float(value)


def _provider(cls: Any, backend: Any) -> Any:
    """The provider for the backend's ``target`` options (what ``deployer push`` wrote)."""
    name = backend.name
    if not backend.target:
        instead = (
            "set auth.key_env to a variable holding the key"
            if backend.auth.kind == "azure-key"
            else "use auth source: entra for a Microsoft Entra token"
        )
        raise ConfigError(
            SOURCE,
            [
                f"backends.{name}.target: the router fetches the endpoint's key or token "
                "from the workspace named here (subscription_id, resource_group, "
                "workspace), and there is none"
            ],
            hint=f"run `deployer push` to write it, or {instead}",
        )
    target = Target(name, backend.provider, dict(backend.target))
    try:
        return cls(target, _NO_PROJECT)
    except ConfigError as exc:
        prefix = f"targets.{name}."
        problems = [
            f"backends.{name}.target.{p.removeprefix(prefix)}" if p.startswith(prefix) else p
            for p in exc.problems
        ]
        raise ConfigError(SOURCE, problems, hint=exc.hint) from None
