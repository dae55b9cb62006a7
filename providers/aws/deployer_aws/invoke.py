"""Predictions through SageMaker's own runtime API (``InvokeEndpoint``)."""

from __future__ import annotations

from typing import Any

from deployer.providers import DeployerError, Invocation
from deployer_aws.aws import Aws, client_error, translate

SERVICE = "sagemaker-runtime"


def invoke(
    aws: Aws, endpoint: str, body: bytes, content_type: str, accept: str | None, target: str
) -> Invocation:
    """POST ``body`` through ``invoke_endpoint``; the container's own answer comes back.

    A container that answers 4xx/5xx reaches boto3 as ``ModelError`` (HTTP 424): we return
    the container's status code and body, so the caller sees what the model said.
    """
    from botocore.exceptions import ClientError

    params: dict[str, Any] = {"EndpointName": endpoint, "ContentType": content_type, "Body": body}
    if accept:
        params["Accept"] = accept
    resource = f"endpoint {endpoint}"
    try:
        answer = aws.client(SERVICE).invoke_endpoint(**params)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", ""))
        if code == "ModelError":
            return _model_error(exc.response, message)
        if code == "ValidationError" and "not found" in message.lower():
            raise DeployerError(
                f"SageMaker endpoint {endpoint} does not exist: {message}",
                hint=f"deploy it with: deployer push --to {target}",
            ) from None
        raise client_error(exc, SERVICE, resource, aws.options) from None
    except Exception as exc:
        translated = translate(exc, SERVICE, resource, aws.options)
        if translated is None:
            raise
        raise translated from None
    payload = answer["Body"].read()
    return Invocation(200, payload, str(answer.get("ContentType", "")))


def _model_error(response: dict[str, Any], message: str) -> Invocation:
    """The container's status and body from a ModelError (SageMaker's 424)."""
    error = response.get("Error", {})
    status = response.get("OriginalStatusCode") or error.get("OriginalStatusCode")
    original = response.get("OriginalMessage") or error.get("OriginalMessage")
    log_stream = response.get("LogStreamArn") or error.get("LogStreamArn")
    if original:
        body = str(original).encode()
        kind = "application/json" if body.lstrip()[:1] in (b"{", b"[") else "text/plain"
    else:
        text = f"SageMaker ModelError: {message}"
        if log_stream:
            text += f" (container logs: {log_stream})"
        body, kind = text.encode(), "text/plain"
    try:
        code = int(status) if status else 424
    except (TypeError, ValueError):
        code = 424
    return Invocation(code, body, kind)
