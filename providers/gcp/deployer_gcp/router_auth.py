"""How the built-in router signs requests to a Vertex endpoint (rawPredict): OAuth access
tokens from Application Default Credentials, refreshed before they expire."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deployer.providers import refresh_after


class GoogleTokenSigner:
    """OAuth access tokens from google-auth's Application Default Credentials."""

    SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)

    def __init__(self) -> None:
        self._credentials: Any = None
        self._headers: dict[str, str] = {}

    def refresh(self) -> float:
        import google.auth
        import google.auth.transport.requests

        if self._credentials is None:
            self._credentials, _ = google.auth.default(scopes=list(self.SCOPES))
        self._credentials.refresh(google.auth.transport.requests.Request())
        self._headers = {"authorization": f"Bearer {self._credentials.token}"}
        return refresh_after(self._credentials.expiry)

    def sign(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> Mapping[str, str]:
        return self._headers
