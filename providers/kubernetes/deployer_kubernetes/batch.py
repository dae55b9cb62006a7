"""Batch predictions on Kubernetes: an indexed Job (``job.yaml``) whose pod I of N runs
the image's batch runner (``python -m deployer.serving.batch_runner``) over shard I of the
input, on the volumes ``batch_uris`` defines; status from the Job's conditions and its
pods (a failed shard named with its pod's termination reason and message: the runner's
last lines, which name the files and rows that failed), logs from the pods, cancel by
deleting the Job with Foreground propagation (its pods go first).

The pods carry no model-server labels (``deployer-project``/``deployer-target`` stay on
the Job object): the target's Services never send them traffic.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from deployer.providers import Release, UsageError
from deployer.providers import batch as batch_types
from deployer_kubernetes import batch_uris
from deployer_kubernetes.cluster import Cluster
from deployer_kubernetes.names import LABEL_VERSION, MANAGER, Names, dns_label, label_value
from deployer_kubernetes.options import KubernetesOptions
from deployer_kubernetes.templating import render

LABEL_BATCH = "deployer-batch"
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
CONTAINER = "batch"
ANNOTATION_INPUT = "deployer.dev/batch-input"
ANNOTATION_OUTPUT = "deployer.dev/batch-output"


class BatchJobs:
    """The batch jobs of one target."""

    def __init__(
        self, cluster: Cluster, names: Names, options: KubernetesOptions, target: str
    ) -> None:
        self.cluster = cluster
        self.names = names
        self.options = options
        self.target = target

    # -- the manifest -------------------------------------------------------------------

    def job_name(self, spec: batch_types.BatchSpec, now: datetime | None = None) -> str:
        if spec.job_name is not None:
            if spec.job_name != dns_label(spec.job_name, 63):
                raise UsageError(
                    f"job name {spec.job_name!r}: expected at most 63 lower-case letters, "
                    "digits and '-', starting with a letter"
                )
            return spec.job_name
        stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")
        return f"{dns_label(self.names.base, 34)}-batch-{stamp}-{secrets.token_hex(2)}"

    def manifest(
        self, release: Release, image_ref: str, spec: batch_types.BatchSpec, name: str
    ) -> dict[str, Any]:
        """The indexed Job for ``spec``; UsageError naming what this target cannot do."""
        if spec.format == "parquet":
            raise UsageError(
                "batch format parquet: the serving image has no pyarrow, so a Kubernetes "
                "batch job reads csv or jsonl (convert the input first)"
            )
        source = batch_uris.parse(spec.input_uri, "input")
        sink = batch_uris.parse(spec.output_uri, "output")
        volume_mounts, volumes = batch_uris.mounts(source, sink)
        shards = self.options.batch_parallelism
        pod_labels = {
            "app.kubernetes.io/name": label_value(self.names.project),
            "app.kubernetes.io/component": "batch",
            "app.kubernetes.io/managed-by": MANAGER,
            LABEL_BATCH: name,
            LABEL_VERSION: label_value(release.version),
        }
        options = self.options
        context = {
            "name": name,
            "namespace": self.names.namespace,
            "labels": {**pod_labels, **self.names.owner},
            "annotations": {
                ANNOTATION_INPUT: spec.input_uri,
                ANNOTATION_OUTPUT: spec.output_uri,
                "deployer.dev/image": image_ref,
            },
            "shards": shards,
            "backoff_limit": options.batch_backoff_limit,
            "ttl_seconds": options.batch_ttl_seconds,
            "deadline_seconds": options.batch_deadline_seconds,
            "service_account": options.service_account,
            "image_pull_secrets": (
                [{"name": options.image_pull_secret}] if options.image_pull_secret else None
            ),
            "run_as_user": options.run_as_user,
            "image": image_ref,
            "image_pull_policy": options.image_pull_policy,
            "args": runner_args(spec, source, sink, shards),
            "resources": options.resources.model_dump(exclude_none=True) or None,
            "volume_mounts": volume_mounts,
            "volumes": volumes,
        }
        job = render("job.yaml", context)
        job["spec"]["template"]["metadata"]["labels"] = pod_labels
        return job

    # -- the capability -----------------------------------------------------------------

    def submit(
        self, release: Release, image_ref: str, spec: batch_types.BatchSpec
    ) -> batch_types.BatchJob:
        name = self.job_name(spec)
        job = self.manifest(release, image_ref, spec, name)
        if self.cluster.get("Job", name) is not None:
            raise UsageError(f"batch job {name} already exists in namespace {self.names.namespace}")
        return self.describe(self.cluster.apply(job), [])

    def status(self, job_id: str) -> batch_types.BatchJob:
        job, pods = self._job(job_id), self._pods(job_id)
        found = self.describe(job, pods)
        return _replace(found, **self._counts(pods))

    def _counts(self, pods: list[dict[str, Any]]) -> dict[str, int | None]:
        """Rows read, scored and failed: the runner's per-file lines in the pods' logs."""
        rows = scored = failed = 0
        for pod in pods:
            if (pod.get("status") or {}).get("phase") not in ("Running", "Succeeded", "Failed"):
                continue
            text = self.cluster.pod_log_since(pod["metadata"]["name"], CONTAINER, None)
            for line in text.splitlines():
                data = _json_line(line)
                if data is not None and data.get("event") == "file":
                    rows += int(data.get("rows") or 0)
                    scored += int(data.get("scored") or 0)
                    failed += int(data.get("failed") or 0)
        return {"rows_total": rows, "rows_done": scored, "rows_failed": failed}

    def logs(self, job_id: str) -> Iterator[str]:
        self._job(job_id)
        for pod in self._pods(job_id):
            index = _index(pod)
            text = self.cluster.pod_log_since(pod["metadata"]["name"], CONTAINER, None)
            for line in text.splitlines():
                yield f"[shard {index}] {line}"

    def cancel(self, job_id: str) -> batch_types.BatchJob:
        found = self.status(job_id)
        if found.finished:
            return found
        self.cluster.delete("Job", job_id, propagation="Foreground")
        reason = "cancelled: the Job and its pods were deleted"
        return _replace(found, state="cancelled", reason=reason)

    # -- reading ------------------------------------------------------------------------

    def _job(self, job_id: str) -> dict[str, Any]:
        job = self.cluster.get("Job", job_id)
        if job is None:
            raise UsageError(
                f"no batch job {job_id} in namespace {self.names.namespace} (context "
                f"{self.cluster.context}): cancelled, or deleted "
                f"{self.options.batch_ttl_seconds}s after it finished (batch_ttl_seconds)"
            )
        return job

    def _pods(self, job_id: str) -> list[dict[str, Any]]:
        pods = self.cluster.pods(f"{LABEL_BATCH}={job_id}")
        return sorted(pods, key=lambda p: (_index(p), p["metadata"].get("creationTimestamp", "")))

    def describe(self, job: dict[str, Any], pods: list[dict[str, Any]]) -> batch_types.BatchJob:
        """A BatchJob from the Job's status and its pods."""
        meta, status = job["metadata"], job.get("status") or {}
        conditions = {c["type"]: c for c in status.get("conditions") or [] if c["status"] == "True"}
        failures = [_failure(p) for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
        reason = None
        if "Complete" in conditions:
            state = "succeeded"
        elif "Failed" in conditions:
            state = "failed"
            cond = conditions["Failed"]
            reason = f"{cond.get('reason', 'Failed')}: {cond.get('message', '')}".rstrip(": ")
            if failures:
                reason += "; " + failures[0]
        elif "Suspended" in conditions:
            state = "cancelled"
        else:
            state = "running" if status.get("active") or status.get("startTime") else "pending"
            reason = _waiting(pods)
        annotations = meta.get("annotations") or {}
        return batch_types.BatchJob(
            job_id=meta["name"],
            target=self.target,
            state=state,  # type: ignore[arg-type]
            output_uri=annotations.get(ANNOTATION_OUTPUT, ""),
            reason=reason,
            failures=failures,
            details={
                "namespace": self.names.namespace,
                "shards": (job.get("spec") or {}).get("completions"),
                "active": status.get("active", 0),
                "succeeded": status.get("succeeded", 0),
                "failed": status.get("failed", 0),
                "completed_indexes": status.get("completedIndexes", ""),
                "input_uri": annotations.get(ANNOTATION_INPUT, ""),
            },
        )


def runner_args(
    spec: batch_types.BatchSpec,
    source: batch_uris.Place,
    sink: batch_uris.Place,
    shards: int,
) -> list[str]:
    """The batch runner's command line (its module docstring has the contract)."""
    args = [
        "--input",
        source.inside(batch_uris.IN_ROOT),
        "--output",
        sink.inside(batch_uris.OUT_ROOT).rstrip("/") + "/",  # a folder, whatever the input
        "--format",
        spec.format,
        "--rows-per-batch",
        str(spec.rows_per_request),
        *spec.shaping_args(),
    ]
    # the kubelet expands $(VAR) from the container's env; the Job controller sets this one
    return [*args, "--shard-index", "$(JOB_COMPLETION_INDEX)", "--shard-count", str(shards)]


def _index(pod: dict[str, Any]) -> int:
    meta = pod["metadata"]
    value = (meta.get("labels") or {}).get(INDEX_KEY) or (meta.get("annotations") or {}).get(
        INDEX_KEY, "-1"
    )
    return int(value) if str(value).lstrip("-").isdigit() else -1


def _waiting(pods: list[dict[str, Any]]) -> str | None:
    """Why a shard's pod cannot start (unschedulable, an image or volume problem), or None."""
    for pod in pods:
        status = pod.get("status") or {}
        if status.get("phase") != "Pending":
            continue
        for condition in status.get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                return f"shard {_index(pod)} waits: {condition.get('message', '')}".rstrip(": ")
        for container in status.get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") not in (None, "ContainerCreating"):
                return f"shard {_index(pod)} waits: {waiting['reason']}: " + waiting.get(
                    "message", ""
                )
    return None


def _failure(pod: dict[str, Any]) -> str:
    """``shard I (pod P): exit code C, Reason: the runner's failures``."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
    terminated = (statuses[0].get("state") or {}).get("terminated") or {}
    code = terminated.get("exitCode")
    text = f"shard {_index(pod)} (pod {pod['metadata']['name']}): "
    text += f"exit code {code}, {terminated.get('reason') or 'Error'}"
    message = (terminated.get("message") or "").strip()
    if message:
        text += f": {'; '.join(_failed_rows(message))}"
    return text


def _failed_rows(message: str) -> list[str]:
    """The runner's failure lines (``{"file", "rows", "error"}``) as text; other lines kept
    (the last few) when there are none."""
    found = []
    for line in message.splitlines():
        data = _json_line(line)
        if data is not None and "error" in data:
            rows = data.get("rows")
            where = f"{data.get('file', '?')}" + (f" rows {rows}" if rows is not None else "")
            found.append(f"{where}: {data['error']}")
    return found or message.splitlines()[-3:]


def _json_line(line: str) -> dict[str, Any] | None:
    """One of the runner's JSON lines, or None."""
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _replace(job: batch_types.BatchJob, **changes: Any) -> batch_types.BatchJob:
    from dataclasses import replace

    return replace(job, **changes)
