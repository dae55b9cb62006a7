"""Google API errors turned into messages a user can act on."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from deployer.providers import DeployerError, MissingDependencyError
from deployer_gcp.credentials import ADC_HINT
from deployer_gcp.names import seconds

_PERMISSION = re.compile(r"Permission '([^']+)' denied")


class VertexError(DeployerError):
    """A Vertex AI call failed; the message names the action and the resource."""

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code  # the gRPC status name, e.g. NOT_FOUND, when Vertex answered one


class OperationFailed(VertexError):
    """A long-running operation ended with an error (the cloud's own message)."""

    def __init__(self, action: str, operation: str, message: str) -> None:
        super().__init__(f"{action} failed: {message} (operation {operation})")
        self.reason = message
        self.operation = operation


class OperationTimeout(VertexError):
    """A long-running operation did not finish in time; it may still finish later."""

    def __init__(self, action: str, operation: str, elapsed: float, state: str) -> None:
        super().__init__(
            f"{action} timed out after {seconds(elapsed)}; last state: {state} "
            f"(operation {operation})"
        )
        self.operation = operation
        self.state = state


@contextmanager
def translated(action: str, resource: str) -> Iterator[None]:
    """Run Google API calls, re-raising their errors as DeployerErrors for ``action``."""
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import GoogleAuthError

    try:
        yield
    except (GoogleAPIError, GoogleAuthError) as exc:
        raise translate(exc, action, resource) from None


def translate(exc: Exception, action: str, resource: str) -> DeployerError:
    """The DeployerError to raise for a Google API or auth error while doing ``action``."""
    from google.api_core import exceptions as gexc

    if isinstance(exc, gexc.PermissionDenied):
        match = _PERMISSION.search(exc.message or "")
        needed = f" (missing permission {match.group(1)})" if match else ""
        return VertexError(
            f"permission denied: could not {action} {resource}{needed}: {exc.message}",
            hint="grant the account ADC uses a role with that permission on the project, "
            "e.g. roles/aiplatform.user (and roles/iam.serviceAccountUser for service_account)",
            code="PERMISSION_DENIED",
        )
    if isinstance(exc, gexc.Unauthenticated):
        return MissingDependencyError(
            f"Google rejected the credentials while trying to {action} {resource}: {exc.message}",
            hint=ADC_HINT,
        )
    if isinstance(exc, gexc.RetryError):
        cause = exc.cause
        detail = getattr(cause, "message", None) or str(cause or exc)
        return VertexError(
            f"could not {action} {resource}: still throttled or unavailable after retrying: "
            f"{detail}",
            hint="raise the quota, or retry later (option retry_deadline sets how long to retry)",
            code="RETRY_EXHAUSTED",
        )
    if isinstance(exc, gexc.GoogleAPICallError):
        code = getattr(exc.grpc_status_code, "name", None) or str(exc.code)
        return VertexError(f"could not {action} {resource}: {code}: {exc.message}", code=code)
    return MissingDependencyError(
        f"could not authenticate to {action} {resource}: {exc}", hint=ADC_HINT
    )
