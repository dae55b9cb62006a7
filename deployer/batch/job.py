"""``BatchRun``: the typed job ``Project.batch`` returns, over the provider's RunsBatch
(or a finished in-process run), kept in its record (deployer.batch.records)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from deployer.batch import records
from deployer.errors import UsageError
from deployer.providers.batch import BatchJob, RunsBatch


class BatchRun:
    """One batch job: ``.status`` (read again from the target while it runs), ``.wait()``,
    ``.output_uri``, ``.logs()``, ``.cancel()``."""

    def __init__(
        self, root: Path, job: BatchJob, provider: RunsBatch | None, record: dict[str, Any]
    ) -> None:
        self.root, self.provider, self.record = root, provider, record
        self.job = job

    @property
    def job_id(self) -> str:
        return self.job.job_id

    @property
    def output_uri(self) -> str:
        return self.job.output_uri

    def _keep(self, job: BatchJob) -> BatchJob:
        self.job = job
        records.save(self.root, job, self.record)
        return job

    @property
    def status(self) -> BatchJob:
        """The job now: the record once finished, else the target's answer."""
        if self.job.finished or self.provider is None:
            return self.job
        return self._keep(self.provider.batch_status(self.job.job_id))

    def wait(
        self,
        poll_seconds: float = 2.0,
        timeout: float | None = None,
        on_update: Callable[[BatchJob], None] | None = None,
    ) -> BatchJob:
        """Poll until the job finishes (or ``timeout`` seconds pass: the job as it is)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.status
            if on_update is not None:
                on_update(job)
            if job.finished or (deadline is not None and time.monotonic() >= deadline):
                return job
            time.sleep(poll_seconds)

    def logs(self) -> Iterator[str]:
        if self.provider is None:
            yield from (f"{f}" for f in self.job.failures)
            return
        yield from self.provider.batch_logs(self.job.job_id)

    def cancel(self) -> BatchJob:
        if self.job.finished:
            raise UsageError(f"batch job {self.job_id} has already finished ({self.job.state})")
        if self.provider is None:
            raise UsageError(f"batch job {self.job_id} ran in process; nothing to cancel")
        return self._keep(self.provider.batch_cancel(self.job.job_id))
