"""Batch predictions on Kubernetes: the indexed Job (valid for every claimed minor, one
shard per pod, the runner's command line, volumes from pvc:// and hostpath:// URIs),
submitted through the real client to the fake, whose Job controller runs each pod (the
runner's stand-in here; the real image in test_k8s_batch_docker.py); status from the
Job's conditions and its pods (failed shards named with files and rows), logs, cancel."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from k8s_support import VERSIONS, ProviderFactory, image_ref, quiet, release
from k8sfake import FakeKube

from deployer.errors import UsageError
from deployer.providers.batch import BatchJob, BatchSpec, RunsBatch
from deployer_kubernetes.provider import KubernetesProvider

POD_LABELS_NEVER = ("deployer-project", "deployer-target")  # the Services select on these


def spec(input_uri: str, output_uri: str, **more: Any) -> BatchSpec:
    return BatchSpec(input_uri, output_uri, "csv", **more)


def job_of(provider: KubernetesProvider, batch: BatchSpec) -> dict[str, Any]:
    return provider.batch_jobs.manifest(release(1), image_ref(1), batch, "iris-k8s-batch-1")


def finished(provider: KubernetesProvider, job_id: str, limit: int = 2000) -> BatchJob:
    """Poll the job's status until it finishes (an event, not a time window)."""
    for _ in range(limit):
        job = provider.batch_status(job_id)
        if job.finished:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never finished: {provider.batch_status(job_id)}")


def until(check: Callable[[], bool], limit: int = 2000) -> None:
    for _ in range(limit):
        if check():
            return
        time.sleep(0.02)
    raise AssertionError("the condition never held")


def write_inputs(folder: Path, files: dict[str, list[str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        (folder / name).write_text("id,a,b\n" + "".join(f"{r}\n" for r in rows))


# -- the manifest -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("input_uri", "output_uri"),
    [
        ("pvc://data/in", "pvc://data/out"),
        ("pvc://inputs/day/rows.csv", "pvc://outputs/scored"),
        ("hostpath:///srv/batch/in", "hostpath:///srv/batch/out"),
    ],
)
def test_the_indexed_job_validates_strictly_for_each_claimed_minor(
    make_provider: ProviderFactory, input_uri: str, output_uri: str
) -> None:
    provider = make_provider(batch_parallelism=3, batch_deadline_seconds=3600)
    job = job_of(provider, spec(input_uri, output_uri, keep=("id",), label="y"))
    for version in VERSIONS:
        assert kubernetes_validate.validate(job, version, strict=True) == version
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 3
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["ttlSecondsAfterFinished"] == 86400
    pod = job["spec"]["template"]
    assert pod["spec"]["restartPolicy"] == "Never"
    assert not set(POD_LABELS_NEVER) & set(pod["metadata"]["labels"])
    assert set(POD_LABELS_NEVER) <= set(job["metadata"]["labels"])
    container = pod["spec"]["containers"][0]
    argv = container["command"] + container["args"]
    assert argv[:3] == ["python", "-m", "deployer.serving.batch_runner"]
    assert argv[argv.index("--shard-index") + 1] == "$(JOB_COMPLETION_INDEX)"
    assert argv[argv.index("--shard-count") + 1] == "3"
    assert argv[argv.index("--keep") + 1] == "id" and argv[argv.index("--label") + 1] == "y"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/batch/in"].get("readOnly") is True
    assert argv[argv.index("--input") + 1].startswith("/batch/in")
    assert argv[argv.index("--output") + 1].startswith("/batch/out")


def test_one_claim_for_input_and_output_is_one_volume(make_provider: ProviderFactory) -> None:
    job = job_of(make_provider(), spec("pvc://data/in/rows.csv", "pvc://data/out"))
    pod = job["spec"]["template"]["spec"]
    claims = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert claims == [{"name": "batch-out", "persistentVolumeClaim": {"claimName": "data"}}]
    args = pod["containers"][0]["args"]
    assert args[args.index("--input") + 1] == "/batch/in/in/rows.csv"
    assert args[args.index("--output") + 1] == "/batch/out/out/"


@pytest.mark.parametrize(
    ("input_uri", "output_uri", "fmt", "expected"),
    [
        ("s3://bucket/in", "pvc://data/out", "csv", r"input: 's3://bucket/in': s3:// is not"),
        ("pvc://data/in", "/local/out", "csv", r"output: '/local/out'.*pvc://CLAIM/PATH"),
        ("pvc://Bad_Claim/in", "pvc://data/out", "csv", "not a claim name"),
        ("hostpath://relative", "pvc://data/out", "csv", "hostpath:///ABSOLUTE"),
        ("pvc://data/../etc", "pvc://data/out", "csv", r"'\.\.' is not allowed"),
        ("pvc://data/in", "pvc://data/out", "parquet", "no pyarrow"),
    ],
)
def test_bad_input_names_the_field_and_what_works(
    make_provider: ProviderFactory, input_uri: str, output_uri: str, fmt: Any, expected: str
) -> None:
    with pytest.raises(UsageError, match=expected):
        job_of(make_provider(), BatchSpec(input_uri, output_uri, fmt))


def test_a_job_name_that_kubernetes_refuses_is_named(make_provider: ProviderFactory) -> None:
    provider = make_provider()
    bad = spec("pvc://d/in", "pvc://d/out", job_name="Nightly_Run")
    with pytest.raises(UsageError, match="job name 'Nightly_Run'"):
        provider.batch_submit(release(1), image_ref(1), bad, quiet)


# -- running on the fake ----------------------------------------------------------------


def test_every_shard_scores_its_files_and_the_job_completes(
    make_provider: ProviderFactory, fake: FakeKube, tmp_path: Path
) -> None:
    files = {f"part-{i}.csv": [f"{i}{j},1,2" for j in range(3)] for i in range(3)}
    write_inputs(tmp_path / "in", files)
    fake.add_claim("data", tmp_path)
    provider = make_provider(batch_parallelism=2)
    lines: list[str] = []
    batch = spec("pvc://data/in", "pvc://data/out", keep=("id",))
    job = provider.batch_submit(release(1), image_ref(1), batch, lines.append)
    assert isinstance(provider, RunsBatch)
    assert re.fullmatch(r"iris-k8s-batch-\d{8}-\d{6}-[0-9a-f]{4}", job.job_id)
    assert job.state in ("pending", "running") and job.output_uri == "pvc://data/out"
    assert lines == [f"created job/{job.job_id} in namespace default"]
    done = finished(provider, job.job_id)
    assert done.state == "succeeded" and done.complete, done
    assert done.details["completed_indexes"] == "0-1" and done.details["succeeded"] == 2
    assert (done.rows_total, done.rows_done, done.rows_failed) == (9, 9, 0)
    outputs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert outputs == ["part-0.csv", "part-1.csv", "part-2.csv"]
    assert (tmp_path / "out" / "part-2.csv").read_text().splitlines() == [
        "id,prediction",
        "20,0",
        "21,0",
        "22,0",
    ]
    logs = list(provider.batch_logs(job.job_id))
    assert any(line.startswith("[shard 0]") and "part-0.csv" in line for line in logs)
    assert any(line.startswith("[shard 1]") and "part-1.csv" in line for line in logs)
    # shard 0 took files 0 and 2, shard 1 file 1: the runner's --shard-index from the index
    runs = [c[2] for c in fake.runtime.calls if c[1] == "RUN"]  # type: ignore[attr-defined]
    assert sorted(r.split("--shard-index ")[1].split()[0] for r in runs) == ["0", "1"]


def test_a_failed_shard_names_its_pod_file_rows_and_reason(
    make_provider: ProviderFactory, fake: FakeKube, tmp_path: Path
) -> None:
    write_inputs(tmp_path / "in", {"a.csv": ["1,1,2"], "b.csv": ["2,1,2", "3,bad,2"]})
    provider = make_provider(batch_parallelism=2)
    batch = spec("hostpath://" + str(tmp_path / "in"), "hostpath://" + str(tmp_path / "out"))
    job = provider.batch_submit(release(1), image_ref(1), batch, quiet)
    done = finished(provider, job.job_id)
    assert done.state == "failed" and not done.complete
    assert done.reason is not None and done.reason.startswith("BackoffLimitExceeded")
    (failure,) = done.failures
    assert failure.startswith("shard 1 (pod ") and "exit code 1, Error" in failure
    assert "b.csv rows 1: could not convert 'bad'" in failure
    assert (done.rows_total, done.rows_done, done.rows_failed) == (3, 2, 1)
    assert (tmp_path / "out" / "a.csv").exists()


def test_cancel_deletes_the_job_and_its_pods_in_the_foreground(
    make_provider: ProviderFactory, fake: FakeKube
) -> None:
    provider = make_provider()
    # no such claim in the fake: the pods wait, Pending, like a claim not yet bound
    job = provider.batch_submit(
        release(1), image_ref(1), spec("pvc://later/in", "pvc://later/out"), quiet
    )
    until(lambda: len(fake.objects("", "v1", "pods", "default")) == 2)
    until(lambda: provider.batch_status(job.job_id).reason is not None)
    waiting = provider.batch_status(job.job_id)
    assert waiting.state == "running"
    assert waiting.reason is not None and waiting.reason.startswith("shard ")
    assert 'persistentvolumeclaim "later" not found' in waiting.reason
    cancelled = provider.batch_cancel(job.job_id)
    assert cancelled.state == "cancelled"
    (delete,) = [r for r in fake.requests if r.method == "DELETE" and "/jobs/" in r.path]
    assert "Foreground" in (delete.query.get("propagationPolicy", "") + delete.body.decode())
    until(lambda: not fake.objects("", "v1", "pods", "default"))
    with pytest.raises(UsageError, match=f"no batch job {job.job_id} in namespace default"):
        provider.batch_status(job.job_id)


def test_a_finished_job_is_not_cancelled_and_a_name_is_not_reused(
    make_provider: ProviderFactory, fake: FakeKube, tmp_path: Path
) -> None:
    write_inputs(tmp_path / "in", {"a.csv": ["1,1,2"]})
    fake.add_claim("data", tmp_path)
    provider = make_provider(batch_parallelism=1)
    batch = spec("pvc://data/in", "pvc://data/out", job_name="nightly")
    provider.batch_submit(release(1), image_ref(1), batch, quiet)
    assert finished(provider, "nightly").state == "succeeded"
    assert provider.batch_cancel("nightly").state == "succeeded"
    with pytest.raises(UsageError, match="batch job nightly already exists"):
        provider.batch_submit(release(1), image_ref(1), batch, quiet)


def test_the_fake_refuses_what_the_api_server_refuses(
    make_provider: ProviderFactory,
) -> None:
    provider = make_provider()
    job = job_of(provider, spec("pvc://d/in", "pvc://d/out"))
    job["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    del job["spec"]["completions"]
    from deployer.errors import DeployerError

    with pytest.raises(DeployerError) as raised:
        provider.cluster.apply(job)
    message = str(raised.value)
    assert "422" in message and "restartPolicy" in message
    assert "spec.completions: Required value" in message
