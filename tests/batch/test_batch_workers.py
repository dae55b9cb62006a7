"""One file scored by several processes (--workers): the same output, failures and
errors as one process, and no process left behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import joblib
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from deployer.serving import batch_arrow, batch_runner
from deployer.serving.settings import SETTINGS_ENV

HEADER = "id,a,b,c,d\n"


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    x, y = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), tmp_path / "model.joblib")
    body = {"model_name": "iris", "flavor": "sklearn", "model_path": str(tmp_path / "model.joblib")}
    monkeypatch.setenv(SETTINGS_ENV, json.dumps(body))
    monkeypatch.setattr(batch_arrow, "available", lambda: False)  # the image: no pyarrow
    rows = [f"r{i},{','.join(map(repr, x[i % 150].tolist()))}\n" for i in range(300)]
    rows[123] = "r123,abc,1,1,1\n"
    path = tmp_path / "in.csv"
    path.write_text(HEADER + "".join(rows))
    return path


def run(data: Path, out: Path, workers: int) -> int:
    args = ["--input", str(data), "--output", str(out), "--keep", "id"]
    return batch_runner.main([*args, "--rows-per-batch", "1", "--workers", str(workers)])


def test_two_processes_write_what_one_writes(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six parts of 50 one-row chunks: three for each process."""
    assert run(data, tmp_path / "one.csv", 1) == 1
    one = capsys.readouterr()
    forks: list[int] = []
    fork = os.fork

    def counted() -> int:
        forks.append(1)
        return fork()

    monkeypatch.setattr(os, "fork", counted)
    assert run(data, tmp_path / "two.csv", 2) == 1
    two = capsys.readouterr()
    assert (tmp_path / "two.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()
    assert two.err == one.err and '"rows":"124"' in two.err  # the failed row, named once
    assert not (tmp_path / "two.csv.partial").exists() and forks == [1]


def test_bad_input_stops_every_process(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with open(data, "a") as f:
        f.write("r300,1,2,3\n")
    copies: list[int] = []
    fork = os.fork

    def recorded() -> int:
        pid = fork()
        if pid:
            copies.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", recorded)
    assert run(data, tmp_path / "o.csv", 3) == 2
    assert "data row 301: 4 values" in json.loads(capsys.readouterr().err)["error"]
    assert len(copies) == 2
    for pid in copies:  # every copy waited for (other tests' servers may be children too)
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_a_copy_that_fails_leaves_its_parts_to_the_first(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second process dies before scoring: the first scores its parts too (as a
    resumed run would), and the output is complete."""
    assert run(data, tmp_path / "one.csv", 1) == 1
    score_file = batch_runner.score_file

    def failing(*args: object, **kwargs: object) -> object:
        if args[-1] == (1, 2):
            (tmp_path / "died").touch()
            raise RuntimeError("the copy died")
        return score_file(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(batch_runner, "score_file", failing)
    assert run(data, tmp_path / "two.csv", 2) == 1
    assert (tmp_path / "died").exists()
    assert (tmp_path / "two.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()
