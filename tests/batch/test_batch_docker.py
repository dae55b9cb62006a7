"""``deployer batch --to local``: the release's image runs the batch runner over the files."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.docker


def test_local_target_scores_through_the_image(
    iris_project: Any,
    iris_image: Any,
    iris: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
    docker: Any,
) -> None:
    import joblib

    folder = tmp_path / "in"
    folder.mkdir()
    for part, rows in (("a", range(0, 100)), ("b", range(100, 150))):
        with open(folder / f"{part}.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "a", "b", "c", "d"])
            for i in rows:
                values = ["oops", *iris[0][i][1:]] if i == 120 else iris[0][i]
                writer.writerow([f"r{i}", *values])
    run = iris_project.batch("local", str(folder), str(tmp_path / "out"), keep=["id"])
    job = run.status
    assert job.state == "succeeded" and not job.complete
    assert (job.rows_total, job.rows_failed) == (150, 1)
    assert job.failures == [f"{folder / 'b.csv'}: rows 21: {job.failures[0].split(': ', 2)[2]}"]
    assert "oops" in job.failures[0]
    got = []
    for part in ("a", "b"):
        with open(tmp_path / "out" / f"{part}.csv", newline="") as f:
            got += list(csv.DictReader(f))
    expected = joblib.load(iris_project.model_path).predict(iris[0])
    kept = [i for i in range(150) if i != 120]
    assert [r["id"] for r in got] == [f"r{i}" for i in kept]
    assert [int(r["prediction"]) for r in got] == expected[kept].tolist()
    assert iris_project.batch_job(job.job_id).status == job  # from the record
    assert not docker.containers.list(all=True, filters={"name": job.job_id})


def test_endpoint_scores_through_the_pushed_deployment(
    iris_project: Any, iris: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    """``deployer batch --to local --endpoint``: the pushed local deployment's answers,
    the same file as the container job writes."""
    import json

    from typer.testing import CliRunner

    from deployer.cli import app

    data = tmp_path / "rows.csv"
    with open(data, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "a", "b", "c", "d"])
        for i, row in enumerate(np.tile(iris[0], (3, 1))):
            writer.writerow([f"r{i}", *row])
    pushed = iris_project.push(["local"])
    assert pushed.ok, pushed.targets[0].error

    def batch(out: str, *more: str) -> Any:
        args = ["batch", "--to", "local", "-i", str(data), "--output", out, "--keep", "id"]
        return CliRunner().invoke(app, [*args, *more, "-f", str(iris_project.file), "-o", "json"])

    result = batch(str(tmp_path / "endpoint.csv"), "--endpoint")
    assert result.exit_code == 0, result.output
    job = json.loads(result.output)
    assert (job["rows_total"], job["rows_failed"]) == (450, 0)
    assert job["details"]["through"] == "endpoint:local"
    in_image = batch(str(tmp_path / "job.csv"))
    assert in_image.exit_code == 0, in_image.output
    assert (tmp_path / "endpoint.csv").read_bytes() == (tmp_path / "job.csv").read_bytes()
