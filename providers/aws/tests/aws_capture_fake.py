"""The fake's SageMaker data capture: what CreateEndpointConfig's DataCaptureConfig may
hold beyond botocore's model, and the capture files a sampled invocation writes to moto's
S3, in SageMaker's format (the Model Monitor docs, "Capture data from real-time
endpoint"):

    <DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm>-<ss>-<mss>-<uuid>.jsonl

one JSON object per line::

    {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                       "data": "5.1,3.5,1.4,0.2", "encoding": "CSV"},
                     "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT",
                                        "data": "0", "encoding": "CSV"}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceTime": "2026-12-07T04:31:00Z"},
     "eventVersion": "0"}

``encoding`` is CSV or JSON when the observed content type is listed in
CaptureContentTypeHeader's CsvContentTypes / JsonContentTypes (the body as text), else
BASE64.
"""

from __future__ import annotations

import base64
import json
import random
import re
import uuid
from datetime import datetime, timezone
from typing import Any

S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/(?P<prefix>.*))?$")


def capture_problems(body: dict[str, Any]) -> list[str]:
    """CreateEndpointConfig's DataCaptureConfig against SageMaker's documented rules the
    service model cannot express."""
    config = body.get("DataCaptureConfig")
    if not config:
        return []
    found: list[str] = []
    variants = body.get("ProductionVariants") or []
    if any(v.get("ServerlessConfig") for v in variants):
        found.append("DataCaptureConfig: data capture is not supported on serverless endpoints")
    if not S3_URI.match(str(config.get("DestinationS3Uri", ""))):
        found.append(
            f"DataCaptureConfig.DestinationS3Uri: {config.get('DestinationS3Uri')!r} is not "
            "an s3://bucket/prefix URI"
        )
    modes = [o.get("CaptureMode") for o in config.get("CaptureOptions", [])]
    if len(set(modes)) != len(modes):
        found.append(f"DataCaptureConfig.CaptureOptions: duplicate modes {modes}")
    return found


def _media(kind: str) -> str:
    return kind.split(";")[0].strip().lower()


def _part(config: dict[str, Any], mode: str, kind: str, data: bytes) -> dict[str, Any]:
    header = config.get("CaptureContentTypeHeader") or {}
    csv = {_media(t) for t in header.get("CsvContentTypes") or []}
    js = {_media(t) for t in header.get("JsonContentTypes") or []}
    if _media(kind) in csv | js:
        encoding, text = ("CSV" if _media(kind) in csv else "JSON"), data.decode("utf-8")
    else:
        encoding, text = "BASE64", base64.b64encode(data).decode()
    return {"observedContentType": kind, "mode": mode, "data": text, "encoding": encoding}


def capture_event(
    config: dict[str, Any],
    request: tuple[str, bytes],
    response: tuple[str, bytes],
    inference_id: str | None = None,
) -> dict[str, Any]:
    """One capture line for an invocation (``request``/``response``: content type, body;
    ``inference_id``: InvokeEndpoint's ``InferenceId``, when the caller sent one)."""
    modes = {o.get("CaptureMode") for o in config.get("CaptureOptions", [])}
    data: dict[str, Any] = {}
    if modes & {"Input", "InputAndOutput"}:
        data["endpointInput"] = _part(config, "INPUT", *request)
    if modes & {"Output", "InputAndOutput"}:
        data["endpointOutput"] = _part(config, "OUTPUT", *response)
    now = datetime.now(timezone.utc)
    meta = {"eventId": str(uuid.uuid4()), "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if inference_id:
        meta["inferenceId"] = inference_id
    return {"captureData": data, "eventMetadata": meta, "eventVersion": "0"}


def write_capture(
    s3: Any,
    config: dict[str, Any],
    endpoint: str,
    variant: str,
    request: tuple[str, bytes],
    response: tuple[str, bytes],
    inference_id: str | None = None,
) -> str | None:
    """Sample the invocation at InitialSamplingPercentage and, when sampled, write its
    capture file to moto's S3 backend ``s3``; the key written, or None (not sampled).
    KeyError when the bucket does not exist (SageMaker logs it and drops the record)."""
    if not config.get("EnableCapture", True):
        return None
    if random.random() * 100 >= float(config.get("InitialSamplingPercentage", 0)):
        return None
    match = S3_URI.match(str(config["DestinationS3Uri"]))
    assert match is not None
    event = capture_event(config, request, response, inference_id)
    when = datetime.strptime(event["eventMetadata"]["inferenceTime"], "%Y-%m-%dT%H:%M:%SZ")
    prefix = (match.group("prefix") or "").strip("/")
    folder = "/".join(p for p in (prefix, endpoint, variant, when.strftime("%Y/%m/%d/%H")) if p)
    name = f"{when:%M-%S}-{random.randrange(1000):03d}-{uuid.uuid4()}.jsonl"
    key = f"{folder}/{name}"
    bucket = match.group("bucket")
    s3.get_bucket(bucket)  # raises when missing
    s3.put_object(bucket, key, (json.dumps(event) + "\n").encode())
    return key
