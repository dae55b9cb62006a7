"""``deployer baseline``: each column's distribution on a small CSV computed by hand, the
predictions', the entry in deployer.lock and its life across ``deployer lock``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from monitoring_support import cli, json_of, write_project

from deployer.monitoring.baseline import build_baseline

SMALL = (
    "x,n,color,y\n"
    "1.0,1,red,0\n2.0,1,red,0\n3.0,2,red,0\n4.0,2,red,1\n5.0,2,red,1\n"
    "6.0,3,blue,1\n7.0,,blue,0\n8.0,1,blue,1\n9.0,2,green,1\n,2,green,0\n"
)


def test_small_csv_by_hand(tmp_path: Path) -> None:
    (tmp_path / "small.csv").write_text(SMALL)
    entry = build_baseline(str(tmp_path / "small.csv"), None, label="y")
    assert entry["data"]["rows"] == 10 and entry["data"]["label"] == "y"
    assert entry["prediction"] is None
    x = entry["features"]["x"]
    # x: 1.0 .. 9.0 (floats: numeric) and one missing; deciles of 1..9 (linear):
    # 1 + 0.8 k = 1.8, 2.6, ..., 8.2;
    # each value in its own bin (5 sits on the edge 5.0: the bin from 5.0), [4.2, 5.0) empty
    assert x["kind"] == "numeric"
    assert x["edges"] == pytest.approx([1.8, 2.6, 3.4, 4.2, 5.0, 5.8, 6.6, 7.4, 8.2])
    assert x["fractions"] == pytest.approx([1 / 9] * 4 + [0.0] + [1 / 9] * 5)
    assert x["missing"] == pytest.approx(0.1)
    assert len(x["quantiles"]) == 101
    assert (x["quantiles"][0], x["quantiles"][50], x["quantiles"][100]) == (1, 5, 9)
    # n: integers with 3 distinct values (<= 10): categorical, most frequent first;
    # 2 x5, 1 x3, 3 x1 of the 9 present, one missing
    n = entry["features"]["n"]
    assert (n["kind"], n["categories"]) == ("categorical", ["2", "1", "3"])
    assert n["fractions"] == pytest.approx([5 / 9, 3 / 9, 1 / 9, 0.0])
    assert n["missing"] == pytest.approx(0.1)
    color = entry["features"]["color"]
    assert (color["categories"], color["fractions"]) == (
        ["red", "blue", "green"],
        pytest.approx([0.5, 0.3, 0.2, 0.0]),
    )
    assert set(entry["features"]) == {"x", "n", "color"}  # the label is no feature


def test_top_categories_and_other(tmp_path: Path) -> None:
    lines = ["c"] + [f"k{i:02d}" for i in range(60)] + ["k00"] * 5
    (tmp_path / "many.csv").write_text("\n".join(lines) + "\n")
    c = build_baseline(str(tmp_path / "many.csv"), None)["features"]["c"]
    assert len(c["categories"]) == 50 and c["categories"][0] == "k00"
    assert c["fractions"][-1] == pytest.approx(10 / 65)  # k50..k59 are "other"


def test_baseline_command_records_features_and_predictions(tmp_path: Path) -> None:
    file = write_project(tmp_path / "p")
    run = cli("baseline", "-f", str(file), "-d", str(file.parent / "train.csv"), "-l", "y")
    assert run.exit_code == 0, run.stdout + run.stderr
    lock = json.loads((file.parent / "deployer.lock").read_text())
    baseline = lock["baseline"]
    assert baseline["model_sha256"] == lock["model_sha256"]
    assert baseline["data"]["rows"] == 400 and len(baseline["data"]["sha256"]) == 64
    assert {k: v["kind"] for k, v in baseline["features"].items()} == {
        "x": "numeric",
        "n": "categorical",
        "color": "categorical",
    }
    prediction = baseline["prediction"]  # a classifier: its labels as categories
    assert prediction["kind"] == "categorical"
    assert set(prediction["categories"]) == {"0", "1"}
    assert sum(prediction["fractions"]) == pytest.approx(1.0)
    as_json = cli(
        "baseline", "-f", str(file), "-d", str(file.parent / "train.csv"), "-l", "y", "-o", "json"
    )
    assert json_of(as_json)["baseline"]["features"] == baseline["features"]


def test_lock_keeps_the_baseline_while_the_model_is_the_same(tmp_path: Path) -> None:
    file = write_project(tmp_path / "p")
    run = cli("baseline", "-f", str(file), "-d", str(file.parent / "train.csv"), "-l", "y")
    assert run.exit_code == 0
    before = json.loads((file.parent / "deployer.lock").read_text())["baseline"]
    assert before is not None
    assert cli("lock", "-f", str(file)).exit_code == 0
    assert json.loads((file.parent / "deployer.lock").read_text())["baseline"] == before
    write_project(tmp_path / "p", seed=2)  # another model in the same file
    assert cli("lock", "-f", str(file)).exit_code == 0
    assert json.loads((file.parent / "deployer.lock").read_text())["baseline"] is None


def test_bad_input_names_the_file_and_column(tmp_path: Path) -> None:
    file = write_project(tmp_path / "p")
    train = str(file.parent / "train.csv")
    run = cli("baseline", "-f", str(file), "-d", train, "-l", "nope")
    assert run.exit_code == 2
    assert "no label column 'nope'" in run.stderr and "train.csv" in run.stderr
    run = cli("baseline", "-f", str(file), "-d", str(tmp_path / "absent.csv"))
    assert run.exit_code == 2 and "absent.csv" in run.stderr
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    run = cli("baseline", "-f", str(file), "-d", str(tmp_path / "other.csv"))
    assert run.exit_code == 2 and "missing feature column(s) x, n" in run.stderr
    assert "Traceback" not in run.stdout + run.stderr


def test_init_with_data_records_the_baseline(tmp_path: Path) -> None:
    source = write_project(tmp_path / "trained").parent
    run = cli(
        "init", "-m", str(source / "model.joblib"), "-f", str(tmp_path / "deployer.yaml"),
        "--data", str(source / "train.csv"), "--label", "y",
    )  # fmt: skip
    assert run.exit_code == 0, run.stdout + run.stderr
    assert "recorded the baseline" in run.stderr
    baseline = json.loads((tmp_path / "deployer.lock").read_text())["baseline"]
    assert set(baseline["features"]) == {"x", "n", "color"}
    offered = cli("init", "-m", str(source / "model.joblib"), "-f", str(tmp_path / "b.yaml"))
    assert offered.exit_code == 0 and "deployer baseline --data" in offered.stderr


def test_predictions_are_the_served_models_with_its_threshold(tmp_path: Path) -> None:
    file = write_project(tmp_path / "p")
    lock_path = file.parent / "deployer.lock"
    assert cli("lock", "-f", str(file)).exit_code == 0
    lock = json.loads(lock_path.read_text())
    threshold = {"value": 1e-9, "positive_label": "1", "rule": "recall>=1"}
    lock["evaluation"] = {"model_sha256": lock["model_sha256"], "threshold": threshold}
    lock_path.write_text(json.dumps(lock))
    run = cli("baseline", "-f", str(file), "-d", str(file.parent / "train.csv"), "-l", "y")
    assert run.exit_code == 0, run.stdout + run.stderr
    prediction = json.loads(lock_path.read_text())["baseline"]["prediction"]
    # P(1) >= 1e-9 for every row: the served model answers 1 everywhere
    assert (prediction["categories"], prediction["fractions"]) == (["1"], [1.0, 0.0])


def test_json_lines_and_parquet_read_like_csv(tmp_path: Path) -> None:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    (tmp_path / "small.csv").write_text(SMALL)
    from_csv = build_baseline(str(tmp_path / "small.csv"), None, label="y")["features"]
    table = pcsv.read_csv(tmp_path / "small.csv")
    pq.write_table(table, tmp_path / "small.parquet")
    lines = [json.dumps(row) for row in table.to_pylist()]
    (tmp_path / "small.jsonl").write_text("\n".join(lines) + "\n")
    for name in ("small.parquet", "small.jsonl"):
        assert build_baseline(str(tmp_path / name), None, label="y")["features"] == from_csv


def test_rows_the_model_cannot_take_name_the_column(tmp_path: Path) -> None:
    file = write_project(tmp_path / "p")
    train = file.parent / "train.csv"
    lines = train.read_text().splitlines()
    lines[1] = "," + lines[1].split(",", 1)[1]  # the first row's x is missing
    train.write_text("\n".join(lines) + "\n")
    run = cli("baseline", "-f", str(file), "-d", str(train), "-l", "y")
    assert run.exit_code == 2 and "missing values in x" in run.stderr
    assert "Traceback" not in run.stdout + run.stderr


def test_which_columns_are_categorical() -> None:
    import numpy as np

    from deployer.monitoring.profile import kind_of

    assert kind_of(np.arange(10)) == "categorical"  # at most 10 distinct integers
    assert kind_of(np.arange(11)) == "numeric"
    assert kind_of(np.array([0.5, 1.5])) == "numeric"
    assert kind_of(np.array([True, False])) == "categorical"
    assert kind_of(np.array([1, 2.0, None], dtype=object)) == "categorical"
    assert kind_of(np.array([1, 2.5, None], dtype=object)) == "numeric"
    assert kind_of(np.array(["a", None], dtype=object)) == "categorical"
