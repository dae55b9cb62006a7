"""Google Application Default Credentials, and access tokens from them.

The chain google-auth tries, in order: the file named by GOOGLE_APPLICATION_CREDENTIALS,
the gcloud ADC file (``gcloud auth application-default login``), then the metadata
server of Compute Engine, GKE, Cloud Run or Cloud Build. Nothing else is read, and
tokens never appear in messages.
"""

from __future__ import annotations

from typing import Any

from deployer.providers import DeployerError, MissingDependencyError

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
ADC_CHAIN = (
    "Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS, the gcloud ADC file "
    "(gcloud auth application-default login), then the metadata server"
)
ADC_HINT = (
    "run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a "
    "service-account key file, or run where a service account is attached (metadata server)"
)


def default_credentials() -> Any:
    """The ADC credentials with the cloud-platform scope, or an error naming the chain."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, _project = google.auth.default(scopes=list(SCOPES))
    except DefaultCredentialsError as exc:
        raise MissingDependencyError(
            f"no Google Cloud credentials found; tried {ADC_CHAIN}: {_first_line(exc)}",
            hint=ADC_HINT,
        ) from None
    return credentials


def access_token(credentials: Any) -> str:
    """A current access token, refreshed when missing or expired."""
    from google.auth.exceptions import GoogleAuthError
    from google.auth.transport.requests import Request

    if not credentials.valid or not credentials.token:
        try:
            credentials.refresh(Request())
        except GoogleAuthError as exc:
            raise DeployerError(
                f"could not get an access token from the {ADC_CHAIN}: {_first_line(exc)}",
                hint=ADC_HINT,
            ) from None
    token = credentials.token
    if not token:
        raise DeployerError("the Google credentials produced no access token", hint=ADC_HINT)
    return str(token)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
