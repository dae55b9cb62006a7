"""Batch prediction types shared by the core and the providers: what a batch job is asked
to do, and what it reports. A provider that runs batch jobs implements ``RunsBatch``.

Input shaping is the online one: the feature columns by name from the release's
signature, the label column dropped, the ``keep`` columns copied to the output next to the
predictions; output rows keep the input's order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from deployer.providers.types import Invocation, Progress, Release

BatchFormat = Literal["csv", "jsonl", "parquet"]
BatchState = Literal["pending", "running", "succeeded", "failed", "cancelled"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True)
class BatchSpec:
    """One batch job: score every row of ``input_uri`` into ``output_uri``."""

    input_uri: str
    output_uri: str
    format: BatchFormat
    columns: tuple[str, ...] = ()  # the features, by name (empty: every column but label/keep)
    label: str | None = None
    keep: tuple[str, ...] = ()
    rows_per_request: int = 1000
    max_payload_bytes: int = 6 * 1024 * 1024
    job_name: str | None = None  # default: the provider's, from project, target and time

    def shaping_args(self) -> list[str]:
        """The batch runner's ``--keep``/``--label``/``--columns`` for this spec (what a
        provider passes the image's runner besides its input, output and format)."""
        args: list[str] = []
        if self.keep:
            args += ["--keep", ",".join(self.keep)]
        if self.label:
            args += ["--label", self.label]
        if self.columns:
            args += ["--columns", ",".join(self.columns)]
        return args


@dataclass(frozen=True)
class BatchJob:
    """What a batch job reports: its id, state and counts, the cloud's reason on failure
    and, when known, the rows or files that failed."""

    job_id: str
    target: str
    state: BatchState
    output_uri: str
    rows_total: int | None = None
    rows_done: int | None = None
    rows_failed: int | None = None
    reason: str | None = None
    failures: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def complete(self) -> bool:
        """Every row scored."""
        return self.state == "succeeded" and not self.rows_failed


@runtime_checkable
class RunsBatch(Protocol):
    """Optional capability: batch prediction jobs with the release's image."""

    def batch_submit(
        self, release: Release, image_ref: str, spec: BatchSpec, progress: Progress
    ) -> BatchJob:
        """Start a job (the image already published: ``image_ref``); returns at once."""
        ...

    def batch_status(self, job_id: str) -> BatchJob: ...

    def batch_logs(self, job_id: str) -> Iterator[str]: ...

    def batch_cancel(self, job_id: str) -> BatchJob: ...


@runtime_checkable
class InvokesServingVersion(Protocol):
    """Optional capability: ``invoke`` bound to the version that serves now, never a
    canary's and without the target's front hops (``deployer batch --endpoint``: one model
    for every row). Without it, batch uses ``Provider.invoke``."""

    def serving_invoker(self) -> Callable[[bytes, str, str | None], Invocation]: ...
