"""Start a batch job for a project (``Project.batch``) or find one again (``batch_job``)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from deployer.batch import records
from deployer.batch.in_process import IN_PROCESS
from deployer.batch.job import BatchRun
from deployer.batch.spec import build_spec
from deployer.errors import UsageError
from deployer.providers.batch import RunsBatch

if TYPE_CHECKING:
    from deployer.batch.in_process import RowsSeen
    from deployer.config import ProjectConfig
    from deployer.flavors.base import LoadedModel
    from deployer.providers import Image, Progress, Provider, Release
    from deployer.providers.batch import BatchJob, BatchSpec
    from deployer.serving.settings import ServingSettings


class Project(Protocol):
    """What batch needs of ``deployer.api.Project`` (not imported: api imports this)."""

    config: ProjectConfig
    file: Path
    root: Path

    @property
    def name(self) -> str: ...

    def providers(self, names: list[str] | None = None) -> dict[str, Provider]: ...

    def build(self, *, progress: Progress | None = None) -> Image: ...

    def release(self, image: Image) -> Release: ...

    def serving_settings(self) -> ServingSettings: ...

    def served_model(self) -> LoadedModel: ...

    def artifact_sha256(self) -> str: ...


ENDPOINT = "endpoint"  # the record's "through" for --endpoint: "endpoint:<target>"


def batch_provider(project: Project, to: str) -> RunsBatch:
    """The target's provider when it runs batch jobs; UsageError naming the target if not."""
    provider = target_provider(project, to)
    if not isinstance(provider, RunsBatch):
        raise UsageError(
            f"target {to!r} ({provider.name}) does not run batch jobs; use a target whose "
            "provider does, or --in-process"
        )
    return provider


def start(
    project: Project,
    to: str | None,
    input: str,
    output: str,
    *,
    format: str | None = None,
    keep: Sequence[str] | None = None,
    label: str | None = None,
    columns: Sequence[str] = (),
    in_process: bool = False,
    endpoint: bool = False,
    wait: bool = True,
    job_name: str | None = None,
    progress: Progress | None = None,
    on_rows: RowsSeen | None = None,
) -> BatchRun:
    """Score ``input`` into ``output`` on target ``to`` (a job running its image), through
    its running deployment (``endpoint``), or in this process (``in_process``)."""
    say = progress or (lambda _line: None)
    spec = build_spec(
        project.config.batch,
        input,
        output,
        format=format,
        keep=keep,
        label=label,
        columns=columns,
        job_name=job_name,
    )
    through = through_of(to, in_process, endpoint)
    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(2).hex()}"
    job_id = spec.job_name or f"{project.name}-{through.replace(':', '-')}-batch-{stamp}"
    record = {
        "target": to,
        "through": through,
        "input": input,
        "output": output,
        "format": spec.format,
        "submitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if in_process:
        from deployer.batch.in_process import run

        job = run(project.serving_settings(), spec, job_id, to or IN_PROCESS, on_rows)
        records.save(project.root, job, record)
        return BatchRun(project.root, job, None, record)
    assert to is not None
    if endpoint:
        job = _through_endpoint(project, to, spec, job_id, through, say, on_rows)
        records.save(project.root, job, record)
        return BatchRun(project.root, job, None, record)
    provider = batch_provider(project, to)
    image = project.build(progress=say)
    ref = provider.publish(image, say)  # type: ignore[attr-defined]
    release = project.release(image)
    job = provider.batch_submit(release, ref, replace(spec, job_name=job_id), say)
    records.save(project.root, job, record)
    handle = BatchRun(project.root, job, provider, record)
    if wait:
        handle.wait()
    return handle


def through_of(to: str | None, in_process: bool, endpoint: bool) -> str:
    """Where the predictions come from: ``in-process``, ``endpoint:<to>`` or ``<to>``."""
    if in_process and endpoint:
        raise UsageError("--in-process and --endpoint exclude each other: pick one")
    if to is None and not in_process:
        raise UsageError("batch needs --to TARGET (or --in-process)")
    if in_process:
        return IN_PROCESS
    return f"{ENDPOINT}:{to}" if endpoint else str(to)


def target_provider(project: Project, to: str) -> Provider:
    """The provider of target ``to``; UsageError naming the targets when there is none."""
    if to not in project.config.targets:
        known = ", ".join(project.config.targets) or "none"
        raise UsageError(f"no target {to!r} in {project.file}; the targets: {known}")
    return project.providers([to])[to]


def _through_endpoint(
    project: Project,
    to: str,
    spec: BatchSpec,
    job_id: str,
    through: str,
    say: Progress,
    on_rows: RowsSeen | None,
) -> BatchJob:
    """Score here, the predictions from target ``to``'s running deployment."""
    from deployer.batch.endpoint import EndpointScorer, serving_this_model
    from deployer.batch.in_process import score
    from deployer.providers.batch import InvokesServingVersion

    provider = target_provider(project, to)
    serving_this_model(provider, to, project.artifact_sha256())
    say(f"scoring {spec.input_uri} through {to}'s deployment -> {spec.output_uri}")

    def scorer() -> EndpointScorer:
        # the serving version itself where the provider can (no canary share, no relay)
        if isinstance(provider, InvokesServingVersion):
            ask = provider.serving_invoker()
        else:
            ask = provider.invoke
        return EndpointScorer(project.served_model(), ask, to, spec.max_payload_bytes)

    return score(scorer, spec, job_id, to, through, on_rows)


def reopen(project: Project, job_id: str) -> BatchRun:
    """A job started earlier, from its record (and its target's provider while it runs)."""
    job, record = records.load(project.root, job_id)
    provider = None
    if record.get("through") == record.get("target") and not job.finished:
        provider = batch_provider(project, str(record["target"]))
    return BatchRun(project.root, job, provider, record)
