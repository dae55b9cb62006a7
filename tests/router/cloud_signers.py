"""Test-only provider plugins that sign like the real ones will, with the real libraries:
botocore's SigV4 signer, google-auth access tokens, an Azure ML endpoint key.

They implement deployer.router.auth.Signer exactly as deployer-aws, deployer-gcp and
deployer-azure are meant to (``router_signer(backend) -> Signer`` on the provider class),
and double as the reference for those implementations. Credentials come from each
library's standard chain (environment variables in the tests).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any


def _seconds_left(expiry: datetime | None) -> float:
    """Seconds until credentials expiring at ``expiry`` should be refreshed: five minutes
    early, or half-way for short-lived ones."""
    if expiry is None:
        return math.inf
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=timezone.utc)
    left = (expiry - datetime.now(timezone.utc)).total_seconds()
    return left - 300 if left > 600 else max(left / 2, 0.2)


class SigV4Signer:
    """AWS Signature Version 4 with botocore, credentials from botocore's default chain
    (environment, shared files, SSO, container and instance roles)."""

    SIGNED = ("authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256")

    def __init__(self, region: str, service: str = "sagemaker") -> None:
        import botocore.session

        self.region = region
        self.service = service
        self._session = botocore.session.get_session()
        self._auth: Any = None

    def refresh(self) -> float:
        from botocore.auth import SigV4Auth

        credentials = self._session.get_credentials()
        if credentials is None:
            raise RuntimeError("no AWS credentials in the default chain")
        frozen = credentials.get_frozen_credentials()  # refreshes refreshable ones
        self._auth = SigV4Auth(frozen, self.service, self.region)
        return _seconds_left(getattr(credentials, "_expiry_time", None))

    def sign(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> Mapping[str, str]:
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        self._auth.add_auth(request)
        return {k.lower(): v for k, v in request.headers.items() if k.lower() in self.SIGNED}


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
        return _seconds_left(self._credentials.expiry)

    def sign(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> Mapping[str, str]:
        return self._headers


class AzureKeySigner:
    """An Azure ML online endpoint key, sent as ``Authorization: Bearer KEY``. The real
    plugin fetches it with the Azure SDK (``online_endpoints.get_keys``); here it comes
    from the environment variable the manifest names (``key_env``)."""

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


class FakeSageMakerProvider:
    name = "sagemaker"

    @classmethod
    def router_signer(cls, backend: Any) -> SigV4Signer:
        return SigV4Signer(backend.region or "us-east-1", "sagemaker")


class FakeVertexProvider:
    name = "vertex"

    @classmethod
    def router_signer(cls, backend: Any) -> GoogleTokenSigner:
        return GoogleTokenSigner()


class FakeAzureMLProvider:
    name = "azureml"

    @classmethod
    def router_signer(cls, backend: Any) -> AzureKeySigner:
        return AzureKeySigner(backend.auth.options()["key_env"])


PROVIDERS = {
    "sagemaker": FakeSageMakerProvider,
    "vertex": FakeVertexProvider,
    "azureml": FakeAzureMLProvider,
}
