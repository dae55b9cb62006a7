"""The in-image batch runner (python -m deployer.serving.batch_runner), in this process."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from deployer.serving import batch_runner
from deployer.serving.settings import SETTINGS_ENV


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, Path]:
    """A model file, the iris features, and a CSV of them with an id and the label."""
    folder = tmp_path_factory.mktemp("batch-runner")
    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(x, y)
    joblib.dump(model, folder / "model.joblib")
    with open(folder / "iris.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "a", "b", "c", "d", "y"])
        for i, (row, label) in enumerate(zip(x, y, strict=True)):
            writer.writerow([f"r{i}", *row, label])
    return folder / "model.joblib", model.predict(x), folder / "iris.csv"


@pytest.fixture
def settings(iris: tuple[Path, np.ndarray, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    body = {"model_name": "iris", "flavor": "sklearn", "model_path": str(iris[0])}
    monkeypatch.setenv(SETTINGS_ENV, json.dumps(body))


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.usefixtures("settings")
def test_csv_rows_in_order_with_keep_and_the_models_predictions(
    iris: tuple[Path, np.ndarray, Path], tmp_path: Path
) -> None:
    _, expected, data = iris
    code = batch_runner.main(
        [
            "--input",
            str(data),
            "--output",
            f"{tmp_path}/",
            "--keep",
            "id",
            "--label",
            "y",
            "--rows-per-batch",
            "40",
        ]
    )
    assert code == 0
    rows = read_csv(tmp_path / "iris.csv")
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(150)]
    assert [int(r["prediction"]) for r in rows] == expected.tolist()
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.usefixtures("settings")
def test_failed_rows_are_named_and_the_rest_scored(
    iris: tuple[Path, np.ndarray, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = iris[2].read_text().splitlines()
    lines[6] = "r5,abc,1,1,1,0"  # data row 6
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.csv"
    code = batch_runner.main(
        [
            "--input",
            str(bad),
            "--output",
            str(out),
            "--keep",
            "id",
            "--label",
            "y",
            "--rows-per-batch",
            "50",
        ]
    )
    assert code == 1
    failures = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    assert failures == [{"file": str(bad), "rows": "6", "error": failures[0]["error"]}]
    assert "abc" in failures[0]["error"]
    ids = [r["id"] for r in read_csv(out)]
    assert len(ids) == 149 and "r5" not in ids and ids == sorted(ids, key=lambda s: int(s[1:]))


@pytest.mark.usefixtures("settings")
def test_bad_column_is_exit_2_naming_file_and_column(
    iris: tuple[Path, np.ndarray, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = batch_runner.main(
        ["--input", str(iris[2]), "--output", str(tmp_path / "o.csv"), "--keep", "nope"]
    )
    assert code == 2
    message = json.loads(capsys.readouterr().err)["error"]
    assert str(iris[2]) in message and "'nope'" in message and "id, a, b" in message


@pytest.mark.usefixtures("settings")
def test_jsonl_folder_shards_by_file(tmp_path: Path, iris: tuple[Path, np.ndarray, Path]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    rows = read_csv(iris[2])
    for part in range(3):
        with open(folder / f"part-{part}.jsonl", "w") as f:
            for row in rows[part * 50 : (part + 1) * 50]:
                f.write(json.dumps({k: row[k] if k == "id" else float(row[k]) for k in row}) + "\n")
    for shard in range(2):
        code = batch_runner.main(
            [
                "--input",
                str(folder),
                "--output",
                str(tmp_path / "out"),
                "--keep",
                "id",
                "--label",
                "y",
                "--shard-index",
                str(shard),
                "--shard-count",
                "2",
            ]
        )
        assert code == 0
    outputs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert outputs == ["part-0.jsonl", "part-1.jsonl", "part-2.jsonl"]
    got = [json.loads(x) for p in sorted((tmp_path / "out").iterdir()) for x in p.open()]
    assert [g["id"] for g in got] == [f"r{i}" for i in range(150)]
    assert [g["prediction"] for g in got] == iris[1].tolist()


@pytest.mark.usefixtures("settings")
def test_resume_after_an_interruption_scores_each_row_once(
    iris: tuple[Path, np.ndarray, Path], tmp_path: Path
) -> None:
    scorer = batch_runner.load()
    calls: list[int] = []
    predict = scorer.predict_array

    def counting(inputs: np.ndarray) -> object:
        calls.append(len(inputs))
        return predict(inputs)

    scorer.predict_array = counting  # type: ignore[method-assign]
    options = batch_runner.BatchOptions(
        keep=("id",), label="y", rows_per_batch=20, rows_per_part=20
    )
    out = tmp_path / "out.csv"

    def interrupt(counts: batch_runner.FileCounts) -> None:
        if counts.rows == 60:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        batch_runner.score_file(scorer, str(iris[2]), str(out), options, interrupt)
    assert not out.exists() and sum(calls) == 60
    counts = batch_runner.score_file(scorer, str(iris[2]), str(out), options)
    assert sum(calls) == 150  # the 60 done rows were not scored again
    assert (counts.rows, counts.scored, counts.failed) == (150, 150, 0)
    rows = read_csv(out)
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(150)]
    assert [int(r["prediction"]) for r in rows] == iris[1].tolist()


@pytest.mark.usefixtures("settings")
def test_the_image_path_without_pyarrow_writes_the_same_bytes(
    iris: tuple[Path, np.ndarray, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The serving image has no pyarrow: its standard-library CSV path and the pyarrow
    fast path (in process) write identical output."""
    from deployer.serving import batch_arrow

    rows = read_csv(iris[2])
    data = tmp_path / "quoted.csv"
    with open(data, "w", newline="") as f:  # some ids need quotes: "r10, x"
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(
            {**r, "id": r["id"] + (", x" if i % 10 else "")} for i, r in enumerate(rows)
        )
    args = ["--input", str(data), "--keep", "id", "--label", "y", "--rows-per-batch", "64"]
    assert batch_runner.main([*args, "--output", str(tmp_path / "fast.csv")]) == 0
    monkeypatch.setattr(batch_arrow, "available", lambda: False)
    assert batch_runner.main([*args, "--output", str(tmp_path / "plain.csv")]) == 0
    assert (tmp_path / "fast.csv").read_bytes() == (tmp_path / "plain.csv").read_bytes()
    assert [r["id"] for r in read_csv(tmp_path / "fast.csv")][:2] == ["r0", "r1, x"]


@pytest.mark.parametrize("arrow", [True, False])
@pytest.mark.usefixtures("settings")
def test_a_row_of_another_width_is_exit_2_naming_it(
    arrow: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from deployer.serving import batch_arrow

    if not arrow:
        monkeypatch.setattr(batch_arrow, "available", lambda: False)
    data = tmp_path / "short.csv"
    data.write_text("id,a,b,c,d\nr0,1,2,3,4\n\nr1,1,2,3\n")
    assert batch_runner.main(["--input", str(data), "--output", str(tmp_path / "o.csv")]) == 2
    message = json.loads(capsys.readouterr().err)["error"]
    assert str(data) in message
    assert ("data row 2: 4 values; the header has 5 columns" in message) or arrow
    assert "Expected 5 columns, got 4" in message or not arrow
