"""``captured(since)``: SageMaker's data capture files read back from S3 and decoded into
``CapturedRecord``s (deployer.providers.monitoring).

Where: the live endpoint config's ``DataCaptureConfig.DestinationS3Uri`` (the cloud is
the source of truth), under ``<destination>/<endpoint>/AllTraffic/yyyy/mm/dd/hh/``; the
listing starts at ``since``'s hour (``StartAfter``), so old hours are never read. Each
line of a file is one event (``captureData.endpointInput`` / ``endpointOutput``:
``observedContentType``, ``mode``, ``data``, ``encoding`` CSV/JSON/BASE64;
``eventMetadata``: ``eventId``, ``inferenceId`` when the caller sent one,
``inferenceTime``).

Rows: a CSV line, a JSON row (an array), a row of ``{"instances": ...}`` /
``{"inputs": ...}`` / JSON Lines (``{"features": [...]}`` too) become
``{"f0": v0, "f1": v1, ...}`` (the image's own capture names unnamed columns the same
way); JSON objects keep their keys. Predictions: ``{"predictions": [...]}``, a JSON array,
CSV or JSON Lines lines. A body in another type (e.g. .npy, captured base64) is kept
undecoded: the record's ``rows``/``predictions`` are None and ``extra`` names the type.
A line that is not an event is skipped and counted (``skipped``), never a crash.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from deployer.providers import UsageError, monitoring
from deployer_aws import names

if TYPE_CHECKING:
    from deployer_aws.deploy import Scope

CSV = "text/csv"
JSON = "application/json"
JSONL = ("application/jsonlines", "application/jsonl", "application/x-jsonlines")


class Reader:
    """Reads one target's capture files; ``skipped`` counts lines that were not events."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.skipped = 0

    def destination(self) -> tuple[str, str]:
        """(bucket, key prefix ending in '/') of the live endpoint's capture files."""
        scope = self.scope
        live = scope.sm.live(scope.endpoint)
        if live is None:
            raise UsageError(
                f"{scope.target} has no SageMaker endpoint {scope.endpoint}: nothing captured",
                hint=f"deployer push --to {scope.target}",
            )
        config = scope.sm.describe_config(live.config) or {}
        capture = config.get("DataCaptureConfig") or {}
        if not capture or capture.get("EnableCapture") is False:
            raise UsageError(
                f"SageMaker endpoint {scope.endpoint} ({scope.target}) captures nothing",
                hint="set monitoring.capture in deployer.yaml and push",
            )
        uri = str(capture["DestinationS3Uri"])
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        parts = [p for p in (prefix.strip("/"), scope.endpoint, names.VARIANT) if p]
        return bucket, "/".join(parts) + "/"

    def records(self, since: datetime | None) -> Iterator[monitoring.CapturedRecord]:
        """Every captured event at or after ``since`` (None: all), oldest first."""
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)
        bucket, prefix = self.destination()
        for key in self._keys(bucket, prefix, since):
            body = self.scope.aws.call(
                "s3", "get_object", f"s3://{bucket}/{key}", Bucket=bucket, Key=key
            )["Body"].read()
            for line in body.decode("utf-8", errors="replace").splitlines():
                record = self._record(line)
                if record is not None and (since is None or record.time >= since):
                    yield record

    def _keys(self, bucket: str, prefix: str, since: datetime | None) -> Iterator[str]:
        params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if since is not None:
            params["StartAfter"] = prefix + since.astimezone(timezone.utc).strftime("%Y/%m/%d/%H")
        while True:
            page = self.scope.aws.call(
                "s3", "list_objects_v2", f"s3://{bucket}/{prefix}", absent="NoSuchBucket", **params
            )
            if page is None:
                return
            for item in page.get("Contents", []):
                if item["Key"].endswith(".jsonl"):
                    yield item["Key"]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            params["ContinuationToken"] = token

    def _record(self, line: str) -> monitoring.CapturedRecord | None:
        if not line.strip():
            return None
        try:
            return decode_event(json.loads(line))
        except (ValueError, KeyError, TypeError, AttributeError):
            self.skipped += 1
            return None


def decode_event(event: dict[str, Any]) -> monitoring.CapturedRecord:
    """One SageMaker capture event as a CapturedRecord (ValueError/KeyError when it is not
    one)."""
    meta = event["eventMetadata"]
    data = event["captureData"]
    extra: dict[str, Any] = {"event_id": meta["eventId"]}
    rows = predictions = None
    part = data.get("endpointInput")
    if part:
        kind = _media(part.get("observedContentType", ""))
        rows = _rows(kind, _body(part))
        if rows is None:
            extra["input_content_type"] = kind
    part = data.get("endpointOutput")
    if part:
        kind = _media(part.get("observedContentType", ""))
        predictions = _predictions(kind, _body(part))
        if predictions is None:
            extra["output_content_type"] = kind
    request_id = str(meta.get("inferenceId") or meta["eventId"])
    return monitoring.CapturedRecord(
        request_id, monitoring.parse_time(meta["inferenceTime"]), rows, predictions, None, extra
    )


def _media(kind: str) -> str:
    return kind.split(";")[0].strip().lower()


def _body(part: dict[str, Any]) -> bytes:
    data = str(part.get("data", ""))
    if str(part.get("encoding", "")).upper() == "BASE64":
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error:
            raise ValueError("captured data is not base64") from None
    return data.encode("utf-8")


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _csv_lines(body: bytes) -> list[list[Any]]:
    reader = csv.reader(io.StringIO(body.decode("utf-8")))
    return [[_value(cell.strip()) for cell in line] for line in reader if line]


def _row(item: Any) -> dict[str, Any]:
    if isinstance(item, dict):
        if "features" in item and isinstance(item["features"], list):
            return _row(item["features"])
        return dict(item)
    if isinstance(item, list):
        return {f"f{i}": value for i, value in enumerate(item)}
    return {"f0": item}


def _rows(kind: str, body: bytes) -> list[dict[str, Any]] | None:
    """The request's rows, or None when its type is not one deployer decodes."""
    try:
        if kind == CSV:
            return [_row(line) for line in _csv_lines(body)]
        if kind in JSONL:
            return [_row(json.loads(line)) for line in body.decode().splitlines() if line.strip()]
        if kind == JSON or kind == "":
            payload = json.loads(body)
            if isinstance(payload, dict):
                payload = payload.get("instances", payload.get("inputs", [payload]))
            if isinstance(payload, list) and payload and not isinstance(payload[0], list | dict):
                payload = [payload]  # one row
            return [_row(item) for item in payload] if isinstance(payload, list) else None
    except (ValueError, UnicodeDecodeError):
        return None
    return None


def _predictions(kind: str, body: bytes) -> list[Any] | None:
    """The response's predictions, or None when its type is not one deployer decodes."""
    try:
        if kind == CSV:
            return [line[0] if len(line) == 1 else line for line in _csv_lines(body)]
        if kind in JSONL:
            return [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        if kind == JSON:
            payload = json.loads(body)
            if isinstance(payload, dict) and "predictions" in payload:
                payload = payload["predictions"]
            return payload if isinstance(payload, list) else [payload]
    except (ValueError, UnicodeDecodeError):
        return None
    return None
