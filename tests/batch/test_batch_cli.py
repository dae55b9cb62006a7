"""``deployer batch`` in process through the CLI: output, records, folders, Parquet, bad
input, a kill mid-run and the re-run that resumes it."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from deployer.api import Project
from deployer.cli import app
from deployer.errors import UsageError


@pytest.fixture
def project(tmp_path: Path, sklearn_model_path: Path) -> Path:
    shutil.copy(sklearn_model_path, tmp_path / "model.joblib")
    (tmp_path / "deployer.yaml").write_text(
        "name: scored\nmodel:\n  path: model.joblib\nbatch:\n  rows_per_request: 40\n"
        "targets:\n  local:\n    provider: local\n    port: 18999\n"
    )
    return tmp_path


def write_rows(path: Path, features: np.ndarray, start: int = 0) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "a", "b", "c", "d", "y"])
        for i, row in enumerate(features, start):
            writer.writerow([f"r{i}", *row, i % 3])


def batch(project: Path, *args: str) -> Any:
    return CliRunner().invoke(
        app, ["batch", *args, "-f", str(project / "deployer.yaml")], env={"COLUMNS": "200"}
    )


def predictions(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_in_process_csv_keep_and_the_record(
    project: Path, iris: tuple[np.ndarray, np.ndarray], sklearn_model: Any
) -> None:
    write_rows(project / "rows.csv", iris[0])
    out = project / "scored.csv"
    result = batch(
        project,
        "--in-process",
        "--input",
        str(project / "rows.csv"),
        "--output",
        str(out),
        "--keep",
        "id",
        "--label",
        "y",
        "-o",
        "json",
    )
    assert result.exit_code == 0, result.output
    job = json.loads(result.stdout)
    assert (job["ok"], job["rows_total"], job["rows_failed"]) == (True, 150, 0)
    rows = predictions(out)
    assert list(rows[0]) == ["id", "prediction"]
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(150)]
    assert [int(r["prediction"]) for r in rows] == sklearn_model.predict(iris[0]).tolist()
    status = batch(project, "status", job["job_id"], "-o", "json")
    assert status.exit_code == 0 and json.loads(status.stdout)["rows_done"] == 150


def test_a_folder_scores_each_file_into_its_own(
    project: Path, iris: tuple[np.ndarray, np.ndarray], sklearn_model: Any
) -> None:
    folder = project / "in"
    folder.mkdir()
    write_rows(folder / "a.csv", iris[0][:100])
    write_rows(folder / "b.csv", iris[0][100:], start=100)
    result = batch(
        project,
        "--in-process",
        "--input",
        str(folder),
        "--output",
        str(project / "out"),
        "--keep",
        "id",
        "--label",
        "y",
    )
    assert result.exit_code == 0, result.output
    got = predictions(project / "out" / "a.csv") + predictions(project / "out" / "b.csv")
    assert [r["id"] for r in got] == [f"r{i}" for i in range(150)]
    assert [int(r["prediction"]) for r in got] == sklearn_model.predict(iris[0]).tolist()


def test_parquet_in_and_out(
    project: Path, iris: tuple[np.ndarray, np.ndarray], sklearn_model: Any
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = {"id": list(range(150)), **{k: iris[0][:, i] for i, k in enumerate("abcd")}}
    pq.write_table(pa.table(table), project / "rows.parquet")
    out = project / "scored.parquet"
    result = batch(
        project,
        "--in-process",
        "--input",
        str(project / "rows.parquet"),
        "--output",
        str(out),
        "--keep",
        "id",
    )
    assert result.exit_code == 0, result.output
    got = pq.read_table(out).to_pydict()
    assert got["id"] == list(range(150))
    assert got["prediction"] == sklearn_model.predict(iris[0]).tolist()


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--input", "missing.csv"], ["missing.csv", "no such file"]),
        (["--input", "ROWS", "--keep", "nope"], ["'nope'", "id, a, b, c, d, y"]),
        (["--input", "ROWS"], ["6 feature column(s) (id, a, b, c, d, y)", "the model takes 4"]),
        (["--input", "ROWS", "--format", "xml"], ["'xml'", "csv, jsonl, parquet"]),
    ],
)
def test_bad_input_is_exit_2_naming_what_to_fix(
    project: Path, iris: tuple[np.ndarray, np.ndarray], args: list[str], names: list[str]
) -> None:
    write_rows(project / "rows.csv", iris[0][:5])
    args = [str(project / "rows.csv") if a == "ROWS" else a for a in args]
    result = batch(project, "--in-process", "--output", str(project / "o.csv"), *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for name in names:
        assert name in result.output


def test_a_target_without_batch_is_named(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = Project.load(project / "deployer.yaml")
    monkeypatch.setattr(
        loaded, "providers", lambda names: {"local": type("P", (), {"name": "x"})()}
    )
    with pytest.raises(UsageError, match="target 'local' \\(x\\) does not run batch jobs"):
        loaded.batch("local", "in.csv", "out.csv")


def test_a_killed_run_resumes_to_the_same_output(
    project: Path, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    features = np.tile(iris[0], (400, 1))  # 60 000 rows: 30 parts of 50 chunks of 40
    write_rows(project / "rows.csv", features)
    command = [
        sys.executable,
        "-c",
        "from deployer.cli import main; main()",
        "batch",
        "-f",
        str(project / "deployer.yaml"),
        "--in-process",
        "--input",
        str(project / "rows.csv"),
        "--keep",
        "id",
        "--label",
        "y",
        "--output",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = project / "resumed.csv"
    partial = project / "resumed.csv.partial"
    process = subprocess.Popen([*command, str(out)], env=env, stdout=subprocess.DEVNULL)
    try:
        while len(list(partial.glob("*.json"))) < 3:  # wait for chunks done, then kill
            assert process.poll() is None, "the run ended before it was killed"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert not out.exists()
    done = len(list(partial.glob("*.json")))
    assert 3 <= done < 30
    subprocess.run([*command, str(out)], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(
        [*command, str(project / "whole.csv")], env=env, check=True, stdout=subprocess.DEVNULL
    )
    assert out.read_bytes() == (project / "whole.csv").read_bytes()
    ids = [r["id"] for r in predictions(out)]
    assert ids == [f"r{i}" for i in range(len(features))]  # none lost, none twice
    assert not partial.exists()


def test_dry_run_checks_and_scores_nothing(
    project: Path, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    write_rows(project / "rows.csv", iris[0][:5])
    out = project / "never.csv"
    args = ["--input", str(project / "rows.csv"), "--output", str(out), "--keep", "id"]
    result = batch(project, "--to", "local", *args, "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert (plan["through"], plan["spec"]["format"], plan["spec"]["keep"]) == (
        "local",
        "csv",
        ["id"],
    )
    assert plan["spec"]["rows_per_request"] == 40  # deployer.yaml's batch: section
    assert not out.exists()
    missing = batch(project, "--to", "nowhere", *args, "--dry-run")
    assert missing.exit_code == 2 and "no target 'nowhere'" in missing.output
