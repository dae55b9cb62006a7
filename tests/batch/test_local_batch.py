"""The local target's batch jobs read from the container (a fake one: no Docker): state,
counts and failures from the runner's output, the guard against two jobs on one output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deployer.local.batch import IN, LABEL_JOB, LocalBatch, runner_command
from deployer.providers import UsageError
from deployer.providers.batch import BatchSpec


class FakeContainer:
    def __init__(
        self,
        name: str,
        status: str,
        code: int,
        out: list[Any],
        err: list[Any],
        labels: dict[str, str],
    ) -> None:
        self.name, self.status, self.labels = name, status, labels
        self.attrs = {"State": {"ExitCode": code}}
        self._out = b"".join(json.dumps(x).encode() + b"\n" for x in out)
        self._err = b"".join(json.dumps(x).encode() + b"\n" for x in err)
        self.removed = self.stopped = False

    def logs(self, stdout: bool = True, stderr: bool = True, tail: int | None = None) -> bytes:
        return (self._out if stdout else b"") + (self._err if stderr else b"")

    def reload(self) -> None:
        pass

    def remove(self, force: bool = False) -> None:
        self.removed = True

    def stop(self, timeout: int = 10) -> None:
        self.stopped, self.status = True, "exited"


class FakeClient:
    def __init__(self, containers: list[FakeContainer]) -> None:
        self.containers = self
        self._all = containers

    def list(self, all: bool = False, filters: dict[str, Any] | None = None) -> list[Any]:
        found = self._all
        label = (filters or {}).get("label")
        if isinstance(label, str) and label.startswith(LABEL_JOB):
            found = [c for c in found if c.labels.get(LABEL_JOB) == label.split("=", 1)[1]]
        if (filters or {}).get("status") == "running":
            found = [c for c in found if c.status == "running"]
        return found


LABELS = {"deployer-batch-output": "/data/out", "deployer-batch-in": "/data/in"}


def batch_of(container: FakeContainer) -> LocalBatch:
    return LocalBatch(lambda: FakeClient([container]), "p-local", "local", {"role": "batch"})


def test_a_finished_job_reports_counts_and_failures_on_the_hosts_paths() -> None:
    out = [
        {"event": "progress", "file": f"{IN}/a.csv", "rows": 100, "scored": 100, "failed": 0},
        {"event": "file", "input": f"{IN}/a.csv", "rows": 100, "failed": 0},
        {"event": "file", "input": f"{IN}/b.csv", "rows": 50, "failed": 2},
    ]
    err = [{"file": f"{IN}/b.csv", "rows": "3-4", "error": "CSV rows must be numbers"}]
    container = FakeContainer("job1", "exited", 1, out, err, {LABEL_JOB: "job1", **LABELS})
    job = batch_of(container).status("job1")
    assert (job.state, job.rows_total, job.rows_done, job.rows_failed) == ("succeeded", 150, 148, 2)
    assert job.failures == ["/data/in/b.csv: rows 3-4: CSV rows must be numbers"]
    assert not job.complete and job.output_uri == "/data/out"
    assert container.removed  # read once finished: the record keeps it


def test_a_running_job_counts_the_file_in_progress_and_a_crash_gives_the_reason() -> None:
    out = [{"event": "progress", "file": f"{IN}/a.csv", "rows": 40, "scored": 40, "failed": 0}]
    running = FakeContainer("job2", "running", 0, out, [], {LABEL_JOB: "job2", **LABELS})
    job = batch_of(running).status("job2")
    assert (job.state, job.rows_done, job.rows_total) == ("running", 40, None)
    assert not running.removed
    err = [{"error": "model failed to load: no such file"}]
    crashed = FakeContainer("job3", "exited", 3, [], err, {LABEL_JOB: "job3", **LABELS})
    job = batch_of(crashed).status("job3")
    assert (job.state, job.reason) == ("failed", "model failed to load: no such file")


def test_cancel_stops_and_removes() -> None:
    container = FakeContainer("job4", "running", 0, [], [], {LABEL_JOB: "job4", **LABELS})
    job = batch_of(container).cancel("job4")
    assert job.state == "cancelled" and container.stopped and container.removed


def test_a_second_job_on_the_same_output_is_refused(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("a\n1\n")
    labels = {"role": "batch", "deployer-batch-output": str(tmp_path / "out.csv")}
    busy = FakeContainer("job5", "running", 0, [], [], labels)
    local = LocalBatch(lambda: FakeClient([busy]), "p-local", "local", {"role": "batch"})
    spec = BatchSpec(str(tmp_path / "in.csv"), str(tmp_path / "out.csv"), "csv")
    with pytest.raises(UsageError, match="job5 is still writing"):
        local.submit(None, "image", spec, lambda _line: None)  # type: ignore[arg-type]


def test_the_runner_command_carries_the_spec() -> None:
    spec = BatchSpec(
        "in", "out", "jsonl", columns=("a", "b"), label="y", keep=("id",), rows_per_request=500
    )
    assert runner_command(spec, "/batch/in/x.jsonl", "/batch/out/") == [
        "batch",
        "--input",
        "/batch/in/x.jsonl",
        "--output",
        "/batch/out/",
        "--format",
        "jsonl",
        "--rows-per-batch",
        "500",
        "--progress",
        "--keep",
        "id",
        "--label",
        "y",
        "--columns",
        "a,b",
    ]
