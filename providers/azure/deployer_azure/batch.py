"""Batch prediction jobs on an Azure ML batch endpoint (the RunsBatch capability).

``submit`` makes sure the target's batch endpoint (``<endpoint>-batch``, tagged like the
online one) exists, registers the scoring script's code asset, creates or updates the
batch deployment ``v<version>`` of the release's image on the ``batch_compute`` cluster
(``batch_instance_count`` nodes, ``batch_mini_batch_size`` files per ``run()``, retries,
error threshold, output action; the job's options in its environment) and invokes the
endpoint on that deployment with the input (a file, or a folder when the path ends with
``/``) and the output folder (batch_specs.py says which paths). It returns at once.

``status`` is the job's (``jobs.get``; Azure's job states mapped onto BatchState) with,
for a failed job, Azure's own error message from the job's run details. ``logs`` yields
the job's log files as the run details list them (the driver's stdout/stderr, where each
failed row is one JSON line), else the job's studio address. ``cancel`` is
``jobs.begin_cancel``. Rows are not counted by Azure: ``rows_*`` stay None; the output
folder holds one output file per input file.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from typing import Any

from deployer.providers import Progress, Release, UsageError
from deployer.providers import batch as sdk
from deployer_azure import batch_specs, endpoints, names, specs
from deployer_azure.auth import azure_errors
from deployer_azure.workspace import Workspace

OUTPUT = "score"  # a model batch deployment's output
STATES: dict[str, sdk.BatchState] = {
    "notstarted": "pending",
    "starting": "pending",
    "provisioning": "pending",
    "preparing": "pending",
    "queued": "pending",
    "running": "running",
    "finalizing": "running",
    "cancelrequested": "running",
    "completed": "succeeded",
    "failed": "failed",
    "notresponding": "failed",
    "canceled": "cancelled",
}


def submit(
    ws: Workspace, release: Release, image_ref: str, spec: sdk.BatchSpec, progress: Progress
) -> sdk.BatchJob:
    """Start a job scoring ``spec.input_uri`` into ``spec.output_uri``; returns at once."""
    from azure.ai.ml import Input, Output

    if spec.format == "parquet":
        raise UsageError(
            f"{ws.target}: format parquet: the image's batch driver reads CSV and JSON Lines "
            "only (the serving image has no pyarrow)",
            hint="convert the input to csv or jsonl, or score it with --to local",
        )
    endpoint = batch_specs.endpoint_name(ws)
    deployment = names.deployment_name(release.version)
    with azure_errors(f"starting a batch job on batch endpoint {endpoint}", ws.scope):
        source = batch_specs.data_path(spec.input_uri, ws.ml.datastores, "input")
        sink = batch_specs.data_path(spec.output_uri, ws.ml.datastores, "output")
        _endpoint(ws, endpoint, progress)
        code = batch_specs.code_id(ws)
        tags = ws.tags(**{names.TAG_VERSION: release.version, names.TAG_IMAGE: image_ref[:256]})
        entity = batch_specs.deployment_entity(
            ws.options, endpoint, deployment, image_ref, code, spec, tags
        )
        progress(
            f"batch deployment {deployment} on {ws.options.batch_compute} "
            f"({ws.options.batch_instance_count} node(s)) from {image_ref}"
        )
        ws.ml.batch_deployments.begin_create_or_update(entity).result()
        asset = source.startswith("azureml:") and not source.startswith("azureml://")
        kind = "uri_folder" if asset or source.endswith("/") else "uri_file"
        with warnings.catch_warnings():  # the SDK's schemas warn about marshmallow
            warnings.simplefilter("ignore")
            job = ws.ml.batch_endpoints.invoke(
                endpoint_name=endpoint,
                deployment_name=deployment,
                input=Input(type=kind, path=source),
                outputs={OUTPUT: Output(type="uri_folder", path=sink)},
                job_name=spec.job_name,
            )
    progress(f"batch job {job.name} submitted to {endpoint}/{deployment}")
    state = _state(job.status)
    details = {"endpoint": endpoint, "deployment": deployment, "id": job.id}
    return sdk.BatchJob(job.name, ws.target, state, spec.output_uri, details=details)


def _state(value: Any) -> sdk.BatchState:
    """Azure's job status (a string or the SDK's enum) as a BatchState."""
    return STATES.get(specs.state(value).lower(), "pending")


def _endpoint(ws: Workspace, name: str, progress: Progress) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        found = ws.ml.batch_endpoints.get(name)
    except ResourceNotFoundError:
        progress(f"creating batch endpoint {name}")
        ws.ml.batch_endpoints.begin_create_or_update(batch_specs.endpoint_entity(ws, name)).result()
        return
    if not endpoints.ours(ws, found):
        raise UsageError(
            f"batch endpoint {name} exists but is not tagged for project {ws.project}, "
            f"target {ws.target}; deployer leaves it alone",
            hint=f"choose another name with targets.{ws.target}.batch_endpoint_name",
        )


def status(ws: Workspace, job_id: str) -> sdk.BatchJob:
    """The job's state; a failed job's reason is Azure's error message."""
    with azure_errors(f"reading batch job {job_id}", ws.scope):
        job = _job(ws, job_id)
        state = _state(job.status)
        reason = _error(ws, job_id) if state == "failed" else None
    output = getattr((getattr(job, "outputs", None) or {}).get(OUTPUT), "path", None) or ""
    details = {"status": specs.state(job.status), "studio": _studio(job)}
    return sdk.BatchJob(job_id, ws.target, state, str(output), reason=reason, details=details)


def logs(ws: Workspace, job_id: str) -> Iterator[str]:
    """The job's log files (name, then its lines), or where to read them."""
    with azure_errors(f"reading the logs of batch job {job_id}", ws.scope):
        job = _job(ws, job_id)
        files = _details(ws, job_id).get("log_files") or {}
        for name, url in sorted(files.items()):
            yield f"== {name}"
            yield from _download(ws, url).splitlines()
    if not files:
        yield f"batch job {job_id}: {job.status}; no log files yet: {_studio(job) or ''}"


def cancel(ws: Workspace, job_id: str) -> sdk.BatchJob:
    """Cancel the job (``jobs.begin_cancel``), then its state."""
    with azure_errors(f"cancelling batch job {job_id}", ws.scope):
        _job(ws, job_id)
        ws.ml.jobs.begin_cancel(job_id).result()
    return status(ws, job_id)


def _job(ws: Workspace, job_id: str) -> Any:
    from azure.core.exceptions import ResourceNotFoundError

    # jobs.get logs "Proceeding with no tenant id appended to studio URL" at INFO
    logging.getLogger("azure.ai.ml.operations._job_operations").setLevel(logging.WARNING)
    try:
        return ws.ml.jobs.get(job_id)
    except ResourceNotFoundError:
        raise UsageError(f"{ws.target}: no batch job {job_id} in the workspace") from None


def _details(ws: Workspace, job_id: str) -> dict[str, Any]:
    """The job's run details (run history: its error and log files), {} when unreadable."""
    from azure.core.exceptions import HttpResponseError

    try:
        details = ws.ml.jobs._runs_operations.get_run_details(job_id)
    except (HttpResponseError, AttributeError):
        return {}
    error = getattr(getattr(details, "error", None), "error", None)
    return {
        "error": getattr(error, "message", None),
        "code": getattr(error, "code", None),
        "log_files": dict(getattr(details, "log_files", None) or {}),
    }


def _error(ws: Workspace, job_id: str) -> str:
    details = _details(ws, job_id)
    message = details.get("error")
    if not message:
        return "the job failed; `deployer batch logs` shows its logs"
    return f"{details['code']}: {message}" if details.get("code") else str(message)


def _download(ws: Workspace, url: str) -> str:
    """A log file from its (SAS) address."""
    import httpx

    from deployer_azure.client import ca_verify

    response = httpx.get(url, timeout=60, verify=ca_verify())
    response.raise_for_status()
    return response.text


def _studio(job: Any) -> str | None:
    return getattr(job, "studio_url", None) or None
