"""The fake's SageMaker Batch Transform: moto 5.2 stores CreateTransformJob and marks it
Completed at once, and has no StopTransformJob. Here:

- ``transform_problems``: what SageMaker refuses beyond botocore's model (an unknown model,
  a job name in use, S3 URIs, ``MaxPayloadInMB x MaxConcurrentTransforms`` over 100 MB,
  ``SplitType: None`` with MultiRecord, a JSON join with a CSV Accept, filters the
  JSONPath subset Batch Transform documents cannot hold);
- a created job is ``InProgress`` and RUNS: a thread reads every object under the input
  prefix from moto's S3, splits it by line, applies ``InputFilter``, groups the records
  into MultiRecord requests of at most ``MaxPayloadInMB``, POSTs them to the model
  image's ``/invocations`` (the container the online fake runs, or ``model_answers``),
  joins and filters the answer (``JoinSource``, ``OutputFilter``), and writes
  ``<output>/<relative name>.out``; then ``Completed``, or ``Failed`` with a reason
  naming the file and the records; its lines go to CloudWatch Logs
  ``/aws/sagemaker/TransformJobs`` (``<job>/<instance>`` and ``<job>/data-log``);
- ``StopTransformJob``: ``Stopping``, then ``Stopped`` once the runner sees it.

``fake.hold_transforms`` (an Event, set: run at once) lets a test see a job in progress.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx

MB = 1024 * 1024
LOG_GROUP = "/aws/sagemaker/TransformJobs"
S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/?(?P<key>.*)$")
KEYS = re.compile(r"^\$\[(?P<keys>'[^']+'(,\s*'[^']+')*)\]$")
FIELD = re.compile(r"^\$\.(?P<key>[A-Za-z_][A-Za-z0-9_]*)$")


@dataclass
class Transform:
    """One job the fake runs."""

    name: str
    request: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    bodies: list[bytes] = field(default_factory=list)  # each request to /invocations


class JobFailed(Exception):
    """The job fails with this reason."""


def _filter_ok(expression: str) -> bool:
    return expression == "$" or bool(FIELD.match(expression) or KEYS.match(expression))


def transform_problems(fake: Any, body: dict[str, Any]) -> list[str]:
    """CreateTransformJob against SageMaker's documented rules."""
    found: list[str] = []
    backend = fake.sagemaker
    if body.get("ModelName") not in backend._models:
        found.append(f'Could not find model "{body.get("ModelName")}"')
    if body.get("TransformJobName") in backend.transform_jobs:
        found.append("Job name must be unique within an AWS account and region")
    source = ((body.get("TransformInput") or {}).get("DataSource") or {}).get("S3DataSource") or {}
    for where, uri in (
        ("TransformInput.DataSource.S3DataSource.S3Uri", source.get("S3Uri", "")),
        ("TransformOutput.S3OutputPath", (body.get("TransformOutput") or {}).get("S3OutputPath")),
    ):
        if not S3_URI.match(str(uri or "")):
            found.append(f"{where}: {uri!r} is not an s3://bucket/prefix URI")
    payload = body.get("MaxPayloadInMB", 6)
    concurrent = body.get("MaxConcurrentTransforms", 1) or 1
    if payload * concurrent > 100:
        found.append(
            f"MaxPayloadInMB ({payload}) x MaxConcurrentTransforms ({concurrent}) exceeds 100 MB"
        )
    split = (body.get("TransformInput") or {}).get("SplitType", "None")
    if body.get("BatchStrategy") == "MultiRecord" and split == "None":
        found.append("BatchStrategy MultiRecord needs a SplitType (Line, RecordIO, TFRecord)")
    processing = body.get("DataProcessing") or {}
    kind = (body.get("TransformInput") or {}).get("ContentType", "")
    accept = (body.get("TransformOutput") or {}).get("Accept", "")
    if processing.get("JoinSource") == "Input" and "json" in kind and "json" not in accept:
        found.append("DataProcessing.JoinSource Input with JSON input needs a JSON Accept")
    for key in ("InputFilter", "OutputFilter"):
        if key in processing and not _filter_ok(processing[key]):
            found.append(f"DataProcessing.{key}: {processing[key]!r} is not a supported JSONPath")
    return found


def install(fake: Any) -> None:
    """Patch moto: jobs in progress run in a thread; StopTransformJob."""
    from moto.core.responses import EmptyResult
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    original = SageMakerModelBackend.create_transform_job

    def create_transform_job(backend: Any, **kwargs: Any) -> Any:
        job = original(backend, **kwargs)
        job.transform_job_status = "InProgress"
        job.transform_end_time = None
        request = {
            "ModelName": kwargs["model_name"],
            "MaxPayloadInMB": kwargs.get("max_payload_in_mb") or 6,
            "TransformInput": kwargs["transform_input"],
            "TransformOutput": kwargs["transform_output"],
            "DataProcessing": kwargs.get("data_processing") or {},
        }
        transform = Transform(job.transform_job_name, request)
        fake.transforms[transform.name] = transform
        threading.Thread(target=run, args=(fake, transform), daemon=True).start()
        return job

    def stop_transform_job(backend: Any, name: str) -> None:
        job = backend.transform_jobs.get(name)
        if job is None:
            raise ValidationError(message=f"Could not find transform job '{name}'.")
        if job.transform_job_status not in ("InProgress", "Stopping"):
            raise ValidationError(
                message=f"Transform job {name} is {job.transform_job_status}; it cannot be stopped"
            )
        job.transform_job_status = "Stopping"
        fake.transforms[name].stop.set()

    def response_stop(response: Any) -> Any:
        response.sagemaker_backend.stop_transform_job(response._get_param("TransformJobName"))
        return EmptyResult()

    fake._set(SageMakerModelBackend, "create_transform_job", create_transform_job)
    fake._set(SageMakerModelBackend, "stop_transform_job", stop_transform_job)
    fake._set(SageMakerResponse, "stop_transform_job", response_stop)


def run(fake: Any, transform: Transform) -> None:
    """Run the job (see the module docstring); always ends it and sets ``done``."""
    job = fake.sagemaker.transform_jobs[transform.name]
    logs = _Logs(fake, transform.name)
    try:
        fake.hold_transforms.wait(60)
        if transform.stop.is_set():
            job.transform_job_status = "Stopped"
            return
        _transform(fake, transform, logs)
        job.transform_job_status = "Stopped" if transform.stop.is_set() else "Completed"
    except JobFailed as exc:
        job.transform_job_status = "Failed"
        job.failure_reason = str(exc)
        logs.data(str(exc))
    except Exception as exc:  # the fake's own failure: visible as the job's reason
        job.transform_job_status = "Failed"
        job.failure_reason = f"fake: {type(exc).__name__}: {exc}"
    finally:
        job.transform_end_time = datetime.now(timezone.utc)
        transform.done.set()


def _transform(fake: Any, transform: Transform, logs: _Logs) -> None:
    request = transform.request
    source = request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
    out = S3_URI.match(request["TransformOutput"]["S3OutputPath"])
    found = S3_URI.match(source)
    assert found is not None and out is not None
    bucket, prefix = found.group("bucket"), found.group("key")
    s3 = fake.s3
    try:
        keys = sorted(k for k in s3.get_bucket(bucket).keys if k.startswith(prefix))
    except Exception:
        raise JobFailed(
            f"ClientError: no S3 objects at {source}: the bucket does not exist"
        ) from None
    keys = [k for k in keys if not k.endswith("/")]
    if not keys:
        raise JobFailed(f"ClientError: no S3 objects found under {source}")
    model = fake.sagemaker._models[request["ModelName"]]
    post = _poster(fake, model.primary_container["Image"], request)
    limit = int(request.get("MaxPayloadInMB", 6)) * MB
    processing = request.get("DataProcessing") or {}
    base = prefix if prefix.endswith("/") or not prefix else prefix.rsplit("/", 1)[0] + "/"
    for key in keys:
        if transform.stop.is_set():
            return
        uri = f"s3://{bucket}/{key}"
        text = s3.get_object(bucket, key).value.decode("utf-8")
        records = [line for line in text.splitlines() if line.strip()]
        logs.instance(f"{uri}: {len(records)} records")
        results: list[str] = []
        for first, batch in _batches(records, processing, limit, uri):
            body = "\n".join(batch).encode() + b"\n"
            transform.bodies.append(body)
            answer = post(body)
            results.extend(_answers(answer, len(batch), first, uri))
        joined = [
            _output(record, result, processing)
            for record, result in zip(records, results, strict=True)
        ]
        relative = key[len(base) :] if key.startswith(base) else key.rsplit("/", 1)[-1]
        target = "/".join(p for p in (out.group("key").strip("/"), relative + ".out") if p)
        s3.put_object(out.group("bucket"), target, ("\n".join(joined) + "\n").encode())
        logs.data(f"{uri}: {len(records)} records scored into s3://{out.group('bucket')}/{target}")


def _batches(
    records: list[str], processing: dict[str, Any], limit: int, uri: str
) -> list[tuple[int, list[str]]]:
    """MultiRecord requests (first record number, records) of at most ``limit`` bytes."""
    batches: list[tuple[int, list[str]]] = []
    current: list[str] = []
    size, first = 0, 1
    for number, record in enumerate(records, 1):
        item = _select(record, processing.get("InputFilter", "$"), uri, number)
        length = len(item.encode()) + 1
        if length > limit:
            raise JobFailed(
                f"ClientError: {uri}: record {number} is {length} bytes, larger than "
                f"MaxPayloadInMB ({limit // MB} MB)"
            )
        if current and size + length > limit:
            batches.append((first, current))
            current, size, first = [], 0, number
        current.append(item)
        size += length
    if current:
        batches.append((first, current))
    return batches


def _select(record: str, expression: str, uri: str, number: int) -> str:
    """Batch Transform's InputFilter on one JSON record ($ or $.key or $['a','b'])."""
    if expression == "$":
        return record
    try:
        value = json.loads(record)
    except ValueError:
        raise JobFailed(f"ClientError: {uri}: record {number} is not JSON") from None
    return json.dumps(_path(value, expression, uri, number))


def _path(value: Any, expression: str, uri: str, number: int) -> Any:
    field_match = FIELD.match(expression)
    if field_match:
        if not isinstance(value, dict) or field_match.group("key") not in value:
            raise JobFailed(f"ClientError: {uri}: record {number} has no {expression}")
        return value[field_match.group("key")]
    keys = re.findall(r"'([^']+)'", expression)
    if not isinstance(value, dict):
        raise JobFailed(f"ClientError: {uri}: record {number} is not a JSON object")
    return {k: value[k] for k in keys if k in value}


def _answers(answer: tuple[int, bytes, str], count: int, first: int, uri: str) -> list[str]:
    status, body, _ = answer
    last = first + count - 1
    if status != 200:
        text = body.decode(errors="replace")[:300]
        raise JobFailed(
            f"ClientError: {uri}: records {first}-{last}: Bad HTTP status received from "
            f"algorithm: {status}: {text}"
        )
    lines = [line for line in body.decode().splitlines() if line.strip()]
    if len(lines) != count:
        raise JobFailed(
            f"ClientError: {uri}: records {first}-{last}: the model answered {len(lines)} "
            f"lines for {count} records"
        )
    return lines


def _output(record: str, result: str, processing: dict[str, Any]) -> str:
    """JoinSource Input (the record with SageMakerOutput), then OutputFilter."""
    if processing.get("JoinSource") != "Input":
        return result
    joined = {**json.loads(record), "SageMakerOutput": json.loads(result)}
    expression = processing.get("OutputFilter", "$")
    return json.dumps(joined if expression == "$" else _path(joined, expression, "", 0))


def _poster(fake: Any, image: str, request: dict[str, Any]) -> Any:
    kind = request["TransformInput"]["ContentType"]
    accept = request["TransformOutput"].get("Accept", kind)

    def post(body: bytes) -> tuple[int, bytes, str]:
        if fake.model_answers:
            return fake.model_answers.pop(0)  # type: ignore[no-any-return]
        url = fake._container_url(image)
        headers = {"content-type": kind, "accept": accept}
        answer = httpx.post(f"{url}/invocations", content=body, headers=headers, timeout=60)
        return answer.status_code, answer.content, answer.headers.get("content-type", "")

    return post


class _Logs:
    """The job's CloudWatch Logs streams, written straight into moto's backend."""

    def __init__(self, fake: Any, job: str) -> None:
        self.backend = fake.logs
        self.job = job
        if LOG_GROUP not in self.backend.groups:
            self.backend.create_log_group(LOG_GROUP, {})
        self.streams: set[str] = set()

    def _put(self, stream: str, message: str) -> None:
        name = f"{self.job}/{stream}"
        if name not in self.streams:
            self.backend.create_log_stream(LOG_GROUP, name)
            self.streams.add(name)
        event = {"timestamp": int(time.time() * 1000), "message": message}
        self.backend.put_log_events(LOG_GROUP, name, [event])

    def instance(self, message: str) -> None:
        self._put("i-0fake0instance", message)

    def data(self, message: str) -> None:
        self._put("data-log", message)
