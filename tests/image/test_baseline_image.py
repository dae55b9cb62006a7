"""An image built with deployer.lock's baseline serves the drift gauges: the baked file
is where the settings say, and /metrics has each feature's PSI (real Docker engine)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
from docker_support import remove_repository
from prometheus_client.parser import text_string_to_metric_families
from sklearn.linear_model import LogisticRegression

from deployer import Project
from deployer.lockfile import sha256_of
from deployer.serving.baseline_bins import Distribution, psi

pytestmark = pytest.mark.docker
NAME = "baseline-image-test"
ROWS = np.random.default_rng(5).normal(size=(40, 2))
FEATURE = {"kind": "numeric", "edges": [-0.5, 0.5], "fractions": [0.3, 0.4, 0.3], "missing": 0.0}


@pytest.fixture
def baseline_project(docker: Any, tmp_path: Path) -> Iterator[Project]:
    rows = np.random.default_rng(0).normal(size=(200, 2))
    model = LogisticRegression().fit(rows, (rows[:, 0] > 0).astype(int))
    joblib.dump(model, tmp_path / "model.joblib")
    (tmp_path / "deployer.yaml").write_text(f"name: {NAME}\nmodel:\n  path: model.joblib\n")
    sha = sha256_of(tmp_path / "model.joblib")
    baseline = {"model_sha256": sha, "features": {"f0": FEATURE, "f1": FEATURE}}
    (tmp_path / "deployer.lock").write_text(json.dumps({"model_sha256": sha, "baseline": baseline}))
    try:
        yield Project.load(tmp_path / "deployer.yaml")
    finally:
        remove_repository(docker, NAME)


def test_the_image_serves_the_drift_gauges(baseline_project: Project, docker: Any) -> None:
    from deployer.image.containers import RunningContainer, free_port, wait_healthy

    image = baseline_project.build()
    port = free_port()
    container = docker.containers.run(
        image.id,
        detach=True,
        ports={"8080/tcp": ("127.0.0.1", port)},
        labels={"dev.deployer.test": "baseline"},
    )
    running = RunningContainer(container, f"http://127.0.0.1:{port}")
    try:
        wait_healthy(running, "/ping", timeout=120)
        answer = httpx.post(running.url + "/invocations", json={"instances": ROWS.tolist()})
        assert answer.status_code == 200, answer.text
        text = httpx.get(running.url + "/metrics").text
        gauges = {
            s.labels["feature"]: s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "deployer_feature_psi"
        }
        dist = Distribution.from_dict(FEATURE, "test")
        for i, name in enumerate(("f0", "f1")):
            assert gauges[name] == pytest.approx(psi(dist.fractions, dist.counts(ROWS[:, i])[0]))
    finally:
        running.remove()
