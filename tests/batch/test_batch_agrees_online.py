"""Batch (``--in-process``, the image's runner code) and online serving (the serving app,
in this process) answer the same predictions for the same rows, for every tabular flavour."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from deployer.batch.in_process import run
from deployer.providers.batch import BatchSpec
from deployer.serving.app import ServingApp
from deployer.serving.settings import ServingSettings

FLAVOURS = [
    ("sklearn", "sklearn_model_path"),
    ("onnx", "onnx_model_path"),
    ("xgboost", "xgboost_model_path"),
    ("lightgbm", "lightgbm_model_path"),
    ("catboost", "catboost_model_path"),
    ("python", "custom_example_dir"),
]
ROWS = slice(0, 150, 7)  # 22 rows spread over the three classes


def online(settings: ServingSettings, rows: np.ndarray) -> Any:
    """The serving app's answer to a CSV body of ``rows`` (SageMaker's /invocations)."""
    app = ServingApp(settings)
    app.runner.start(exit_on_failure=False).join()
    assert app.runner.ready, app.runner.load_error
    body = "\n".join(",".join(repr(float(v)) for v in row) for row in rows).encode()

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(
                "/invocations",
                content=body,
                headers={"content-type": "text/csv", "accept": "application/json"},
            )

    response = asyncio.run(call())
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


@pytest.mark.parametrize(("flavor", "fixture"), FLAVOURS)
def test_batch_and_online_agree(
    flavor: str,
    fixture: str,
    request: pytest.FixtureRequest,
    iris: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
) -> None:
    path = request.getfixturevalue(fixture)
    options: dict[str, Any] = {}
    if flavor == "python":
        options = request.getfixturevalue("custom_predictor_options")
        path = path / "weights.json"
    settings = ServingSettings(
        model_name="m", flavor=flavor, model_path=str(path), flavor_options=options
    )
    features, labels = iris[0][ROWS], iris[1][ROWS]
    data = tmp_path / "rows.csv"
    with open(data, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "y", "a", "b", "c", "d"])  # label and id before the features
        for i, (row, label) in enumerate(zip(features, labels, strict=True)):
            writer.writerow([f"r{i}", label, *(repr(float(v)) for v in row)])
    spec = BatchSpec(
        str(data), str(tmp_path / "out.csv"), "csv", label="y", keep=("id",), rows_per_request=5
    )
    job = run(settings, spec, "job", "in-process")
    assert job.complete and job.rows_done == len(features)
    with open(tmp_path / "out.csv", newline="") as f:
        got = list(csv.DictReader(f))
    assert [r["id"] for r in got] == [f"r{i}" for i in range(len(features))]
    columns = [c for c in got[0] if c.startswith("prediction")]
    batch = np.array([[float(r[c]) for c in columns] for r in got])
    expected = np.asarray(online(settings, features), dtype=np.float64).reshape(len(got), -1)
    np.testing.assert_allclose(batch, expected, rtol=1e-6)
