"""Batch predictions with SageMaker Batch Transform: the release's model (``CreateModel``,
the same model a push creates) and one ``CreateTransformJob`` over S3.

- input and output: ``s3://`` only (Batch Transform reads and writes S3; a local path is a
  UsageError saying how to upload it); every object under the input prefix is scored
  into ``<output>/<its name>.out`` (SageMaker's naming);
- ``csv`` -> ``text/csv`` (no header line: SageMaker sends every line as a record),
  ``jsonl`` -> ``application/jsonlines``; parquet is refused (Batch Transform splits text
  by line); ``SplitType: Line``, ``BatchStrategy: MultiRecord``, ``AssembleWith: Line``,
  ``MaxPayloadInMB`` from ``BatchSpec.max_payload_bytes``, at most InvokeEndpoint's 6 MB;
- ``--label`` / ``--keep`` the SageMaker way, for JSON Lines objects that hold the model's
  features under ``features``: ``InputFilter: $.features`` (the label and the other keys
  never reach the model), ``JoinSource: Input`` and ``OutputFilter: $['id',...,
  'SageMakerOutput']`` (the kept keys next to the prediction). CSV has no column names
  in Batch Transform, so ``keep``/``label`` with CSV is refused;
- ``BatchSpec.columns`` and ``rows_per_request`` have no Batch Transform equivalent: the
  model gets each record's features as they are (positional), and a request holds as many
  records as fit in ``MaxPayloadInMB``;
- instances: ``batch_instance_type`` (default ``instance_type``) x ``batch_instance_count``;
- status from ``DescribeTransformJob`` (``FailureReason`` as the reason, the job's
  ``data-log`` lines naming the failed files as failures), cancel with
  ``StopTransformJob``, logs from CloudWatch Logs ``/aws/sagemaker/TransformJobs``
  (streams ``<job>/...``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from deployer.providers import UsageError
from deployer.providers import batch as sdk
from deployer_aws import names
from deployer_aws.sagemaker import desired

if TYPE_CHECKING:
    from deployer.providers import Progress, Release
    from deployer_aws.deploy import Scope

MB = 1024 * 1024
MAX_PAYLOAD_MB = 6  # InvokeEndpoint's limit, which the image's server is sized for
LOG_GROUP = "/aws/sagemaker/TransformJobs"
CONTENT_TYPES = {"csv": "text/csv", "jsonl": "application/jsonlines"}
STATES: dict[str, sdk.BatchState] = {
    "InProgress": "running",
    "Stopping": "running",
    "Completed": "succeeded",
    "Failed": "failed",
    "Stopped": "cancelled",
}
NOT_FOUND = "Could not find"


def check_uri(uri: str, what: str) -> str:
    """``uri`` when it is an s3:// URI with a bucket, else a UsageError saying to upload."""
    if uri.startswith("s3://") and len(uri) > len("s3://") and not uri[5:].startswith("/"):
        return uri
    hint = (
        f"upload it first, e.g. `aws s3 sync {uri} s3://BUCKET/PREFIX/`, and pass that URI"
        if what == "input"
        else "pass s3://BUCKET/PREFIX/ and download the results with `aws s3 sync`"
    )
    raise UsageError(
        f"SageMaker Batch Transform reads and writes S3 only: --{what} {uri!r} is not an "
        "s3://BUCKET/PREFIX URI",
        hint=hint,
    )


def payload_mb(spec: sdk.BatchSpec) -> int:
    """MaxPayloadInMB: the spec's bound in whole MB, 1 to 6."""
    return max(1, min(MAX_PAYLOAD_MB, spec.max_payload_bytes // MB))


def data_processing(spec: sdk.BatchSpec) -> dict[str, str]:
    """The job's DataProcessing for ``label``/``keep`` (see the module docstring)."""
    if not spec.keep and not spec.label:
        return {}
    if spec.format != "jsonl":
        raise UsageError(
            f"--keep/--label on SageMaker need JSON Lines input: Batch Transform's CSV has no "
            f"column names (format {spec.format})",
            hint='write each row as {"features": [...], "id": ...} and use --format jsonl',
        )
    processing = {"InputFilter": "$.features"}
    if spec.keep:
        keys = ",".join(f"'{key}'" for key in (*spec.keep, "SageMakerOutput"))
        processing.update(JoinSource="Input", OutputFilter=f"$[{keys}]")
    return processing


def job_name(scope: Scope, spec: sdk.BatchSpec) -> str:
    """The spec's name made to fit SageMaker's rules (letters, digits and '-', at most 63:
    other characters become '-', a longer name keeps a hash of the whole), else
    ``<endpoint>-<UTC time>``."""
    if spec.job_name:
        return names.shorten(names.clean(spec.job_name), 63) or "deployer-batch"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return f"{names.shorten(scope.endpoint, 63 - len(stamp) - 1)}-{stamp}"


def request(
    scope: Scope, model: str, spec: sdk.BatchSpec, name: str, tags: list[dict[str, str]]
) -> dict[str, Any]:
    """The CreateTransformJob parameters."""
    if spec.format not in CONTENT_TYPES:
        raise UsageError(
            f"SageMaker Batch Transform splits text by line: format {spec.format!r} is not "
            "supported; expected csv or jsonl",
            hint="convert the input to CSV or JSON Lines",
        )
    kind = CONTENT_TYPES[spec.format]
    options = scope.options
    params: dict[str, Any] = {
        "TransformJobName": name,
        "ModelName": model,
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": payload_mb(spec),
        "TransformInput": {
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": check_uri(spec.input_uri, "input"),
                }
            },
            "ContentType": kind,
            "SplitType": "Line",
        },
        "TransformOutput": {
            "S3OutputPath": check_uri(spec.output_uri, "output"),
            "Accept": kind,
            "AssembleWith": "Line",
        },
        "TransformResources": {
            "InstanceType": options.batch_instance_type or options.instance_type,
            "InstanceCount": options.batch_instance_count,
        },
        "Tags": tags,
    }
    processing = data_processing(spec)
    if processing:
        params["DataProcessing"] = processing
    return params


def submit(
    scope: Scope, release: Release, image_ref: str, spec: sdk.BatchSpec, progress: Progress
) -> sdk.BatchJob:
    """Create the release's model when missing, then the transform job; returns at once."""
    want = desired(scope.options, scope.endpoint, release.version, image_ref, scope.repository)
    extra = names.annotation_tags(release.annotations)
    tags = [*scope.tags(release.version), *({"Key": k, "Value": v} for k, v in extra.items())]
    name = job_name(scope, spec)
    params = request(scope, want.name, spec, name, tags)  # refuses bad input before creating
    sm = scope.sm
    if sm.describe_model(want.name) is None:
        progress(f"creating model {want.name}")
        sm.create_model(want, scope.options.role_arn, tags)
    progress(f"creating transform job {name} ({spec.input_uri} -> {spec.output_uri})")
    answer = scope.aws.call("sagemaker", "create_transform_job", f"transform job {name}", **params)
    details = {"job_arn": answer.get("TransformJobArn"), "model": want.name}
    return sdk.BatchJob(name, scope.target, "pending", spec.output_uri, details=details)


def _describe(scope: Scope, job_id: str) -> dict[str, Any]:
    found = scope.aws.call(
        "sagemaker",
        "describe_transform_job",
        f"transform job {job_id}",
        absent=NOT_FOUND,
        TransformJobName=job_id,
    )
    if found is None:
        raise UsageError(f"{scope.target} has no SageMaker transform job {job_id}")
    return dict(found)


def status(scope: Scope, job_id: str) -> sdk.BatchJob:
    """The job as DescribeTransformJob reports it."""
    described = _describe(scope, job_id)
    state = STATES.get(str(described.get("TransformJobStatus")), "pending")
    output = (described.get("TransformOutput") or {}).get("S3OutputPath", "")
    failures = _failures(scope, job_id) if state == "failed" else []
    resources = described.get("TransformResources") or {}
    details = {
        "status": described.get("TransformJobStatus"),
        "model": described.get("ModelName"),
        "instance_type": resources.get("InstanceType"),
        "instance_count": resources.get("InstanceCount"),
        "input": ((described.get("TransformInput") or {}).get("DataSource") or {})
        .get("S3DataSource", {})
        .get("S3Uri"),
    }
    return sdk.BatchJob(
        job_id,
        scope.target,
        state,
        output,
        reason=described.get("FailureReason") or None,
        failures=failures,
        details=details,
    )


def cancel(scope: Scope, job_id: str) -> sdk.BatchJob:
    """StopTransformJob (a finished job is left as it is); the job afterwards."""
    job = status(scope, job_id)
    if job.finished:
        return job
    scope.aws.call(
        "sagemaker", "stop_transform_job", f"transform job {job_id}", TransformJobName=job_id
    )
    return status(scope, job_id)


def logs(scope: Scope, job_id: str) -> Iterator[str]:
    """Every line of the job's log streams (``<job>/...``), each prefixed with its stream;
    nothing while SageMaker has written none."""
    for stream in _streams(scope, job_id):
        short = stream[len(job_id) + 1 :]
        for message in _events(scope, stream):
            yield f"{short}: {message}"


def _streams(scope: Scope, job_id: str) -> list[str]:
    found: list[str] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"logGroupName": LOG_GROUP, "logStreamNamePrefix": f"{job_id}/"}
        if token:
            params["nextToken"] = token
        page = scope.aws.call(
            "logs",
            "describe_log_streams",
            f"log group {LOG_GROUP}",
            absent="ResourceNotFoundException",
            **params,
        )
        if page is None:
            return found
        found.extend(s["logStreamName"] for s in page.get("logStreams", []))
        token = page.get("nextToken")
        if not token:
            return sorted(found)


def _events(scope: Scope, stream: str) -> Iterator[str]:
    token: str | None = None
    while True:
        params: dict[str, Any] = {
            "logGroupName": LOG_GROUP,
            "logStreamName": stream,
            "startFromHead": True,
        }
        if token:
            params["nextToken"] = token
        page: Mapping[str, Any] = scope.aws.call(
            "logs", "get_log_events", f"log stream {stream}", **params
        )
        events = page.get("events", [])
        for event in events:
            yield str(event.get("message", ""))
        following = page.get("nextForwardToken")
        if not events or following == token:
            return
        token = following


def _failures(scope: Scope, job_id: str) -> list[str]:
    """The data-log lines that name a failed file or record."""
    stream = f"{job_id}/data-log"
    if stream not in _streams(scope, job_id):
        return []
    return [line for line in _events(scope, stream) if "Bad HTTP status" in line or "rror" in line]
