"""Batch prediction on Vertex AI: a BatchPredictionJob on the release's Model.

``batch_submit`` uploads the release's Model (or reuses it: the one ``push`` uploaded)
and creates the job through JobServiceClient: ``input_config`` (``jsonl`` or ``csv``
instances from ``gcs_source.uris``: an object, a wildcard, or a folder ``gs://B/P/`` as
``gs://B/P/*``), ``output_config`` (``jsonl`` predictions under
``gcs_destination.output_uri_prefix``), ``dedicated_resources`` (the target's machine
type, GPU and replicas), ``manual_batch_tuning_parameters.batch_size`` (the spec's rows per
request), the owner and version labels, and ``instance_config`` for the input shaping:
``included_fields`` (the spec's columns, sent as an array in that order), else
``excluded_fields`` (the label column), and ``key_field`` (one ``keep`` column: Vertex
writes it as ``key`` next to each prediction). The image's predict route receives
``{"instances": [...]}``, as online. Vertex writes
``<prefix>/prediction-<model>-<time>/prediction.results-*`` (JSON lines
``{"instance"|"key": ..., "prediction": ...}``) and ``prediction.errors_stats-*``; rows
come back in no guaranteed order (several replicas), each with its instance or key.

Cloud Storage only (``gs://`` in and out); Vertex reads no Parquet. Logs go to Cloud
Logging: ``batch_logs`` gives the job's state, errors and the Logs Explorer query.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from deployer.providers import Progress, Release, UsageError
from deployer.providers.batch import BatchJob, BatchSpec, BatchState
from deployer_gcp import models, names
from deployer_gcp.errors import translated
from deployer_gcp.scope import Scope

UPLOAD_HINT = "upload it first: gcloud storage cp FILE gs://BUCKET/PATH"
_STATES: dict[str, BatchState] = {
    "JOB_STATE_QUEUED": "pending",
    "JOB_STATE_PENDING": "pending",
    "JOB_STATE_RUNNING": "running",
    "JOB_STATE_CANCELLING": "running",
    "JOB_STATE_UPDATING": "running",
    "JOB_STATE_PAUSED": "running",
    "JOB_STATE_SUCCEEDED": "succeeded",
    "JOB_STATE_PARTIALLY_SUCCEEDED": "succeeded",
    "JOB_STATE_FAILED": "failed",
    "JOB_STATE_EXPIRED": "failed",
    "JOB_STATE_CANCELLED": "cancelled",
}
_JOB_ID = re.compile(r"^(projects/[^/]+/locations/[^/]+/batchPredictionJobs/)?(\d+)$")


def check(spec: BatchSpec) -> None:
    """A UsageError naming what Vertex batch prediction cannot take of ``spec``."""
    for name, uri in (("input", spec.input_uri), ("output", spec.output_uri)):
        if not uri.startswith("gs://") or len(uri) <= len("gs://"):
            hint = UPLOAD_HINT if name == "input" else "give an output prefix gs://BUCKET/PATH"
            raise UsageError(
                f"--{name} {uri!r}: Vertex AI batch prediction reads and writes Cloud Storage "
                "only; expected gs://BUCKET/PATH",
                hint=hint,
            )
    if spec.format not in ("jsonl", "csv"):
        raise UsageError(
            f"--format {spec.format}: Vertex AI batch prediction takes jsonl or csv instances",
            hint="convert the input to CSV or JSON Lines",
        )
    if len(spec.keep) > 1:
        raise UsageError(
            f"--keep {','.join(spec.keep)}: Vertex AI carries one key column next to each "
            "prediction (instance_config.key_field); keep one, e.g. an id",
        )
    if not spec.rows_per_request >= 1:
        raise UsageError(f"rows per request {spec.rows_per_request}: expected at least 1")


def instance_config(scope: Scope, spec: BatchSpec) -> Any:
    """The job's input shaping: the features by name (an array in that order), else every
    field but the label; the one ``keep`` column as the key (never sent to the model)."""
    config = scope.api.types.BatchPredictionJob.InstanceConfig()
    if spec.columns:
        config.included_fields = list(spec.columns)
    elif spec.label:
        config.excluded_fields = [spec.label]
    if spec.keep:
        config.key_field = spec.keep[0]
    if spec.columns or spec.label or spec.keep:
        config.instance_type = "array"
    return config


def input_uris(uri: str) -> str:
    """The job's input: a folder (``gs://B/P/``) as the wildcard of every object in it."""
    return uri + "*" if uri.endswith("/") else uri


def job_name(scope: Scope, spec: BatchSpec) -> str:
    return names.display_name(
        spec.job_name
        or f"{scope.project}-{scope.target}-batch-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    )


def submit(
    scope: Scope, release: Release, image_ref: str, spec: BatchSpec, progress: Progress
) -> BatchJob:
    """Create the job (the Model uploaded first when missing); returns at once."""
    check(spec)
    scope.say = progress
    model = models.ensure_model(scope, release, image_ref, progress)
    types = scope.api.types
    low, high = scope.options.replicas
    job = types.BatchPredictionJob(
        display_name=job_name(scope, spec),
        model=model,
        input_config=types.BatchPredictionJob.InputConfig(
            instances_format=spec.format,
            gcs_source=types.GcsSource(uris=[input_uris(spec.input_uri)]),
        ),
        instance_config=instance_config(scope, spec),
        output_config=types.BatchPredictionJob.OutputConfig(
            predictions_format="jsonl",
            gcs_destination=types.GcsDestination(output_uri_prefix=spec.output_uri),
        ),
        dedicated_resources=types.BatchDedicatedResources(
            machine_spec=models.machine_spec(scope),
            starting_replica_count=low,
            max_replica_count=high,
        ),
        manual_batch_tuning_parameters=types.ManualBatchTuningParameters(
            batch_size=spec.rows_per_request
        ),
        labels=names.version_labels(scope.project, scope.target, release.version),
    )
    if scope.options.service_account:
        job.service_account = scope.options.service_account
    api = scope.api
    progress(f"starting batch prediction job {job.display_name} on {model}")
    with translated("create a batch prediction job in", api.parent):
        created = api.jobs.create_batch_prediction_job(
            parent=api.parent, batch_prediction_job=job, retry=api.retry
        )
    return job_of(scope, created)


def full_name(scope: Scope, job_id: str) -> str:
    """The job's resource name from its name or its number."""
    match = _JOB_ID.match(job_id.strip())
    if not match:
        raise UsageError(
            f"job id {job_id!r}: expected a Vertex batch prediction job number or "
            "projects/P/locations/L/batchPredictionJobs/N"
        )
    return f"{scope.api.parent}/batchPredictionJobs/{match.group(2)}"


def get(scope: Scope, job_id: str) -> Any:
    name = full_name(scope, job_id)
    api = scope.api
    with translated("read batch prediction job", name):
        return api.jobs.get_batch_prediction_job(name=name, retry=api.retry)


def status(scope: Scope, job_id: str) -> BatchJob:
    return job_of(scope, get(scope, job_id))


def cancel(scope: Scope, job_id: str) -> BatchJob:
    """Ask Vertex to cancel (best effort: it may still finish); the job as it is now."""
    job = get(scope, job_id)
    if _STATES.get(job.state.name, "running") not in ("pending", "running"):
        return job_of(scope, job)
    api = scope.api
    with translated("cancel batch prediction job", job.name):
        api.jobs.cancel_batch_prediction_job(name=job.name, retry=api.retry)
    return status(scope, job.name)


def logs(scope: Scope, job_id: str) -> Iterator[str]:
    """What can be said here: the job's state, errors, and where Cloud Logging has the
    container's logs (Vertex keeps no log on the job itself)."""
    job = get(scope, job_id)
    number = job.name.rsplit("/", 1)[1]
    yield f"{job.display_name} ({job.name}): {job.state.name}"
    stats = job.completion_stats
    yield (
        f"instances: {stats.successful_count} succeeded, {stats.failed_count} failed, "
        f"{stats.incomplete_count} incomplete"
    )
    if job.error.message:
        yield f"error: {job.error.message}"
    for failure in job.partial_failures:
        yield f"partial failure: {failure.message}"
    query = f'resource.type="ml_job"\nresource.labels.job_id="{number}"'
    yield (
        "the container's logs are in Cloud Logging: "
        f"https://console.cloud.google.com/logs/query;query={quote(query, safe='')}"
        f"?project={scope.options.project}"
    )
    yield f'or: gcloud logging read \'resource.type="ml_job" resource.labels.job_id="{number}"\''


def job_of(scope: Scope, job: Any) -> BatchJob:
    """A BatchPredictionJob as a BatchJob."""
    stats = job.completion_stats
    done, failed = int(stats.successful_count), int(stats.failed_count)
    incomplete = max(0, int(stats.incomplete_count))
    state = _STATES.get(job.state.name, "pending")
    output = job.output_info.gcs_output_directory or (
        job.output_config.gcs_destination.output_uri_prefix
    )
    failures = [f.message for f in job.partial_failures]
    return BatchJob(
        job_id=job.name,
        target=scope.target,
        state=state,
        output_uri=output,
        rows_total=done + failed + incomplete if (done or failed or incomplete) else None,
        rows_done=done,
        rows_failed=failed,
        reason=job.error.message or (failures[0] if failures else None),
        failures=failures,
        details={"vertex_state": job.state.name, "display_name": job.display_name},
    )
