"""Batch through a running deployment (``--endpoint``): rows read and shaped here, each
part predicted by a real server process over HTTP in .npy requests no larger than the
payload limit; the output is the in-process run's, byte for byte; an outage mid-run stops
the run with the parts done kept, and the re-run resumes; a deployment serving another
model is refused."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from serving_support import ServerFactory, serving_settings

from deployer.batch.endpoint import EndpointScorer, serving_this_model
from deployer.batch.in_process import run, score
from deployer.errors import DeployerError, UsageError
from deployer.flavors import load_model
from deployer.providers import ANNOTATION_MODEL, Invocation, Status
from deployer.providers.batch import BatchSpec
from deployer.serving.settings import ServingSettings

BODY_LIMIT = 4096  # the server's and the job's payload limit: ~120 rows of 4 FP64 a request
ROWS, PART = 12_000, 5_000  # 100-row chunks, 50 chunks a checkpoint part


class Deployment:
    """A real server process, asked as a provider's ``invoke`` asks it; counts the bodies
    and can stop the server before the call numbered ``stop_at`` (a real outage)."""

    def __init__(self, server: Any, stop_at: int | None = None) -> None:
        self.server, self.stop_at = server, stop_at
        self.bodies: list[int] = []
        self.accepts: list[str | None] = []

    def invoke(self, body: bytes, content_type: str, accept: str | None = None) -> Invocation:
        if self.stop_at is not None and len(self.bodies) == self.stop_at:
            self.server.stop()
        self.bodies.append(len(body))
        self.accepts.append(accept)
        try:
            answer = httpx.post(
                f"{self.server.url}/invocations",
                content=body,
                headers={"content-type": content_type, "accept": accept or "application/json"},
                timeout=30.0,
            )
        except httpx.HTTPError as exc:
            raise DeployerError(f"could not reach {self.server.url}: {exc}") from None
        return Invocation(answer.status_code, answer.content, answer.headers["content-type"])


def write_rows(path: Path, features: np.ndarray, bad: int) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "y", "a", "b", "c", "d"])
        for i, row in enumerate(features):
            values = ["nan", *row[1:]] if i == bad else row  # read here, refused there
            writer.writerow([f"r{i}", i % 3, *values])


@pytest.fixture
def rows(tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]) -> Path:
    data = tmp_path / "rows.csv"
    write_rows(data, np.tile(iris[0], (80, 1)), bad=700)  # 12,000 rows: 3 parts; row 701 bad
    return data


def spec_for(data: Path, out: Path) -> BatchSpec:
    return BatchSpec(
        str(data),
        str(out),
        "csv",
        label="y",
        keep=("id",),
        rows_per_request=100,
        max_payload_bytes=BODY_LIMIT,
    )


def scorer_of(model_path: Path, deployment: Deployment) -> Any:
    model = load_model("sklearn", str(model_path), {})
    return lambda: EndpointScorer(model, deployment.invoke, "t", BODY_LIMIT)


def test_endpoint_output_is_the_in_process_output(
    start_server: ServerFactory, sklearn_model_path: Path, rows: Path, tmp_path: Path
) -> None:
    settings = serving_settings("sklearn", sklearn_model_path, max_body_bytes=BODY_LIMIT)
    server = start_server(settings)
    deployment = Deployment(server)
    spec = spec_for(rows, tmp_path / "endpoint.csv")
    job = score(scorer_of(sklearn_model_path, deployment), spec, "j1", "t", "endpoint:t")
    here = run(
        ServingSettings(model_name="m", flavor="sklearn", model_path=str(sklearn_model_path)),
        spec_for(rows, tmp_path / "here.csv"),
        "j2",
        "in-process",
    )
    assert (job.rows_total, job.rows_failed) == (here.rows_total, here.rows_failed) == (ROWS, 1)
    assert job.failures[0].startswith(f"{rows}: rows 701: t answered 400")
    assert "Input X contains NaN" in job.failures[0]
    assert job.details["through"] == "endpoint:t"
    assert (tmp_path / "endpoint.csv").read_bytes() == (tmp_path / "here.csv").read_bytes()
    assert max(deployment.bodies) <= BODY_LIMIT  # split to the payload limit
    assert len(deployment.bodies) > ROWS // 120
    # the first answer as JSON; numbers, so the rest as .npy
    assert deployment.accepts[0] == "application/json"
    assert set(deployment.accepts[1:]) == {"application/x-npy"}


def test_parquet_goes_through_the_endpoint_too(
    start_server: ServerFactory, sklearn_model_path: Path, rows: Path, tmp_path: Path
) -> None:
    """The image has no pyarrow; with --endpoint the file is read here, so Parquet works."""
    import pyarrow.csv as pv
    import pyarrow.parquet as pq

    data = tmp_path / "rows.parquet"
    pq.write_table(pv.read_csv(rows), data)
    shaping: dict[str, Any] = {"label": "y", "keep": ("id",), "rows_per_request": 100}
    spec = BatchSpec(str(data), str(tmp_path / "e.parquet"), "parquet", **shaping)
    server = start_server(serving_settings("sklearn", sklearn_model_path))
    job = score(scorer_of(sklearn_model_path, Deployment(server)), spec, "j", "t", "endpoint:t")
    settings = ServingSettings(model_name="m", flavor="sklearn", model_path=str(sklearn_model_path))
    here = BatchSpec(str(data), str(tmp_path / "h.parquet"), "parquet", **shaping)
    run(settings, here, "j2", "in-process")
    assert (job.rows_total, job.rows_failed) == (ROWS, 1)
    got, expected = pq.read_table(spec.output_uri), pq.read_table(here.output_uri)
    assert got.num_rows == ROWS - 1 and got.equals(expected)


def test_an_outage_stops_the_run_and_the_rerun_resumes(
    start_server: ServerFactory,
    sklearn_model_path: Path,
    iris: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
) -> None:
    settings = serving_settings("sklearn", sklearn_model_path, max_body_bytes=BODY_LIMIT)
    rows = tmp_path / "rows.csv"
    write_rows(rows, np.tile(iris[0], (80, 1)), bad=-1)  # 42 requests a part
    spec = spec_for(rows, tmp_path / "out.csv")
    first = Deployment(start_server(settings), stop_at=60)  # in the second part
    with pytest.raises(DeployerError, match="could not reach"):
        score(scorer_of(sklearn_model_path, first), spec, "j", "t", "endpoint:t")
    assert not (tmp_path / "out.csv").exists()
    assert (tmp_path / "out.csv.partial").is_dir()
    second = Deployment(start_server(serving_settings("sklearn", sklearn_model_path)))
    job = score(scorer_of(sklearn_model_path, second), spec, "j", "t", "endpoint:t")
    assert (job.rows_total, job.rows_failed) == (ROWS, 0)
    with open(tmp_path / "out.csv", newline="") as f:
        ids = [r["id"] for r in csv.DictReader(f)]
    assert ids == [f"r{i}" for i in range(ROWS)]  # none lost, none twice
    assert len(second.bodies) < (ROWS - PART) // 100  # the first part was not asked again


class Serving:
    """A provider's ``status`` as the local target reports it."""

    def __init__(self, state: str, model: str | None) -> None:
        annotations = {ANNOTATION_MODEL: model} if model else {}
        self.answer = Status("t", state, "v1", details={"annotations": annotations})  # type: ignore[arg-type]

    def status(self) -> Status:
        return self.answer


def test_only_a_healthy_deployment_of_this_model_is_used() -> None:
    sha = "ab" * 32
    serving_this_model(Serving("healthy", sha[:32]), "t", sha)  # type: ignore[arg-type]
    serving_this_model(Serving("healthy", None), "t", sha)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"serves model cdcd.*this project's model is abab"):
        serving_this_model(Serving("healthy", "cd" * 16), "t", sha)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="target 't' is absent") as raised:
        serving_this_model(Serving("absent", None), "t", sha)  # type: ignore[arg-type]
    assert "deployer push --to t" in (raised.value.hint or "")


def test_text_labels_stay_json(
    start_server: ServerFactory, iris: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    """Predictions .npy cannot carry without pickles (text labels) keep coming as JSON."""
    import joblib
    from sklearn.linear_model import LogisticRegression

    names = np.array(["setosa", "versicolor", "virginica"])[iris[1]]
    model_path = tmp_path / "text.joblib"
    joblib.dump(LogisticRegression(max_iter=500).fit(iris[0], names), model_path)
    data = tmp_path / "rows.csv"
    write_rows(data, iris[0], bad=-1)
    deployment = Deployment(start_server(serving_settings("sklearn", model_path)))
    spec = BatchSpec(str(data), str(tmp_path / "out.csv"), "csv", label="y", keep=("id",))
    job = score(scorer_of(model_path, deployment), spec, "j", "t", "endpoint:t")
    assert job.complete and set(deployment.accepts) == {"application/json"}
    with open(tmp_path / "out.csv", newline="") as f:
        got = [r["prediction"] for r in csv.DictReader(f)]
    assert got[:3] == ["setosa"] * 3 and got[-1] == "virginica"
