"""Capture into a PersistentVolumeClaim, read back by ``captured()``: files written into the
claim's host folder by the image's REAL writer (capture_record.build_line through
capture_sinks.FolderSink, rotated), printed by the REAL ``deployer.serving.capture_dump``
in a reader Job the fake's Job controller runs, read from that pod's log through the real
client; the Job's manifest (valid, read-only, the batch Job's security), since, bad lines,
the Job deleted afterwards, and every way it can fail named with the Job."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import kubernetes_validate
import numpy as np
import pytest
from k8s_support import VERSIONS, PollClock, ProviderFactory, image_ref, quiet, release
from k8sfake import FakeKube

import deployer_kubernetes.capture_job
from deployer.errors import DeployerError
from deployer.providers import Release, Strategy, monitoring
from deployer.providers.batch import BatchSpec
from deployer.serving import capture_dump
from deployer.serving.capture_record import build_line
from deployer.serving.capture_sinks import FolderSink
from deployer_kubernetes.capture_job import (
    DEADLINE_SECONDS,
    LABEL_READER,
    TTL_SECONDS,
    ClaimCapture,
    ClaimReader,
)
from deployer_kubernetes.provider import KubernetesProvider

SPEC = monitoring.CaptureSpec(1.0, hash=("x3",))
FOLDER = "/var/lib/deployer/capture"
JOBS = ("batch", "v1", "jobs")
PODS = ("", "v1", "pods")
READER = "iris-k8s-capture-"


def capturing(n: int) -> Release:
    return dataclasses.replace(release(n), capture=SPEC)


def push(provider: KubernetesProvider, rel: Release) -> None:
    deployment = provider.deploy(rel, image_ref(rel.version), Strategy(), quiet)
    assert provider.wait(deployment, 120, quiet).healthy


def columns(width: int) -> list[str]:
    return [f"x{i}" for i in range(width)]


def write(folder: Path, ids: list[str], when: datetime, version: str = "v1") -> list[Path]:
    """Records as the image writes them: one line each (build_line) into files rotated
    by the image's FolderSink (small files: one record each). The new files' paths."""
    before = set(folder.glob("capture-*.jsonl"))
    sink = FolderSink(folder, max_file_bytes=200, max_total_bytes=1_000_000)
    for n, rid in enumerate(ids):
        rows = np.array([[n, 1.5, 2.5, n * 10]])
        line = build_line(SPEC, version, rid, when.timestamp(), rows, np.array([n % 3]), columns)
        sink.write([line])
    sink.close()
    return sorted(set(folder.glob("capture-*.jsonl")) - before)


def until(check: Callable[[], bool], limit: int = 2000) -> None:
    for _ in range(limit):
        if check():
            return
        time.sleep(0.02)
    raise AssertionError("the condition never held")


def reader_logs(fake: FakeKube) -> dict[str, list[str]]:
    """What each reader pod printed (the fake kubelet keeps it past the pod's deletion)."""
    return {pod: lines for (_, pod), lines in fake.controllers.logs.items() if READER in pod}


@pytest.fixture
def claim(fake: FakeKube, tmp_path: Path) -> Path:
    folder = tmp_path / "claim"
    folder.mkdir()
    fake.add_claim("captures", folder)
    return folder


# -- the reader Job's manifest ----------------------------------------------------------


def test_the_reader_job_is_valid_one_read_only_pod_with_the_batch_jobs_security(
    make_provider: ProviderFactory,
) -> None:
    provider = make_provider(capture_pvc="captures", image_pull_secret="pull")
    reader = ClaimReader(provider.cluster, provider.names, provider.options, "k8s")
    name = reader.job_name()
    assert name.startswith(READER) and len(name) <= 63 and name != reader.job_name()
    since = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    job = reader.manifest(ClaimCapture("captures", FOLDER, image_ref(1)), since, name)
    for version in VERSIONS:
        assert kubernetes_validate.validate(job, version, strict=True) == version
    spec = job["spec"]
    assert "completionMode" not in spec and spec["completions"] == spec["parallelism"] == 1
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == DEADLINE_SECONDS
    assert spec["ttlSecondsAfterFinished"] == TTL_SECONDS
    pod = spec["template"]
    assert pod["spec"]["restartPolicy"] == "Never"
    # the owner labels on the Job (deployer finds it), never on its pod (no Service's)
    assert {"deployer-project": "iris", "deployer-target": "k8s"}.items() <= job["metadata"][
        "labels"
    ].items()
    assert not {"deployer-project", "deployer-target"} & set(pod["metadata"]["labels"])
    assert pod["metadata"]["labels"][LABEL_READER] == name
    (container,) = pod["spec"]["containers"]
    assert container["image"] == image_ref(1)
    assert container["command"] + container["args"] == [
        "python",
        "-m",
        "deployer.serving.capture_dump",
        "--folder",
        FOLDER,
        "--max-bytes",
        str(deployer_kubernetes.capture_job.MAX_BYTES),
        "--since",
        "2026-01-02T03:04:05.000Z",
    ]
    assert container["volumeMounts"] == [{"name": "capture", "mountPath": FOLDER, "readOnly": True}]
    assert pod["spec"]["volumes"] == [
        {"name": "capture", "persistentVolumeClaim": {"claimName": "captures", "readOnly": True}}
    ]
    batch = provider.batch_jobs.manifest(
        release(1), image_ref(1), BatchSpec("pvc://d/in", "pvc://d/out", "csv"), "b"
    )["spec"]["template"]["spec"]
    for key in ("securityContext", "automountServiceAccountToken", "imagePullSecrets"):
        assert pod["spec"][key] == batch[key]
    for key in ("securityContext", "resources", "imagePullPolicy"):
        assert container[key] == batch["containers"][0][key]
    # a ReadWriteOnce claim attaches to one node: the reader prefers a model pod's
    (term,) = pod["spec"]["affinity"]["podAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    selector = term["podAffinityTerm"]["labelSelector"]
    assert selector["matchLabels"] == provider.names.owner
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    no_since = reader.manifest(ClaimCapture("captures", FOLDER, image_ref(1)), None, name)
    assert "--since" not in no_since["spec"]["template"]["spec"]["containers"][0]["args"]


# -- reading on the fake ----------------------------------------------------------------


def test_captured_reads_the_writers_rotated_files_from_the_claim_through_a_job(
    make_provider: ProviderFactory, fake: FakeKube, claim: Path
) -> None:
    provider = make_provider(replicas=1, capture_pvc="captures")
    push(provider, capturing(1))
    now = datetime.now(timezone.utc)
    old = write(claim, ["old-0", "old-1"], now - timedelta(hours=2))
    for path in old:  # written back then
        stamp = (now - timedelta(hours=2)).timestamp()
        os.utime(path, (stamp, stamp))
    new = write(claim, ["new-0", "new-1", "new-2"], now)
    assert len(old) == 2 and len(new) == 3  # rotated: one record per file

    recent = list(provider.captured(since=now - timedelta(minutes=5)))
    assert [r.request_id for r in recent] == ["new-0", "new-1", "new-2"]
    assert recent[1].rows == [{"x0": 1, "x1": 1.5, "x2": 2.5, "x3": recent[1].rows[0]["x3"]}]
    assert str(recent[1].rows[0]["x3"]).startswith("sha256:")  # the writer's redaction
    assert recent[1].predictions == [1] and recent[1].version == "v1"
    assert provider.captured_skipped == 0
    # the dump left the old files out (their mtime is before --since), not just the reader
    (printed,) = reader_logs(fake).values()
    assert sum("new-" in line for line in printed) == 3
    assert not any("old-" in line for line in printed)
    # the Job ran the live release's image on the claim, read-only, and is gone
    (applied,) = [r for r in fake.writes() if r.method == "PATCH" and "/jobs/" in r.path]
    job = applied.json()
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == image_ref(release(1).version)
    assert container["volumeMounts"][0]["readOnly"] is True
    (deleted,) = [r for r in fake.requests if r.method == "DELETE" and "/jobs/" in r.path]
    assert "Background" in deleted.query.get("propagationPolicy", "") + deleted.body.decode()
    assert fake.objects(*JOBS, "default") == []
    until(lambda: not [p for p in fake.objects(*PODS, "default") if READER in str(p)])

    everything = list(provider.captured())
    assert [r.request_id for r in everything] == ["old-0", "old-1", *(r.request_id for r in recent)]
    assert everything[0].time < everything[-1].time


def test_a_bad_line_and_an_unfinished_one_are_counted_and_left(
    make_provider: ProviderFactory, fake: FakeKube, claim: Path
) -> None:
    provider = make_provider(replicas=1, capture_pvc="captures")
    push(provider, capturing(1))
    files = write(claim, ["a", "b"], datetime.now(timezone.utc))
    with files[-1].open("ab") as handle:
        handle.write(b"{not json\n")
        handle.write(json.dumps({"request_id": 3, "time": "x"}).encode() + b"\n")
        handle.write(b'{"request_id": "half')  # still being written: not a line yet
    records = list(provider.captured())
    assert [r.request_id for r in records] == ["a", "b"]
    assert provider.captured_skipped == 2
    assert fake.objects(*JOBS, "default") == []


def test_only_the_newest_bytes_are_read_and_what_is_left_out_is_said(
    make_provider: ProviderFactory,
    fake: FakeKube,
    claim: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = make_provider(replicas=1, capture_pvc="captures")
    push(provider, capturing(1))
    files = write(claim, [f"r{n}" for n in range(5)], datetime.now(timezone.utc))
    line = files[-1].read_bytes()
    room = 2 * (len(monitoring.CAPTURE_STDOUT_PREFIX) + len(line)) + 5  # two records fit
    monkeypatch.setattr(deployer_kubernetes.capture_job, "MAX_BYTES", room)
    with caplog.at_level(logging.WARNING, logger="deployer"):
        records = list(provider.captured())
    assert [r.request_id for r in records] == ["r3", "r4"]
    assert any("--since" in m and "captures" in m for m in caplog.messages)
    assert provider.captured_skipped == 0


# -- failures ---------------------------------------------------------------------------


def test_a_failing_reader_job_is_named_with_its_reason_and_deleted(
    make_provider: ProviderFactory, fake: FakeKube, tmp_path: Path
) -> None:
    fake.add_claim("captures", tmp_path / "never-made")  # the dump finds no folder: exit 2
    provider = make_provider(replicas=1, capture_pvc="captures")
    push(provider, capturing(1))
    with pytest.raises(DeployerError) as raised:
        provider.captured()
    message = raised.value.message
    assert f"persistentvolumeclaim/captures with job/{READER}" in message
    assert "BackoffLimitExceeded" in message and "exit code 2" in message
    assert "no such folder" in message  # the dump's own line, the pod's termination message
    assert fake.objects(*JOBS, "default") == []


def test_a_reader_that_cannot_start_times_out_named_and_is_deleted(
    make_provider: ProviderFactory, fake: FakeKube, monkeypatch: pytest.MonkeyPatch
) -> None:
    push(make_provider(replicas=1, capture_pvc="unbound"), capturing(1))
    provider = make_provider(replicas=1, capture_pvc="unbound", poll_interval=10.0)
    # the fake knows no claim "unbound": the pod stays Pending, Unschedulable
    clock = PollClock(real=0.05)
    monkeypatch.setattr(deployer_kubernetes.capture_job, "time", clock)
    with pytest.raises(DeployerError) as raised:
        provider.captured()
    message = raised.value.message
    assert f"job/{READER}" in message and "did not finish in 330s" in message
    assert 'persistentvolumeclaim "unbound" not found' in message
    assert fake.objects(*JOBS, "default") == []


def test_a_refused_reader_job_names_the_job_and_the_refusal(
    make_provider: ProviderFactory, fake: FakeKube, claim: Path, tmp_path: Path
) -> None:
    push(make_provider(replicas=1, capture_pvc="captures"), capturing(1))
    fake.add_user("viewer-token", "viewer", {"get", "list"})
    viewer = make_provider(
        replicas=1,
        capture_pvc="captures",
        kubeconfig=str(fake.kubeconfig(tmp_path / "viewer", token="viewer-token")),
    )
    with pytest.raises(DeployerError) as raised:
        viewer.captured()
    message = raised.value.message
    assert f"with job/{READER}" in message and "permission denied" in message
    assert 'User "viewer" cannot patch resource "jobs"' in message
    assert fake.objects(*JOBS, "default") == []


# -- the dump itself --------------------------------------------------------------------


def dump(*argv: str) -> tuple[int, str, str]:
    out, err = io.BytesIO(), io.StringIO()
    code = capture_dump.main(list(argv), out, err)
    return code, out.getvalue().decode(), err.getvalue()


def test_the_dump_prints_every_files_complete_lines_oldest_first(tmp_path: Path) -> None:
    write(tmp_path, ["a", "b", "c"], datetime.now(timezone.utc))
    (tmp_path / "notes.txt").write_text("not a capture file\n")
    newest = sorted(tmp_path.glob("capture-*.jsonl"))[-1]
    with newest.open("ab") as handle:
        handle.write(b'{"request_id": "d"')  # unfinished
    code, out, err = dump("--folder", str(tmp_path))
    assert code == 0 and err == ""
    prefix = monitoring.CAPTURE_STDOUT_PREFIX
    lines = out.splitlines()
    assert all(line.startswith(prefix) for line in lines)
    assert [json.loads(line[len(prefix) :])["request_id"] for line in lines] == ["a", "b", "c"]


def test_the_dump_says_a_missing_folder_on_stderr_and_exits_2(tmp_path: Path) -> None:
    code, out, err = dump("--folder", str(tmp_path / "missing"))
    assert code == 2 and out == ""
    assert "no such folder" in json.loads(err)["error"]


def test_the_dump_runs_as_a_module_without_numpy_or_prometheus(tmp_path: Path) -> None:
    write(tmp_path, ["a"], datetime.now(timezone.utc))
    script = (
        "import runpy, sys\n"
        f"sys.argv = ['capture_dump', '--folder', {str(tmp_path)!r}, "
        "'--since', '2020-01-01T00:00:00Z']\n"
        "try:\n"
        "    runpy.run_module('deployer.serving.capture_dump', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    heavy = {'numpy', 'sklearn', 'prometheus_client', 'orjson', 'pydantic'}\n"
        "    print(exc.code, sorted(heavy & set(sys.modules)), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stderr.strip() == "0 []"
    assert '"request_id":"a"' in result.stdout
