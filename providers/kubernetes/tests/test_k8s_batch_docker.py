"""With Docker: a batch Job on the fake whose pods run the REAL image (pulled from a real
registry, as the pod's non-root user, read-only root, no network) with the image's batch
runner over real files on a claim: every row scored, the same answers as the model in
process, one output file per input file across the shards."""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from docker_support import LocalRegistry
from k8s_support import ADMIN_TOKEN, quiet
from k8sfake import FakeKube

from deployer import Project
from deployer.providers import ProjectInfo, Release, Target
from deployer.providers.batch import BatchSpec
from deployer_kubernetes.provider import KubernetesProvider

pytestmark = pytest.mark.docker
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5], [6.3, 2.9, 5.6, 1.8]]


def test_the_indexed_job_runs_the_real_runner_over_every_shard(
    docker_fake: FakeKube,
    docker: Any,
    registry: LocalRegistry,
    iris_project: Project,
    iris_image: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("K8S_BATCH_REGISTRY_USER", registry.username)
    monkeypatch.setenv("K8S_BATCH_REGISTRY_TOKEN", registry.password)
    options = {
        "provider": "kubernetes",
        "kubeconfig": str(docker_fake.kubeconfig(tmp_path / "kubeconfig", token=ADMIN_TOKEN)),
        "context": "fake",
        "registry": f"{registry.host}/iris",
        "registry_username_env": "K8S_BATCH_REGISTRY_USER",
        "registry_password_env": "K8S_BATCH_REGISTRY_TOKEN",
        "batch_parallelism": 2,
        "poll_interval": 0.05,
    }
    provider = KubernetesProvider(Target("k8s", "kubernetes", options), ProjectInfo("iris"))
    ref = provider.publish(iris_image, quiet)
    claim = tmp_path / "claim"
    (claim / "in").mkdir(parents=True)
    (claim / "out").mkdir()
    for index in range(3):  # three files over two shards
        with (claim / "in" / f"day-{index}.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "sepal_l", "sepal_w", "petal_l", "petal_w"])
            writer.writerows([f"{index}-{n}", *row] for n, row in enumerate(ROWS))
    for folder in (claim, claim / "in", claim / "out"):
        os.chmod(folder, 0o777)  # the pods run as uid 10001
    docker_fake.add_claim("data", claim)
    spec = BatchSpec("pvc://data/in", "pvc://data/out", "csv", keep=("id",))
    release = Release("iris", iris_image, [ROWS[0]], {})
    job = provider.batch_submit(release, ref, spec, quiet)
    for _ in range(3000):  # until the Job reports an end (an event)
        done = provider.batch_status(job.job_id)
        if done.finished:
            break
        time.sleep(0.05)
    logs = "\n".join(provider.batch_logs(job.job_id))
    assert done.state == "succeeded" and done.complete, f"{done}\n{logs}"
    assert (done.rows_total, done.rows_done, done.rows_failed) == (12, 12, 0)
    expected = iris_project.load_model().predict(np.array(ROWS), "predict", {}).tolist()
    for index in range(3):
        with (claim / "out" / f"day-{index}.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert [r["id"] for r in rows] == [f"{index}-{n}" for n in range(len(ROWS))]
        assert [int(float(r["prediction"])) for r in rows] == expected
    assert "[shard 0]" in logs and "[shard 1]" in logs
