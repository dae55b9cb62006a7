"""The local target's batch jobs: the release's image runs the batch runner
(``docker run IMAGE batch ...``, deployer.serving.batch_runner) over local files.

Why a container running the runner rather than the server fed HTTP batches from the
host: no encode/decode of every row twice and no HTTP round trips, the input is read once
where it lies (mounted read-only), and the runner's chunk parts make a re-run resume.
The container runs as the calling user (its output files are the user's), with no
network, a read-only root and /tmp only. Its stdout is the runner's progress (JSON lines),
its stderr the failures; the job id is the container's name. A finished job's container is
removed once its outcome has been read (the core keeps the record in .deployer/batch).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from deployer.providers import DeployerError, Progress, Release, UsageError
from deployer.providers.batch import BatchJob, BatchSpec, BatchState

__all__ = ["BatchJob", "BatchSpec", "LocalBatch"]  # provider.py imports the SDK only

IN, OUT = "/batch/in", "/batch/out"
LABEL_JOB = "deployer-batch-job"


def _mounts(spec: BatchSpec) -> tuple[list[str], str, str, str]:
    """Docker binds (``host:inner:mode``; a list: the input's folder may also be the
    output's), the runner's --input/--output inside the container, and the host folder
    seen as IN."""
    if "://" in spec.input_uri or "://" in spec.output_uri:
        raise UsageError(
            f"the local target reads and writes local paths; got {spec.input_uri!r} -> "
            f"{spec.output_uri!r}"
        )
    source = Path(spec.input_uri).resolve()
    if not source.exists():
        raise UsageError(f"{spec.input_uri}: no such file or folder")
    if spec.format == "parquet":
        raise UsageError(
            "the serving image carries no pyarrow, so it reads CSV or JSON Lines; "
            "score Parquet with --endpoint (read here, predicted by the running deployment), "
            "--in-process, or convert it"
        )
    output = Path(spec.output_uri).resolve()
    for path in (source, output):
        if ":" in str(path):  # a Docker bind is host:inner:mode
            raise UsageError(f"{path}: the local target cannot mount a path holding ':'")
    if source.is_dir():
        output.mkdir(parents=True, exist_ok=True)
        return [f"{source}:{IN}:ro", f"{output}:{OUT}:rw"], IN, OUT, str(source)
    into_folder = spec.output_uri.endswith(os.sep) or output.is_dir()
    folder = output if into_folder else output.parent
    folder.mkdir(parents=True, exist_ok=True)
    binds = [f"{source.parent}:{IN}:ro", f"{folder}:{OUT}:rw"]
    inner_out = f"{OUT}/" if into_folder else f"{OUT}/{output.name}"
    return binds, f"{IN}/{source.name}", inner_out, str(source.parent)


def runner_command(spec: BatchSpec, input_path: str, output_path: str) -> list[str]:
    """The image's arguments that run the batch runner for ``spec``."""
    command = ["batch", "--input", input_path, "--output", output_path, "--format", spec.format]
    command += ["--rows-per-batch", str(spec.rows_per_request), "--progress"]
    return [*command, *spec.shaping_args()]


def _lines(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for line in raw.splitlines():
        with contextlib.suppress(orjson.JSONDecodeError):
            item = orjson.loads(line)
            if isinstance(item, dict):
                out.append(item)
    return out


def _on_host(path: str, host: str) -> str:
    """A path the container saw under IN as the host's path."""
    return host + path[len(IN) :] if path.startswith(IN) else path


class LocalBatch:
    """Batch jobs of one local target (``prefix``: project-target)."""

    def __init__(
        self, client: Callable[[], Any], prefix: str, target: str, labels: dict[str, str]
    ) -> None:
        self._client, self.prefix, self.target, self.labels = client, prefix, target, labels

    def submit(
        self, release: Release, image_ref: str, spec: BatchSpec, progress: Progress
    ) -> BatchJob:
        binds, inner_in, inner_out, host_in = _mounts(spec)
        job_id = spec.job_name or f"{self.prefix}-batch-{time.strftime('%Y%m%d-%H%M%S')}"
        client = self._client()
        busy = {"label": [f"{k}={v}" for k, v in self.labels.items()], "status": "running"}
        for other in client.containers.list(filters=busy):
            if other.labels.get("deployer-batch-output") == spec.output_uri:
                raise UsageError(
                    f"batch job {other.name} is still writing {spec.output_uri}: wait for it "
                    f"(deployer batch status {other.name}) or cancel it, then run this again"
                )
        for stale in client.containers.list(all=True, filters={"name": f"^{job_id}$"}):
            stale.remove(force=True)  # a finished run of the same name: its parts resume
        client.containers.run(
            image_ref,
            command=runner_command(spec, inner_in, inner_out),
            detach=True,
            name=job_id,
            labels={
                **self.labels,
                LABEL_JOB: job_id,
                "deployer-batch-output": spec.output_uri,
                "deployer-batch-in": host_in,  # the host folder seen as IN
            },
            volumes=binds,
            user=f"{os.getuid()}:{os.getgid()}",
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": "rw,size=256m"},
        )
        progress(f"batch job {job_id} started: {spec.input_uri} -> {spec.output_uri}")
        return BatchJob(job_id, self.target, "running", spec.output_uri)

    def _container(self, job_id: str) -> Any:
        found = self._client().containers.list(all=True, filters={"label": f"{LABEL_JOB}={job_id}"})
        if not found:
            raise DeployerError(f"no local batch job {job_id!r} (finished jobs are in the record)")
        return found[0]

    def status(self, job_id: str) -> BatchJob:
        container = self._container(job_id)
        container.reload()
        job = self._read(container, job_id)
        if job.finished:
            container.remove(force=True)
        return job

    def _read(self, container: Any, job_id: str, cancelled: bool = False) -> BatchJob:
        output = container.labels.get("deployer-batch-output", "")
        events = _lines(container.logs(stdout=True, stderr=False))
        errors = _lines(container.logs(stdout=False, stderr=True))
        files = [e for e in events if e.get("event") == "file"]
        last = next((e for e in reversed(events) if e.get("event") == "progress"), None)
        done = sum(int(f["rows"]) for f in files)
        ended = last is None or any(f["input"] == last["file"] for f in files)
        current: dict[str, Any] = {} if ended or last is None else last
        rows = done + int(current.get("rows", 0))
        failed = sum(int(f["failed"]) for f in files) + int(current.get("failed", 0))
        host = container.labels.get("deployer-batch-in", IN)
        failures = [
            f"{_on_host(e['file'], host)}: rows {e['rows']}: {e['error']}"
            for e in errors
            if "rows" in e
        ]
        reason = next((str(e["error"]) for e in errors if "rows" not in e and "error" in e), None)
        running = container.status in ("created", "running", "restarting")
        code = int(container.attrs["State"].get("ExitCode", 0))
        state: BatchState = "succeeded" if code in (0, 1) else "failed"
        if cancelled or running:
            state = "cancelled" if cancelled else "running"
        if state == "failed" and reason is None:
            tail = container.logs(stdout=False, stderr=True, tail=5).decode(errors="replace")
            reason = f"the batch container exited with code {code}: {tail.strip()}"
        return BatchJob(
            job_id,
            self.target,
            state,
            output,
            rows_total=rows if not running else None,
            rows_done=rows - failed,
            rows_failed=failed,
            reason=reason,
            failures=failures,
            details={"exit_code": None if running else code, "files": len(files)},
        )

    def logs(self, job_id: str) -> Iterator[str]:
        raw = self._container(job_id).logs(stdout=True, stderr=True)
        yield from raw.decode(errors="replace").splitlines()

    def cancel(self, job_id: str) -> BatchJob:
        container = self._container(job_id)
        container.stop(timeout=5)
        container.reload()
        job = self._read(container, job_id, cancelled=True)
        container.remove(force=True)
        return job
