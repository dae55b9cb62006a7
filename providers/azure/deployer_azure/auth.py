"""Credentials (azure-identity's chain) and turning Azure errors into actionable ones."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from deployer.providers import DeployerError, MissingDependencyError

CHAIN = (
    "environment variables (AZURE_CLIENT_ID with AZURE_TENANT_ID and AZURE_CLIENT_SECRET or "
    "AZURE_CLIENT_CERTIFICATE_PATH), workload identity (AZURE_FEDERATED_TOKEN_FILE), managed "
    "identity, the Azure CLI (az login), Azure PowerShell and the Azure Developer CLI"
)
CREDENTIALS_HINT = (
    "run `az login` (or `azd auth login`), set the AZURE_* variables of a service principal, "
    "or run where a managed identity is assigned"
)


def make_credential() -> Any:
    """The credential every Azure call uses: azure-identity's DefaultAzureCredential.

    Tests replace this function (``deployer_azure.auth.make_credential``) with a fake
    TokenCredential; everything after it is the real SDK path.
    """
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


class AzurePermissionError(DeployerError):
    """Azure answered 403: the identity lacks a role on a scope."""


_ACTION = re.compile(r"perform action '([^']+)' over scope '([^']+)'")


def _attempts(message: str) -> str:
    """The credential chain's own per-credential reasons, one short clause each."""
    clauses = []
    for line in message.splitlines():
        if line.startswith("\t") and ":" in line:
            name, _, why = line.strip().partition(":")
            clauses.append(f"{name}: {why.strip().split('. ')[0][:160]}")
    return "; ".join(clauses) or _first_line(message)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def explain(exc: BaseException, doing: str, scope: str) -> DeployerError | None:
    """A DeployerError for an azure-core/azure-identity error, or None if it is not one."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
    )

    if isinstance(exc, ClientAuthenticationError) and getattr(exc, "response", None) is None:
        attempts = _attempts(exc.message or str(exc))
        return MissingDependencyError(
            f"no Azure credentials while {doing}: DefaultAzureCredential tries {CHAIN}"
            + (f"; it got: {attempts}" if attempts else ""),
            hint=CREDENTIALS_HINT,
        )
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        code = getattr(getattr(exc, "error", None), "code", None) or ""
        message = _first_line(getattr(getattr(exc, "error", None), "message", None) or exc.message)
        if status == 401 or isinstance(exc, ClientAuthenticationError):
            return DeployerError(
                f"Azure rejected the credentials while {doing} (401 {code}): {message}",
                hint="the token may be for another tenant or expired; " + CREDENTIALS_HINT,
            )
        if status == 403 or code == "AuthorizationFailed":
            found = _ACTION.search(message)
            action, where = found.groups() if found else ("(see the message)", scope)
            return AzurePermissionError(
                f"permission denied while {doing}: the identity may not perform {action} "
                f"on {where} ({code or status}: {message})",
                hint="grant a role that includes this action on that scope, e.g. "
                "'AzureML Data Scientist' on the workspace, then retry",
            )
        if isinstance(exc, ResourceNotFoundError) or status == 404:
            return DeployerError(
                f"not found while {doing}: {message} (scope {scope})",
                hint="check subscription_id, resource_group and workspace in deployer.yaml",
            )
        return DeployerError(f"Azure error while {doing} ({status} {code}): {message}")
    if isinstance(exc, ServiceRequestError):
        return DeployerError(f"could not reach Azure while {doing}: {exc.message}")
    return None


@contextlib.contextmanager
def azure_errors(doing: str, scope: str) -> Iterator[None]:
    """Re-raise Azure SDK errors as DeployerErrors saying what we were doing, and where."""
    try:
        yield
    except DeployerError:
        raise
    except Exception as exc:
        explained = explain(exc, doing, scope)
        if explained is None:
            raise
        raise explained from None
