"""The provider plugins the router's auth tests sign with: the real provider classes of
deployer-aws, deployer-gcp and deployer-azure (their ``router_signer``), looked up by name
the way the router does, without the rest of the plugin registry; and the check a
SageMaker runtime makes of a SigV4 signature, recomputed with botocore."""

from __future__ import annotations

import hmac
import re
from datetime import datetime, timedelta, timezone

from deployer_aws.provider import SageMakerProvider
from deployer_azure.provider import AzureMLProvider
from deployer_gcp.provider import VertexProvider

PROVIDERS = {
    "sagemaker": SageMakerProvider,
    "vertex": VertexProvider,
    "azureml": AzureMLProvider,
}

AWS = {"key": "AKIDROUTERTEST", "secret": "router-test-secret-key", "token": "router-session-tok"}
SIGV4 = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[^,]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})"
)


def verify_sigv4(
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    region: str = "eu-west-1",
    service: str = "sagemaker",
) -> str | None:
    """What a SageMaker runtime checks, recomputed with botocore: None when valid."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    match = SIGV4.fullmatch(headers.get("authorization", ""))
    if match is None:
        return "missing or malformed SigV4 authorization"
    if match["key"] != AWS["key"]:
        return "unknown access key"
    if (match["region"], match["service"]) != (region, service):
        return f"wrong credential scope {match['region']}/{match['service']}"
    if headers.get("x-amz-security-token") != AWS["token"]:
        return "missing or wrong session token"
    signed = match["signed"].split(";")
    if not {"host", "x-amz-date"} <= set(signed):
        return "host and x-amz-date must be signed"
    stamp = datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    if abs(datetime.now(timezone.utc) - stamp) > timedelta(minutes=5):
        return "request time too skewed"
    request = AWSRequest(
        method=method,
        url=f"http://{headers['host']}{path}",
        data=body,
        headers={name: headers[name] for name in signed},
    )
    request.context["timestamp"] = headers["x-amz-date"]
    signer = SigV4Auth(Credentials(AWS["key"], AWS["secret"], AWS["token"]), service, region)
    expected = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    if not hmac.compare_digest(expected, match["signature"]):
        return "signature does not match"
    return None
