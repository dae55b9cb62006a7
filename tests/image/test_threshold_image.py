"""The built image applies deployer.lock's decision threshold: predict decides with it
over real HTTP, predict_proba is unchanged, and the image's label names it."""

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
from sklearn.linear_model import LogisticRegression

from deployer import Project
from deployer.lockfile import sha256_of

pytestmark = pytest.mark.docker
THRESHOLD = 0.85
ROWS = np.random.default_rng(5).normal(size=(30, 3))


@pytest.fixture
def threshold_project(docker: Any, tmp_path: Path) -> Iterator[tuple[Project, Any]]:
    rows = np.random.default_rng(0).normal(size=(300, 3))
    model = LogisticRegression().fit(rows, np.where(rows[:, 0] + rows[:, 2] > 0, 1, 0))
    joblib.dump(model, tmp_path / "model.joblib")
    (tmp_path / "deployer.yaml").write_text("name: threshold-test\nmodel:\n  path: model.joblib\n")
    sha = sha256_of(tmp_path / "model.joblib")
    threshold = {"value": THRESHOLD, "rule": "precision>=0.9", "positive_label": "1"}
    lock = {"model_sha256": sha, "evaluation": {"model_sha256": sha, "threshold": threshold}}
    (tmp_path / "deployer.lock").write_text(json.dumps(lock))
    try:
        yield Project.load(tmp_path / "deployer.yaml"), model
    finally:
        remove_repository(docker, "threshold-test")


def test_the_image_decides_with_the_threshold(
    threshold_project: tuple[Project, Any], docker: Any
) -> None:
    from deployer.image.containers import RunningContainer, free_port, wait_healthy

    project, model = threshold_project
    image = project.build()
    assert image.ref == project.image_ref()
    assert image.labels["dev.deployer.threshold"] == f"{THRESHOLD:g}"
    port = free_port()
    container = docker.containers.run(
        image.id,
        detach=True,
        ports={"8080/tcp": ("127.0.0.1", port)},
        labels={"dev.deployer.test": "threshold"},
    )
    running = RunningContainer(container, f"http://127.0.0.1:{port}")
    try:
        wait_healthy(running, "/ping", timeout=120)
        url = running.url + "/invocations"
        decided = httpx.post(url, json={"instances": ROWS.tolist()}, timeout=30)
        assert decided.status_code == 200, decided.text
        proba = model.predict_proba(ROWS)
        expected = np.where(proba[:, 1] >= THRESHOLD, 1, 0).tolist()
        assert decided.json()["predictions"] == expected
        assert expected != model.predict(ROWS).tolist()  # the threshold changed answers
        headers = {"x-deployer-method": "predict_proba"}
        answer = httpx.post(url, json={"instances": ROWS.tolist()}, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
        np.testing.assert_allclose(answer.json()["predictions"], proba)
        tensor = {"name": "input-0", "shape": list(ROWS.shape), "datatype": "FP64"}
        oip = {"inputs": [{**tensor, "data": ROWS.ravel().tolist()}]}
        answer = httpx.post(running.url + "/v2/models/threshold-test/infer", json=oip, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"][0]["data"] == expected
    finally:
        running.remove()
