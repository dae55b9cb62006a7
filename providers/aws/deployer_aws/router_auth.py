"""How the built-in router signs requests to a SageMaker endpoint: SigV4 with botocore,
credentials from botocore's default chain, renewed before they expire."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deployer.providers import refresh_after


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
        return refresh_after(getattr(credentials, "_expiry_time", None))

    def sign(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> Mapping[str, str]:
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        self._auth.add_auth(request)
        return {k.lower(): v for k, v in request.headers.items() if k.lower() in self.SIGNED}
