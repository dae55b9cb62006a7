"""The runner's standard-library CSV fast path (deployer.serving.batch_text): the same
chunks, the same output bytes and the same errors as the csv module's path."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from deployer.serving import batch_arrow, batch_files, batch_runner, batch_text
from deployer.serving.settings import SETTINGS_ENV

HEADER = "id,a,b,c,d\n"


def plain_rows(count: int, start: int = 0) -> list[str]:
    x = load_iris(return_X_y=True)[0].tolist()
    return [f"r{i},{','.join(map(repr, x[i % 150]))}\n" for i in range(start, start + count)]


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), tmp_path / "model.joblib")
    body = {"model_name": "iris", "flavor": "sklearn", "model_path": str(tmp_path / "model.joblib")}
    monkeypatch.setenv(SETTINGS_ENV, json.dumps(body))
    monkeypatch.setattr(batch_arrow, "available", lambda: False)  # the image: no pyarrow


def chunks(path: Path, size: int) -> list[tuple[int, int, tuple[str, ...], list[list[str]]]]:
    return [(c.index, c.start, c.names, c.rows) for c in batch_text.csv_chunks(str(path), size)]


@pytest.mark.parametrize(
    "tail",
    [
        ['r90,"5.1,\n2",1,1,1\n', "r91,1,2,3,4\n"],  # a quoted value over two lines
        ["\n", "r90,1,2,3,4\n"],  # a blank line
        ["r90,1,2,3,4\r", "r91,1,2,3,4\n"],  # a lone carriage return
        ["r90,1,2,3,4"],  # no newline at the end
        ["r90,1,2,3,4\x00\n", "r91,é,2,3,4\n"],  # NUL and non-ASCII: values like others
    ],
)
def test_the_same_chunks_as_the_csv_module(tmp_path: Path, tail: list[str]) -> None:
    """Plain chunks split fast, then from the first odd one the csv module reads the rest;
    the chunks are the csv module's, row for row."""
    data = tmp_path / "in.csv"
    data.write_text(HEADER + "".join(plain_rows(90)) + "".join(tail), newline="")
    fast = list(batch_text.csv_chunks(str(data), 20))
    assert fast[0].tokens is not None  # the first chunks did take the fast path
    assert chunks(data, 20) == [
        (c.index, c.start, c.names, c.rows) for c in batch_files.read_chunks(str(data), "csv", 20)
    ]


def test_crlf_lines_take_the_fast_path(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_bytes((HEADER + "".join(plain_rows(30))).replace("\n", "\r\n").encode())
    fast = list(batch_text.csv_chunks(str(data), 20))
    assert all(c.tokens is not None for c in fast)
    assert chunks(data, 20) == [
        (c.index, c.start, c.names, c.rows) for c in batch_files.read_chunks(str(data), "csv", 20)
    ]


@pytest.mark.usefixtures("settings")
def test_fast_and_csv_module_paths_write_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Odd numbers too (exponents, whitespace, integers, "nan" which orjson does not
    read): the fast path's output is byte for byte the csv module path's."""
    rows = plain_rows(250)
    rows[3] = "r3,5e0, 3.5,1,0.2\n"
    rows[130] = "r130,nan,3.5,1,0.2\n"
    data = tmp_path / "in.csv"
    data.write_text(HEADER + "".join(rows))
    args = ["--input", str(data), "--keep", "id", "--rows-per-batch", "40"]
    assert batch_runner.main([*args, "--output", str(tmp_path / "fast.csv")]) == 1  # nan
    monkeypatch.setattr(batch_text, "csv_chunks", batch_files._csv_chunks)
    assert batch_runner.main([*args, "--output", str(tmp_path / "plain.csv")]) == 1
    fast = (tmp_path / "fast.csv").read_bytes()
    assert fast == (tmp_path / "plain.csv").read_bytes()
    assert fast.splitlines()[:2] == [b"id,prediction", b"r0,0"] and b"r130," not in fast


def test_json_numbers_are_the_cast_of_the_text() -> None:
    chunk = batch_files.Chunk(0, 0, ("a", "b"))
    chunk.tokens = ["1", "2.5", "-3e2", " 4", "1e400", "0.1"]
    expected = np.array([["1", "2.5"], ["-3e2", " 4"], ["1e400", "0.1"]], dtype=np.float64)
    assert np.array_equal(batch_text.numbers(chunk, [0, 1]), expected)
    chunk.tokens = ["-0", "-0.5"]  # JSON reads "-0" as the integer 0: numpy's -0.0 kept
    assert np.signbit(batch_text.numbers(chunk, [0, 1])).tolist() == [[True, True]]
    chunk.tokens = ["true", "1"]  # a JSON value that is not a number: numpy's cast refuses it
    with pytest.raises(ValueError):
        batch_text.numbers(chunk, [0, 1])


@pytest.mark.usefixtures("settings")
def test_a_short_row_after_fast_chunks_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "short.csv"
    data.write_text(HEADER + "".join(plain_rows(45)) + "r45,1,2,3\n")
    args = ["--input", str(data), "--output", str(tmp_path / "o.csv"), "--keep", "id"]
    assert batch_runner.main([*args, "--rows-per-batch", "20"]) == 2
    message = json.loads(capsys.readouterr().err)["error"]
    assert f"{data}: data row 46: 4 values; the header has 5 columns" == message


@pytest.mark.usefixtures("settings")
def test_a_part_is_predicted_in_one_call(tmp_path: Path) -> None:
    """A row-wise model (scikit-learn) is called once per part, not once per chunk."""
    data = tmp_path / "in.csv"
    data.write_text(HEADER + "".join(plain_rows(150)))
    scorer = batch_runner.load()
    calls: list[int] = []
    predict = scorer.predict_array

    def counting(inputs: np.ndarray) -> object:
        calls.append(len(inputs))
        return predict(inputs)

    scorer.predict_array = counting  # type: ignore[method-assign]
    options = batch_runner.BatchOptions(keep=("id",), rows_per_batch=10, rows_per_part=100)
    counts = batch_runner.score_file(scorer, str(data), str(tmp_path / "o.csv"), options)
    assert calls == [100, 50] and counts.scored == 150


@pytest.mark.usefixtures("settings")
def test_chunk_shards_together_hold_every_row_once(tmp_path: Path) -> None:
    """Shard I of N of one file takes chunks I, I+N, ...; a part's chunks of one shard are
    still predicted together and every row lands in exactly one shard's output."""
    data = tmp_path / "in.csv"
    data.write_text(HEADER + "".join(plain_rows(150)))
    scorer = batch_runner.load()
    ids: list[str] = []
    for index in range(2):
        options = batch_runner.BatchOptions(
            keep=("id",), rows_per_batch=10, rows_per_part=100, shard_index=index, shard_count=2
        )
        (src, dst, by_chunk), *_ = batch_runner.outputs_for(str(data), f"{tmp_path}/out/", options)
        counts = batch_runner.score_file(scorer, src, dst, options, chunk_shard=by_chunk)
        assert counts.scored == 80 - 10 * index
        ids += [line.split(",")[0] for line in Path(dst).read_text().splitlines()[1:]]
    assert sorted(ids) == sorted(f"r{i}" for i in range(150))


@pytest.mark.usefixtures("settings")
def test_a_value_over_the_csv_field_limit_is_the_csv_modules_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "long.csv"
    long = "x" * (csv.field_size_limit() + 1)
    data.write_text(HEADER + "".join(plain_rows(45)) + f"r45,{long},2,3,4\n")
    args = ["--input", str(data), "--output", str(tmp_path / "o.csv"), "--keep", "id"]
    assert batch_runner.main([*args, "--rows-per-batch", "20"]) == 2
    message = json.loads(capsys.readouterr().err)["error"]
    assert message == f"{data}: line 47: field larger than field limit ({len(long) - 1})"
